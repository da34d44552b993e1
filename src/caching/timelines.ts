// Home timelines, fanned out on write: each viewer's feed kept in Redis as a capped sorted set of post ids (score:
// the post's creation time in milliseconds; equal scores order by id, as the SQL feed's `created_at, id` does), so a
// feed page is one range read and the posts come through the entity cache. What large photo apps do; here:
//
// - publishing a post adds it to its author's timeline and to each follower's that exists (`fanOut`, declared by the
//   write that publishes: services/posts.ts; again by the events handler from the outbox, should the first attempt
//   have found Redis failing);
// - a timeline names the "celebrities" its viewer follows (more than FEED_CELEBRITY_FOLLOWERS followers when it was
//   built), whose posts the feed merges at read time (loaders/posts.ts); fan-out stops at twice that many followers.
//   Authors in between are both (a post found twice counts once), so an author must go from at most the threshold
//   to more than twice it within a timeline's lifetime (TIMELINE_TTL_MS) before a follower could miss a post;
// - following or unfollowing drops the viewer's timeline (a declared change: `timelineOf.changed(viewerId)`, which
//   bumps its version like any cached entity's), so the next read rebuilds it from PostgreSQL; a timeline lost with
//   Redis, expired, or never built is rebuilt the same way;
// - a deleted post stays in timelines until a read finds it gone (the entity cache says so) and removes it.
//
// A rebuild cannot store what a concurrent write made old: the read that finds the timeline missing marks it as
// being built (fan-outs then add to it), and the rebuild stores its rows only if the timeline's version is still the
// one read before its query (a follow or unfollow since bumped it). Without Redis (the in-process cache) there are
// no timelines: the feed is read from PostgreSQL.

import { config } from "../platform/config.ts";
import { db } from "../platform/db.ts";
import { bySlot, nodesOf, type RedisClient } from "../platform/redis.ts";
import type { Change } from "./changes.ts";
import { cacheKeys, cacheStore, RedisStore } from "./store.ts";

/** Posts a timeline holds at most (the newest): ten pages of twenty. Deeper pages are read from PostgreSQL. */
export const TIMELINE_LENGTH = 200;
/** A timeline is rebuilt at least this often (see the celebrities above). */
const TIMELINE_TTL_MS = 3600_000;
/** A rebuild that died leaves its "building" mark this long at most. */
const BUILDING_TTL_MS = 30_000;

// Members other than posts have scores ≤ 0 (posts' are times since 1970): the marks, and the celebrities followed.
const BUILDING = "!building";
const READY = "!ready";
const COMPLETE = "!complete";
const CELEBRITY = "@";

/** One post of a timeline: its id, and its creation time in milliseconds. */
export interface TimelineEntry {
  id: string;
  at: number;
}

/** A timeline page as Redis holds it, or "missing" (to be rebuilt, from `version`). */
export type TimelineRead =
  | { state: "missing"; version: string }
  | { state: "ready"; entries: TimelineEntry[]; celebrities: string[]; complete: boolean };

/** What a follow or unfollow changes: the viewer's timeline (rebuilt at the next read). */
export const timelineOf = {
  changed: (viewerId: string): Change => ({ entity: "timeline", id: viewerId, parts: ["timeline"], table: "follows" }),
};

/**
 * KEYS: the timeline, its version. ARGV: the highest score wanted (inclusive), how many entries, the building
 * mark's TTL. Returns {version} when the timeline is not ready (and marks it as being built if it does not exist),
 * else {version, marks and celebrities, entries with scores}.
 */
const READ_SCRIPT = `
local marks = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', 0)
local version = redis.call('GET', KEYS[2]) or '0'
local ready = false
for _, m in ipairs(marks) do if m == '${READY}' then ready = true end end
if not ready then
  if #marks == 0 then
    redis.call('ZADD', KEYS[1], -3, '${BUILDING}')
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
  end
  return {version}
end
return {version, marks, redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1], '(0', 'WITHSCORES', 'LIMIT', 0, ARGV[2])}`;

/**
 * Trims a timeline to its newest ARGV-given number of posts; what is cut makes it no longer complete. Lua shared by
 * the scripts that add posts.
 */
const TRIM = `
local function trim(key, length)
  local posts = redis.call('ZCOUNT', key, '(0', '+inf')
  if posts > length then
    local marks = redis.call('ZCOUNT', key, '-inf', 0)
    redis.call('ZREMRANGEBYRANK', key, marks, marks + posts - length - 1)
    redis.call('ZREM', key, '${COMPLETE}')
  end
end`;

/**
 * KEYS: the timeline, its version. ARGV: the version read before the rebuild's query, the TTL, the length, whether
 * the rows are all there is ('1'), the number of celebrities, the celebrities, then score and id of each post.
 * Stores nothing (returns 0) if the version changed meanwhile.
 */
const WRITE_SCRIPT = `${TRIM}
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
redis.call('ZREM', KEYS[1], '${BUILDING}')
redis.call('ZADD', KEYS[1], -2, '${READY}')
if ARGV[4] == '1' then redis.call('ZADD', KEYS[1], -2, '${COMPLETE}') end
local celebrities = tonumber(ARGV[5])
for i = 6, 5 + celebrities do redis.call('ZADD', KEYS[1], -1, '${CELEBRITY}' .. ARGV[i]) end
for i = 6 + celebrities, #ARGV, 2 do redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1]) end
trim(KEYS[1], tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

/** KEYS: timelines (one slot). ARGV: the post's score and id, the length. Adds it to those that exist (or are being built). */
const FAN_OUT_SCRIPT = `${TRIM}
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    redis.call('ZADD', key, ARGV[1], ARGV[2])
    trim(key, tonumber(ARGV[3]))
  end
end
return 1`;

type TimelineClient = RedisClient & {
  readTimeline(key: string, version: string, max: string, count: number, ttl: number): Promise<unknown[]>;
  writeTimeline(key: string, version: string, ...args: (string | number)[]): Promise<number>;
  fanOutTimeline(keys: number, ...args: (string | number)[]): Promise<unknown>;
};

const defined = new WeakSet<RedisClient>();
function scripts(client: RedisClient): TimelineClient {
  if (!defined.has(client)) {
    client.defineCommand("readTimeline", { lua: READ_SCRIPT, numberOfKeys: 2 });
    client.defineCommand("writeTimeline", { lua: WRITE_SCRIPT, numberOfKeys: 2 });
    client.defineCommand("fanOutTimeline", { lua: FAN_OUT_SCRIPT });
    defined.add(client);
  }
  return client as TimelineClient;
}

/** The shared store, when it keeps timelines (Redis, with FEED_TIMELINES on). */
function timelineStore(): RedisStore | undefined {
  if (!config().feed.timelines) return undefined;
  const store = cacheStore();
  return store instanceof RedisStore ? store : undefined;
}

const keysOf = (viewerId: string) => {
  const { valueKey, versionKey } = cacheKeys("timeline", viewerId);
  return { key: valueKey, versionKey };
};

/**
 * The viewer's timeline from the newest entry at or below `maxAt` (all when absent), `count` entries at most; or
 * undefined when there are no timelines (no Redis, Redis failing, an invalidation of it not yet applied).
 */
export async function readTimeline(
  viewerId: string,
  maxAt: number | undefined,
  count: number,
): Promise<TimelineRead | undefined> {
  const store = timelineStore();
  if (!store) return undefined;
  const { key, versionKey } = keysOf(viewerId);
  const reply = await store.guarded(
    "TIMELINE",
    (client) =>
      scripts(client).readTimeline(
        key,
        versionKey,
        maxAt === undefined ? "+inf" : String(maxAt),
        count,
        BUILDING_TTL_MS,
      ),
    undefined,
    { held: versionKey },
  );
  if (!reply) return undefined;
  const [version, marks, page] = reply as [string, string[]?, string[]?];
  if (!marks || !page) return { state: "missing", version };
  const entries: TimelineEntry[] = [];
  for (let i = 0; i < page.length; i += 2) entries.push({ id: page[i] as string, at: Number(page[i + 1]) });
  return {
    state: "ready",
    entries,
    celebrities: marks.filter((m) => m.startsWith(CELEBRITY)).map((m) => m.slice(1)),
    complete: marks.includes(COMPLETE),
  };
}

/** A timeline as PostgreSQL has it now: its newest posts (fanned-out authors and the viewer), the celebrities followed. */
export interface BuiltTimeline {
  entries: TimelineEntry[];
  celebrities: string[];
  complete: boolean;
}

/**
 * Rebuilds the viewer's timeline from PostgreSQL (one statement, on the primary: it must hold the viewer's latest
 * follows) and stores it unless its version moved past `version` meanwhile. @returns what it read, either way.
 */
export async function rebuildTimeline(viewerId: string, version: string): Promise<BuiltTimeline> {
  const { celebrityFollowers } = config().feed;
  const rows = await db().$queryRaw<{ id: string | null; at: bigint | null; celebrity: string | null }[]>`
    WITH followed AS (
      SELECT f.followee_id AS id, u.follower_count > ${celebrityFollowers} AS celebrity
      FROM follows f JOIN users u ON u.id = f.followee_id WHERE f.follower_id = ${viewerId}::uuid
      UNION ALL SELECT ${viewerId}::uuid, false
    ), newest AS (
      SELECT n.id, n.created_at FROM followed a CROSS JOIN LATERAL (
        SELECT p.id, p.created_at FROM posts p WHERE p.author_id = a.id AND p.published
        ORDER BY p.created_at DESC, p.id DESC LIMIT ${TIMELINE_LENGTH}
      ) n
      WHERE NOT a.celebrity
      ORDER BY n.created_at DESC, n.id DESC LIMIT ${TIMELINE_LENGTH}
    )
    SELECT id::text, (extract(epoch FROM created_at) * 1000)::bigint AS at, NULL AS celebrity FROM newest
    UNION ALL SELECT NULL, NULL, id::text FROM followed WHERE celebrity`;
  const entries: TimelineEntry[] = [];
  const celebrities: string[] = [];
  for (const row of rows) {
    if (row.celebrity) celebrities.push(row.celebrity);
    else if (row.id && row.at !== null) entries.push({ id: row.id, at: Number(row.at) });
  }
  const built = { entries, celebrities, complete: entries.length < TIMELINE_LENGTH };
  const store = timelineStore();
  if (store) {
    const { key, versionKey } = keysOf(viewerId);
    await store.guarded(
      "TIMELINE",
      (client) =>
        scripts(client).writeTimeline(
          key,
          versionKey,
          version,
          TIMELINE_TTL_MS,
          TIMELINE_LENGTH,
          built.complete ? "1" : "0",
          celebrities.length,
          ...celebrities,
          ...entries.flatMap((entry) => [entry.at, entry.id]),
        ),
      0,
      { held: versionKey },
    );
  }
  return built;
}

/** Removes posts a read found gone (deleted) from the viewer's timeline. Best effort: the next read filters them too. */
export async function forgetPosts(viewerId: string, postIds: string[]): Promise<void> {
  const store = timelineStore();
  if (!store || postIds.length === 0) return;
  await store.guarded("TIMELINE", (client) => client.zrem(keysOf(viewerId).key, ...postIds), 0);
}

/** Thrown when a fan-out could not reach Redis: the events handler retries the event later. */
export class TimelinesUnavailable extends Error {
  override readonly name = "TimelinesUnavailable";
}

/**
 * Adds a published post to its author's timeline and to each follower's (those that exist), unless the author has
 * more than twice FEED_CELEBRITY_FOLLOWERS followers (followers merge it at read time). Called after the publishing
 * write commits (services/write.ts), and by the events handler for the outbox's `post.created` (idempotent: adding
 * twice is adding once). One statement for the post and its followers, one script per hash slot.
 * @throws TimelinesUnavailable when Redis could not take it.
 */
export async function fanOut(postId: string): Promise<void> {
  const store = timelineStore();
  if (!store) return;
  const [post] = await db().$queryRaw<{ authorId: string; at: bigint; followers: string[] }[]>`
    SELECT p.author_id::text AS "authorId", (extract(epoch FROM p.created_at) * 1000)::bigint AS at,
      CASE WHEN u.follower_count <= ${2 * config().feed.celebrityFollowers}
        THEN ARRAY(SELECT follower_id::text FROM follows WHERE followee_id = p.author_id) ELSE '{}' END AS followers
    FROM posts p JOIN users u ON u.id = p.author_id WHERE p.id = ${postId}::uuid AND p.published`;
  if (!post) return; // deleted (or not published) since
  const keys = [post.authorId, ...post.followers].map((id) => keysOf(id).key);
  const done = await store.guarded(
    "FANOUT",
    async (client) => {
      const timelines = scripts(client);
      await Promise.all(
        bySlot(client, keys, (key) => key).map((group) =>
          timelines.fanOutTimeline(group.length, ...group, Number(post.at), postId, TIMELINE_LENGTH),
        ),
      );
      return true;
    },
    false,
    { roundTrips: nodesOf(store.client, keys) },
  );
  if (!done) throw new TimelinesUnavailable(`could not add post ${postId} to its followers' timelines`);
}
