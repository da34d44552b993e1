// Home timelines fanned out on write (caching/timelines.ts), against the real Redis (a cluster in cluster-source):
// the feed they serve is the feed PostgreSQL has — after follows, unfollows, deletes, a celebrity's posts, a lost
// Redis, a fan-out Redis did not take — and a warm feed page costs no statement for its list.
import { describe, expect, vi } from "vitest";

// Timelines on; readers merge the posts of authors followed by more than 1 person, and those followed by more than 2
// are not fanned out (set before the configuration is first read).
vi.hoisted(() => {
  process.env.FEED_TIMELINES = "true";
  process.env.FEED_CELEBRITY_FOLLOWERS = "1";
});

import { applyChanges } from "../../src/caching/changes.ts";
import { cacheKeys, cacheStore, RedisStore } from "../../src/caching/store.ts";
import { readTimeline, rebuildTimeline, timelineOf } from "../../src/caching/timelines.ts";
import { db } from "../../src/platform/db.ts";
import { coldCache, createPost, createUser, gql, processPendingEvents, type TestUser, test } from "../kit/helpers.ts";
import { mobile } from "../kit/operations.ts";

const FEED = `query ($first: Int!, $after: String) {
  feed(first: $first, after: $after) { edges { node { id caption } } pageInfo { hasNextPage endCursor } }
}`;

async function feed(viewer: TestUser, first = 10, after?: string) {
  const result = await gql(FEED, { first, after }, { token: viewer.token });
  expect(result.errors).toBeUndefined();
  const connection = (result.data as any).feed;
  return {
    ids: connection.edges.map((edge: any) => edge.node.id) as string[],
    pageInfo: connection.pageInfo as { hasNextPage: boolean; endCursor: string | null },
    sql: result.extensions?.sqlStatements as number,
  };
}

const redis = () => (cacheStore() as RedisStore).client;
const timelineKey = (user: TestUser) => cacheKeys("timeline", user.id).valueKey;
/** The posts a viewer's timeline holds in Redis, newest first (marks and celebrities left out). */
const held = async (user: TestUser) => (await redis().zrevrangebyscore(timelineKey(user), "+inf", "(0")) as string[];

describe("home timelines", () => {
  test("a post reaches its author's and followers' timelines when published; a warm page reads no list from PostgreSQL", async ({
    alice,
    bob,
    carol,
  }) => {
    expect(cacheStore()).toBeInstanceOf(RedisStore);
    await mobile.follow(alice, { userId: bob.gid });
    const b1 = await createPost(bob, { caption: "b1" });
    // Built at the first read, from PostgreSQL (one statement), then kept in Redis.
    expect((await feed(alice)).ids).toEqual([b1.gid]);
    expect(await held(alice)).toEqual([b1.id]);
    const b2 = await createPost(bob, { caption: "b2" });
    const a1 = await createPost(alice, { caption: "a1" });
    await createPost(carol, { caption: "not followed" });
    // Fanned out by the writes: nothing rebuilt, nothing read from PostgreSQL for the list.
    expect(await held(alice)).toEqual([a1.id, b2.id, b1.id]);
    const warm = await feed(alice);
    expect(warm.ids).toEqual([a1.gid, b2.gid, b1.gid]);
    await feed(alice); // the new posts are in the entity cache now
    expect((await feed(alice)).sql).toBe(0);
    // Bob's own timeline got his posts too (it existed: built by his first read).
    expect((await feed(bob)).ids).toEqual([b2.gid, b1.gid]);
  });

  test("following and unfollowing change the viewer's feed at once (the timeline is rebuilt)", async ({
    alice,
    bob,
  }) => {
    const b1 = await createPost(bob, { caption: "old" });
    const a1 = await createPost(alice, { caption: "mine" });
    expect((await feed(alice)).ids).toEqual([a1.gid]);
    await mobile.follow(alice, { userId: bob.gid });
    expect((await feed(alice)).ids).toEqual([a1.gid, b1.gid]);
    expect(await held(alice)).toEqual([a1.id, b1.id]);
    await mobile.unfollow(alice, { userId: bob.gid });
    expect((await feed(alice)).ids).toEqual([a1.gid]);
    expect(await held(alice)).toEqual([a1.id]);
  });

  test("a deleted post leaves the feed at once and its timelines at the next read", async ({ alice, bob }) => {
    await mobile.follow(alice, { userId: bob.gid });
    const b1 = await createPost(bob, { caption: "b1" });
    const b2 = await createPost(bob, { caption: "b2" });
    expect((await feed(alice)).ids).toEqual([b2.gid, b1.gid]);
    await mobile.deletePost(bob, { postId: b2.gid });
    expect((await feed(alice)).ids).toEqual([b1.gid]);
    expect(await held(alice)).toEqual([b1.id]);
  });

  test("a celebrity's posts are merged at read time, not fanned out", async ({ alice, bob, carol }) => {
    const dave = await createUser();
    // Carol gets three followers: more than twice FEED_CELEBRITY_FOLLOWERS (1).
    for (const fan of [alice, bob, dave]) await mobile.follow(fan, { userId: carol.gid });
    const a1 = await createPost(alice, { caption: "a1" });
    expect((await feed(alice)).ids).toEqual([a1.gid]);
    const c1 = await createPost(carol, { caption: "c1" });
    // Not in Alice's timeline, yet in her feed: read from PostgreSQL (one statement for the celebrities she follows).
    expect(await held(alice)).toEqual([a1.id]);
    const read = await feed(alice);
    expect(read.ids).toEqual([c1.gid, a1.gid]);
    const again = await feed(alice);
    expect(again.ids).toEqual([c1.gid, a1.gid]);
    expect(again.sql).toBe(1);
    // Her own timeline has her own posts, whatever her following.
    expect((await feed(carol)).ids).toEqual([c1.gid]);
  });

  test("pages through a timeline as through PostgreSQL, to the end", async ({ alice, bob }) => {
    await mobile.follow(alice, { userId: bob.gid });
    const posts = [];
    for (let i = 0; i < 7; i++) posts.push(await createPost(i % 2 ? bob : alice, { caption: `p${i}` }));
    const newestFirst = posts.map((p) => p.gid).reverse();
    const seen: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await feed(alice, 3, after);
      seen.push(...page.ids);
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor ?? undefined;
    }
    expect(seen).toEqual(newestFirst);
  });

  test("a timeline lost with Redis is rebuilt from PostgreSQL", async ({ alice, bob }) => {
    await mobile.follow(alice, { userId: bob.gid });
    const b1 = await createPost(bob, { caption: "b1" });
    expect((await feed(alice)).ids).toEqual([b1.gid]);
    await coldCache();
    expect(await held(alice)).toEqual([]);
    expect((await feed(alice)).ids).toEqual([b1.gid]);
    expect(await held(alice)).toEqual([b1.id]);
  });

  test("a fan-out Redis did not take is made by the events handler, from the outbox", async ({ alice, bob }) => {
    await mobile.follow(alice, { userId: bob.gid });
    await feed(alice);
    const b1 = await createPost(bob, { caption: "b1" });
    // As if Redis had not taken the publishing write's fan-out.
    await redis().zrem(timelineKey(alice), b1.id);
    expect(await held(alice)).toEqual([]);
    await processPendingEvents();
    expect(await held(alice)).toEqual([b1.id]);
  });

  test("a rebuild racing a follow stores nothing: the next read builds it anew", async ({ alice, bob }) => {
    const b1 = await createPost(bob, { caption: "b1" });
    const read = await readTimeline(alice.id, undefined, 10);
    expect(read?.state).toBe("missing");
    // Alice follows Bob after the rebuild's version was read, before its rows are stored.
    await db().follow.create({ data: { followerId: alice.id, followeeId: bob.id } });
    await applyChanges([timelineOf.changed(alice.id)]);
    await rebuildTimeline(alice.id, read?.state === "missing" ? read.version : "");
    expect((await readTimeline(alice.id, undefined, 10))?.state).toBe("missing");
    expect((await feed(alice)).ids).toEqual([b1.gid]);
  });
});
