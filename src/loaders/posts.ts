import { defineEntity, listRead, loadThroughCache, withCachedRows } from "../caching/entities.ts";
import { cachedValue } from "../caching/store.ts";
import { forgetPosts, readTimeline, rebuildTimeline, type TimelineEntry } from "../caching/timelines.ts";
import { createdAtAndId, keyset, type PageRequest } from "../domain/pagination.ts";
import type { Post } from "../generated/prisma/client.ts";
import { db } from "../platform/db.ts";
import { raw, type Sql, sql } from "../platform/sql.ts";
import { type FirstPageKey, firstPages } from "./batch.ts";
import { userEntity } from "./users.ts";

export type PostRecord = Post;

/** Post columns under the names Prisma's `Post` type uses, for hand-written SQL. */
export const POST_COLUMNS = (alias: string): Sql =>
  raw(
    `${alias}.id, ${alias}.author_id AS "authorId", ${alias}.caption, ${alias}.like_count AS "likeCount", ` +
      `${alias}.comment_count AS "commentCount", ${alias}.published, ${alias}.created_at AS "createdAt", ` +
      `${alias}.updated_at AS "updatedAt"`,
  );

/** Posts are cached in two parts: the post, and its counters (a like invalidates only those). */
export const postEntity = defineEntity({
  name: "post",
  table: "posts",
  loader: "post",
  parts: {
    post: { ttlSeconds: 600, fields: ["id", "authorId", "caption", "published", "createdAt", "updatedAt"] },
    "post-counts": { ttlSeconds: 60, fields: ["likeCount", "commentCount"] },
  },
  load: (ids): Promise<PostRecord[]> => db().post.findMany({ where: { id: { in: ids } } }),
});

export function postsById(ids: readonly string[]): Promise<(PostRecord | null)[]> {
  return loadThroughCache(postEntity, ids);
}

/**
 * Whether someone may see a post: everyone once it is published (all its photos READY), its author from the
 * start. Lists only ever show published posts; this guards reads and actions by id.
 */
export const isVisibleTo = (post: Pick<PostRecord, "published" | "authorId">, viewerId: string | undefined) =>
  post.published || post.authorId === viewerId;

/** The newest posts of each author (a profile grid, or authors listed with a preview), in one statement. */
export function firstPostsByAuthor(keys: readonly FirstPageKey[]): Promise<PostRecord[][]> {
  return firstPages(
    keys,
    // Creating or deleting a post changes its author's counters.
    async (authorIds, limit) =>
      withCachedRows(
        postEntity,
        await listRead(
          userEntity,
          "user-counts",
          authorIds,
          () => db().$queryRaw<PostRecord[]>`
            SELECT ${POST_COLUMNS("p")}
            FROM unnest(${authorIds}::uuid[]) AS a(id)
            CROSS JOIN LATERAL (
              SELECT * FROM posts WHERE author_id = a.id AND published
              ORDER BY created_at DESC, id DESC LIMIT ${limit}
            ) p`,
        ),
      ),
    (post) => post.authorId,
  );
}

/** One page of an author's posts, newest first. */
export async function authorPostsPage(authorId: string, page: PageRequest): Promise<PostRecord[]> {
  const { where, direction } = keyset(sql`p.created_at, p.id`, "desc", page, createdAtAndId);
  return withCachedRows(
    postEntity,
    await listRead(
      userEntity,
      "user-counts",
      [authorId],
      () => db().$queryRaw<PostRecord[]>`
        SELECT ${POST_COLUMNS("p")} FROM posts p
        WHERE p.author_id = ${authorId}::uuid AND p.published AND ${where}
        ORDER BY p.created_at ${direction}, p.id ${direction} LIMIT ${page.limit}`,
    ),
  );
}

/**
 * One page of a viewer's feed: posts by the people they follow and by themselves, newest first. From their
 * timeline when there is one (fanned out on write: caching/timelines.ts), else read at request time.
 */
export async function feedPage(viewerId: string, page: PageRequest): Promise<PostRecord[]> {
  return (await timelinePage(viewerId, page)) ?? feedFromPostgres(viewerId, page);
}

/** How many entries more than the page a timeline read asks for: room for posts deleted since they were added. */
const SLACK = 5;

/**
 * A feed page from the viewer's timeline (rebuilt first when missing), merged with the posts of the celebrities they
 * follow (not fanned out: read here, one statement), the posts through the entity cache; or undefined where the
 * timeline cannot answer: no timelines, a page backwards, or deeper than the timeline goes.
 */
async function timelinePage(viewerId: string, page: PageRequest): Promise<PostRecord[] | undefined> {
  if (page.before || page.inverted) return undefined;
  const after = page.after ? { at: Number(page.after[0]), id: String(page.after[1]) } : undefined;
  const wanted = page.limit + SLACK;
  const read = await readTimeline(viewerId, after?.at, wanted);
  if (!read) return undefined;
  let timeline: { entries: TimelineEntry[]; celebrities: string[]; complete: boolean; toTheEnd: boolean };
  if (read.state === "missing") {
    const built = await rebuildTimeline(viewerId, read.version);
    timeline = { ...built, toTheEnd: true };
  } else {
    timeline = { ...read, toTheEnd: read.entries.length < wanted };
  }
  // Strictly after the cursor: the range read includes the cursor's own millisecond.
  const entries = timeline.entries.filter(
    (entry) => !after || entry.at < after.at || (entry.at === after.at && entry.id < after.id),
  );
  // Fewer than a page is the end of the feed only if the timeline holds all of it.
  if (entries.length < page.limit && !(timeline.toTheEnd && timeline.complete)) return undefined;
  // The celebrities' posts (one statement) and the timeline's (the entity cache), at once.
  const fromTimeline = entries.slice(0, wanted);
  const [celebrityRows, timelinePosts] = await Promise.all([
    timeline.celebrities.length ? feedFromPostgres(viewerId, page, timeline.celebrities) : [],
    postsById(fromTimeline.map((entry) => entry.id)),
  ]);
  const gone = fromTimeline.filter((_, i) => !timelinePosts[i]?.published).map((entry) => entry.id);
  if (gone.length) await forgetPosts(viewerId, gone);
  // Both newest first: merged (a post in both counts once).
  const live = timelinePosts.flatMap((post) => (post?.published ? [post] : []));
  // Too many gone to fill the page from what was read: the rare case is left to PostgreSQL.
  if (live.length < page.limit && fromTimeline.length === wanted) return undefined;
  const candidates = [...live, ...celebrityRows].sort(
    (a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0),
  );
  return candidates.filter((post, i) => i === 0 || candidates[i - 1]?.id !== post.id).slice(0, page.limit);
}

/**
 * A feed page read at request time ("fan-out on read"), by the people the viewer follows and the viewer (or by
 * `authors` only): each author's newest (created_at, id) pairs from the (author_id, created_at, id) index — an
 * index-only scan, at most a page per author — merged, and only the page's rows read from the table. Given
 * `author_id IN (...)` instead, PostgreSQL walks all posts newest first and filters by author: ~8x slower on the
 * large seed, and reading every candidate row ~2x slower again.
 */
function feedFromPostgres(viewerId: string, page: PageRequest, authors?: string[]): Promise<PostRecord[]> {
  const { where, direction } = keyset(sql`p.created_at, p.id`, "desc", page, createdAtAndId);
  const authorIds = authors
    ? sql`SELECT unnest(${authors}::uuid[]) AS id`
    : sql`SELECT followee_id AS id FROM follows WHERE follower_id = ${viewerId}::uuid
        UNION ALL SELECT ${viewerId}::uuid`;
  return db().$queryRaw`
    SELECT ${POST_COLUMNS("p")} FROM (
      SELECT newest.id FROM (${authorIds}) author CROSS JOIN LATERAL (
        SELECT p.created_at, p.id FROM posts p
        WHERE p.author_id = author.id AND p.published AND ${where}
        ORDER BY p.created_at ${direction}, p.id ${direction} LIMIT ${page.limit}
      ) newest
      ORDER BY newest.created_at ${direction}, newest.id ${direction} LIMIT ${page.limit}
    ) top JOIN posts p ON p.id = top.id
    ORDER BY p.created_at ${direction}, p.id ${direction}`;
}

/** How many of the newest posts explore ranks: bounded work per request, whatever the size of the table. */
export const EXPLORE_CANDIDATES = 1000;

/** One page of explore: the newest posts ranked by likes (then newest first). */
export function explorePage(page: PageRequest): Promise<PostRecord[]> {
  const { where, direction } = keyset(
    sql`p."likeCount", p."createdAt", p.id`,
    "desc",
    page,
    ([likes, createdAt, id]) =>
      sql`${Number(likes)}::int, ${new Date(Number(createdAt))}::timestamptz, ${String(id)}::uuid`,
  );
  return db().$queryRaw`
    WITH recent AS (
      SELECT ${POST_COLUMNS("posts")} FROM posts WHERE published
      ORDER BY created_at DESC, id DESC LIMIT ${EXPLORE_CANDIDATES}
    )
    SELECT * FROM recent p WHERE ${where}
    ORDER BY p."likeCount" ${direction}, p."createdAt" ${direction}, p.id ${direction} LIMIT ${page.limit}`;
}

/** Where a post stands in explore: what ranks it (and places a cursor). */
export type Ranked = Pick<PostRecord, "id" | "likeCount" | "createdAt">;

export const rankOf = (rows: PostRecord[]): Ranked[] =>
  rows.map(({ id, likeCount, createdAt }) => ({ id, likeCount, createdAt }));

/** How long everyone shares the first explore page's ranking; the posts' counters are never older than a write. */
const EXPLORE_TTL_SECONDS = 15;

/**
 * The first explore page's ranking, computed once and shared by everyone for a few seconds. Only the ranking:
 * its posts then come through the entity cache, so every later request for it is served without PostgreSQL.
 */
export function exploreFirstPageRanking(page: PageRequest): Promise<Ranked[]> {
  return cachedValue(`explore:first:${page.limit}`, EXPLORE_TTL_SECONDS, async () => rankOf(await explorePage(page)));
}
