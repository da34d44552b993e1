import { defineEntity, listRead, loadThroughCache } from "../caching/entities.ts";
import { createdAtAndId, keyset, type PageRequest } from "../domain/pagination.ts";
import type { Comment } from "../generated/prisma/client.ts";
import { db } from "../platform/db.ts";
import { raw, type Sql, sql } from "../platform/sql.ts";
import { byIds, type FirstPageKey, firstPages, groupInKeyOrder } from "./batch.ts";
import { postEntity } from "./posts.ts";

export type CommentRecord = Comment;

export const COMMENT_COLUMNS = (alias: string): Sql =>
  raw(
    `${alias}.id, ${alias}.post_id AS "postId", ${alias}.author_id AS "authorId", ${alias}.body, ` +
      `${alias}.created_at AS "createdAt"`,
  );

export function commentsById(ids: readonly string[]): Promise<(CommentRecord | null)[]> {
  return byIds(ids, (valid) => db().comment.findMany({ where: { id: { in: valid } } }));
}

/** The first `limit` (oldest) comments of each post, in one statement. */
function readFirstComments(postIds: string[], limit: number): Promise<CommentRecord[]> {
  return db().$queryRaw<CommentRecord[]>`
    SELECT ${COMMENT_COLUMNS("c")}
    FROM unnest(${postIds}::uuid[]) AS p(id)
    CROSS JOIN LATERAL (
      SELECT * FROM comments WHERE post_id = p.id ORDER BY created_at, id LIMIT ${limit}
    ) c`;
}

/**
 * A post's first comments, cached: comments never change once written, so the first page changes only when one
 * is added or deleted (services/comments.ts declares it). In two sizes, so that a feed's previews (a few comments
 * of each of 20 posts) do not read a post detail's page for every post.
 */
const firstComments = (name: string, size: number) =>
  defineEntity<{ id: string; comments: CommentRecord[] }, string>({
    name,
    table: "comments",
    parts: { [name]: { ttlSeconds: 600, fields: ["comments"] } },
    load: async (postIds) => {
      const rows = await readFirstComments(postIds, size);
      return groupInKeyOrder(postIds, rows, (row) => row.postId).map((comments, i) => ({
        id: postIds[i] as string,
        comments,
      }));
    },
  });

/** The cached first pages, smallest first: a page of `limit` comments comes from the first that holds it. */
const FIRST_COMMENTS = [
  { size: 4, entity: firstComments("post-comments-few", 4) },
  { size: 51, entity: firstComments("post-comments-page", 51) },
];

/** What a write that adds or deletes comments of the post changed: its cached first pages. */
export const firstCommentsChanged = (postId: string) => FIRST_COMMENTS.map(({ entity }) => entity.changed(postId));

/**
 * The first (oldest) comments of each post: e.g. 3 comments for each of 20 feed posts, from one MGET when cached,
 * else in one statement.
 */
export function firstCommentsByPost(keys: readonly FirstPageKey[]): Promise<CommentRecord[][]> {
  return firstPages(
    keys,
    async (postIds, limit) => {
      const cached = FIRST_COMMENTS.find(({ size }) => limit <= size);
      if (cached) {
        const pages = await loadThroughCache(cached.entity, postIds);
        return pages.flatMap((page) => page?.comments.slice(0, limit) ?? []);
      }
      // Longer than any cached page: adding or deleting a comment changes its post's counters.
      return listRead(postEntity, "post-counts", postIds, () => readFirstComments(postIds, limit));
    },
    (comment) => comment.postId,
  );
}

/** One page of a post's comments, oldest first. */
export function postCommentsPage(postId: string, page: PageRequest): Promise<CommentRecord[]> {
  const { where, direction } = keyset(sql`c.created_at, c.id`, "asc", page, createdAtAndId);
  return listRead(
    postEntity,
    "post-counts",
    [postId],
    () => db().$queryRaw`
      SELECT ${COMMENT_COLUMNS("c")} FROM comments c
      WHERE c.post_id = ${postId}::uuid AND ${where}
      ORDER BY c.created_at ${direction}, c.id ${direction} LIMIT ${page.limit}`,
  );
}
