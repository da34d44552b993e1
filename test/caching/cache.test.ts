// Batching and caching, against the configured store (Redis in CI, the in-process store without REDIS_URL).
// Statement counts come from the function itself (extensions.sqlStatements counts what reached PostgreSQL).
import { beforeAll, describe, expect } from "vitest";
import { applyChanges } from "../../src/caching/changes.ts";
import { loadThroughCache } from "../../src/caching/entities.ts";
import { cachedValue, cacheKeys, cacheStore } from "../../src/caching/store.ts";
import { postEntity } from "../../src/loaders/posts.ts";
import { config } from "../../src/platform/config.ts";
import { db } from "../../src/platform/db.ts";
import { coldCache, createPhoto, createPost, createUser, gql, ok, type TestUser, test } from "../kit/helpers.ts";
import { mobile } from "../kit/operations.ts";

const FEED = `query ($first: Int!) {
  feed(first: $first) {
    edges { node {
      id caption createdAt likeCount commentCount viewerHasLiked
      author { handle displayName }
      photos { url width height }
      comments(first: 3) { edges { node { body author { handle } } } }
    } }
  }
}`;
const PROFILE = `query ($handle: String!) {
  user(handle: $handle) {
    handle displayName bio followerCount followingCount postCount viewerIsFollowing
    posts(first: 12) { edges { node { id likeCount commentCount photos { url } } } }
  }
}`;
const POST_DETAIL = `query ($id: ID!) {
  post(id: $id) {
    caption createdAt likeCount commentCount viewerHasLiked
    author { handle displayName }
    photos { url width height }
    comments(first: 20) { edges { node { body createdAt author { handle } } } }
  }
}`;

/** Statements and cache traffic of one operation, as the function reports them. */
async function measure(query: string, variables: Record<string, unknown>, token?: string) {
  const result = await gql(query, variables, { token });
  expect(result.errors).toBeUndefined();
  return { sql: result.extensions?.sqlStatements as number, cache: result.extensions?.cache, data: result.data };
}

describe("statements per operation", () => {
  let viewer: TestUser;
  let somePost: string;
  let authorHandle: string;

  beforeAll(async () => {
    // 60 posts by 30 followed authors, 2 photos each, 4 comments by other people, some likes.
    viewer = await createUser();
    const authors = await Promise.all(Array.from({ length: 30 }, () => createUser()));
    const commenters = await Promise.all(Array.from({ length: 8 }, () => createUser()));
    for (const author of authors) {
      await db().follow.create({ data: { followerId: viewer.id, followeeId: author.id } });
    }
    for (let i = 0; i < 60; i++) {
      const author = authors[i % authors.length] as TestUser;
      const post = await createPost(author, { photos: 2, caption: `post ${i}` });
      await db().comment.createMany({
        data: commenters
          .slice(0, 4)
          .map((c, j) => ({ postId: post.id, authorId: (commenters[(i + j) % 8] ?? c).id, body: `c${j}` })),
      });
      if (i % 3 === 0) await db().like.create({ data: { postId: post.id, userId: viewer.id } });
      somePost = post.gid;
    }
    authorHandle = (authors[0] as TestUser).handle;
  });

  test("a request's statements do not grow with its lists: nodes(ids:) with 10 or 100 ids", async () => {
    const { feed } = await ok<{ feed: { edges: { node: { id: string } }[] } }>(
      `{ feed(first: 50) { edges { node { id } } } }`,
      {},
      { token: viewer.token },
    );
    const ids = feed.edges.map((e) => e.node.id);
    const nodes = `query ($ids: [ID!]!) { nodes(ids: $ids) { ... on Post { caption author { handle }
      photos { width } comments(first: 3) { edges { node { body author { handle } } } } } } }`;
    const statements = [];
    for (const n of [10, 100]) {
      await coldCache();
      // 50 real posts, repeated: repeats are loaded once, and priced once.
      const asked = Array.from({ length: n }, (_, i) => ids[i % ids.length]);
      const result = await measure(nodes, { ids: asked });
      expect(result.data?.nodes).toHaveLength(n);
      statements.push(result.sql);
    }
    expect(statements[1]).toBe(statements[0]);
  });

  test("feed(first: 20) and feed(first: 50): 6-7 statements on a cold cache, 0-1 warm, whatever the page size", async () => {
    // With timelines (FEED_TIMELINES, Redis) the feed's list is the viewer's timeline (caching/timelines.ts): rebuilt
    // when cold (one statement for its ids, then the posts through the entity cache), no statement when warm.
    const timelines = cacheStore().kind === "redis" && config().feed.timelines;
    for (const first of [20, 50]) {
      await coldCache();
      const cold = await measure(FEED, { first }, viewer.token);
      expect(cold.data?.feed.edges).toHaveLength(first);
      expect(cold.data?.feed.edges[0].node.comments.edges).toHaveLength(3);
      expect(cold.sql, `feed(first: ${first}) cold`).toBe(timelines ? 7 : 6);
      // Warm: authors, photos, counters, each post's first comments and whether the viewer likes each post come from
      // the cache; only the page is read, unless a timeline holds it.
      const warm = await measure(FEED, { first }, viewer.token);
      expect(warm.data).toEqual(cold.data);
      expect(warm.sql, `feed(first: ${first}) warm`).toBe(timelines ? 0 : 1);
      expect(warm.cache.misses).toBe(0);
    }
  });

  test("profile page: 5 statements cold, 1 warm (the posts' list)", async () => {
    await coldCache();
    const cold = await measure(PROFILE, { handle: authorHandle }, viewer.token);
    expect(cold.data?.user.posts.edges).toHaveLength(2);
    expect(cold.data?.user.viewerIsFollowing).toBe(true);
    expect(cold.sql).toBe(5);
    const warm = await measure(PROFILE, { handle: authorHandle }, viewer.token);
    expect(warm.data).toEqual(cold.data);
    expect(warm.sql).toBe(1);
  });

  test("post detail: 6 statements cold, none warm", async () => {
    await coldCache();
    const cold = await measure(POST_DETAIL, { id: somePost }, viewer.token);
    expect(cold.data?.post.comments.edges).toHaveLength(4);
    expect(cold.sql).toBe(6);
    const warm = await measure(POST_DETAIL, { id: somePost }, viewer.token);
    expect(warm.data).toEqual(cold.data);
    expect(warm.sql).toBe(0);
  });

  test("explore's first page is computed once and shared; its counters stay exact", async () => {
    await coldCache();
    const query = `{ explore(first: 10) { edges { node { id likeCount } } } }`;
    const cold = await measure(query, {});
    expect(cold.sql).toBe(2); // the ranking, then the posts through the entity cache
    const warm = await measure(query, {});
    expect(warm.data).toEqual(cold.data);
    expect(warm.sql).toBe(0);
    const top = cold.data?.explore.edges[0].node;
    await ok(
      `mutation ($id: ID!) { likePost(input: { postId: $id }) { __typename } }`,
      { id: top.id },
      { token: (await createUser()).token },
    );
    const after = await measure(query, {});
    expect(after.data?.explore.edges[0].node).toEqual({ id: top.id, likeCount: top.likeCount + 1 });
  });
});

describe("invalidation", () => {
  test("every write is visible to the next read, through a warm cache", async ({ alice, bob }) => {
    const post = await createPost(alice, { caption: "cached" });
    const read = () => ok(POST_DETAIL, { id: post.gid }, { token: bob.token });
    await read();
    await read(); // warm now
    await mobile.likePost(bob, { postId: post.gid });
    expect((await read()).post).toMatchObject({ likeCount: 1, viewerHasLiked: true });
    // Whether bob likes it is cached too (per viewer and post), and so is alice's "no".
    expect((await ok(POST_DETAIL, { id: post.gid }, { token: alice.token })).post.viewerHasLiked).toBe(false);
    await mobile.unlikePost(bob, { postId: post.gid });
    expect((await read()).post).toMatchObject({ likeCount: 0, viewerHasLiked: false });
    await mobile.likePost(bob, { postId: post.gid });
    expect((await read()).post).toMatchObject({ likeCount: 1, viewerHasLiked: true });
    await ok(
      `mutation ($id: ID!) { addComment(input: { postId: $id, body: "hi" }) { __typename } }`,
      { id: post.gid },
      { token: bob.token },
    );
    expect((await read()).post.commentCount).toBe(1);
    await ok(
      `mutation { updateProfile(input: { displayName: "Renamed" }) { __typename } }`,
      {},
      { token: alice.token },
    );
    expect((await read()).post.author.displayName).toBe("Renamed");
    const profile = () => ok(PROFILE, { handle: alice.handle }, { token: bob.token });
    await profile();
    await ok(
      `mutation ($id: ID!) { follow(input: { userId: $id }) { __typename } }`,
      { id: alice.gid },
      { token: bob.token },
    );
    expect((await profile()).user).toMatchObject({ followerCount: 1, viewerIsFollowing: true });
    await ok(
      `mutation ($id: ID!) { unfollow(input: { userId: $id }) { __typename } }`,
      { id: alice.gid },
      { token: bob.token },
    );
    expect((await profile()).user).toMatchObject({ followerCount: 0, viewerIsFollowing: false });
    await ok(
      `mutation ($id: ID!) { follow(input: { userId: $id }) { __typename } }`,
      { id: alice.gid },
      { token: bob.token },
    );
    expect((await profile()).user).toMatchObject({ followerCount: 1, viewerIsFollowing: true });
    // The grid's first page: a new post and a deleted one show at once.
    const grid = async () => (await profile()).user.posts.edges.map((edge: { node: { id: string } }) => edge.node.id);
    expect(await grid()).toEqual([post.gid]);
    const second = await createPost(alice, { caption: "second" });
    expect(await grid()).toEqual([second.gid, post.gid]);
    await ok(
      `mutation ($id: ID!) { deletePost(input: { postId: $id }) { __typename } }`,
      { id: post.gid },
      { token: alice.token },
    );
    expect((await read()).post).toBeNull();
    expect((await profile()).user.postCount).toBe(1);
    expect(await grid()).toEqual([second.gid]);
  });

  test("a read racing a write cannot put the old value back", async ({ alice }) => {
    const post = await createPost(alice, { caption: "before" });
    await coldCache();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let readOld!: () => void;
    const oldRead = new Promise<void>((resolve) => {
      readOld = resolve;
    });
    // A reader that reads the row, then stalls before filling the cache (a slow network, a GC pause).
    const slowEntity = {
      ...postEntity,
      load: async (ids: string[]) => {
        const rows = await postEntity.load(ids);
        readOld();
        await gate;
        return rows;
      },
    };
    const racing = loadThroughCache(slowEntity, [post.id]);
    await oldRead;
    // Meanwhile a writer commits and invalidates.
    await db().post.update({ where: { id: post.id }, data: { caption: "after" } });
    await applyChanges([postEntity.changed(post.id, "post")]);
    release();
    expect((await racing)[0]?.caption).toBe("before"); // what it read, for its own request
    // ...but it did not cache it: the next reader sees the write.
    const [fresh] = await loadThroughCache(postEntity, [post.id]);
    expect(fresh?.caption).toBe("after");
    const [again] = await loadThroughCache(postEntity, [post.id]);
    expect(again?.caption).toBe("after");
  });

  test("a cached value whose version was bumped elsewhere is not served", async ({ alice }) => {
    const post = await createPost(alice, { caption: "v1" });
    await loadThroughCache(postEntity, [post.id]); // cached
    await db().post.update({ where: { id: post.id }, data: { caption: "v2" } });
    // Only the version changes (as a writer running another deploy's value keys would leave it).
    await cacheStore().invalidate([{ versionKey: cacheKeys("post", post.id).versionKey, valueKeys: [] }]);
    const [read] = await loadThroughCache(postEntity, [post.id]);
    expect(read?.caption).toBe("v2");
  });
});

describe("stampedes", () => {
  test("concurrent requests for the same cold entity share one query", async ({ alice }) => {
    const post = await createPost(alice);
    await coldCache();
    let queries = 0;
    const counting = {
      ...postEntity,
      load: (ids: string[]) => {
        queries++;
        return postEntity.load(ids);
      },
    };
    const results = await Promise.all(Array.from({ length: 20 }, () => loadThroughCache(counting, [post.id])));
    expect(results.every(([p]) => p?.id === post.id)).toBe(true);
    expect(queries).toBe(1);
  });

  test("a shared value is computed by one caller while the others wait for it", async () => {
    await coldCache();
    let computed = 0;
    const values = await Promise.all(
      Array.from({ length: 10 }, () =>
        cachedValue("test:slow", 30, async () => {
          computed++;
          await new Promise((resolve) => setTimeout(resolve, 100));
          return { answer: 42 };
        }),
      ),
    );
    expect(values).toEqual(Array.from({ length: 10 }, () => ({ answer: 42 })));
    expect(computed).toBe(1);
  });
});

describe("counters", () => {
  test("stay exact under many concurrent likes and unlikes", async ({ alice }) => {
    const post = await createPost(alice);
    const fans = await Promise.all(Array.from({ length: 30 }, () => createUser()));
    const read = `query ($id: ID!) { post(id: $id) { likeCount } }`;
    // Likes, unlikes and reads interleaved; each fan ends liked or not at random.
    await Promise.all(
      fans.flatMap((fan, i) => [
        mobile
          .likePost(fan, { postId: post.gid })
          .then(() => (i % 3 === 0 ? mobile.unlikePost(fan, { postId: post.gid }) : undefined)),
        ok(read, { id: post.gid }),
      ]),
    );
    const rows = await db().like.count({ where: { postId: post.id } });
    const stored = await db().post.findUniqueOrThrow({ where: { id: post.id } });
    const served = (await ok(read, { id: post.gid })).post.likeCount;
    expect(rows).toBe(20);
    expect(stored.likeCount).toBe(rows);
    expect(served).toBe(rows);
  });
});

test("photos are never cached for someone who may not see them", async ({ alice, bob }) => {
  const pending = await createPhoto(alice.id, { status: "PENDING" });
  const query = `query ($id: ID!) { node(id: $id) { id } }`;
  expect((await ok(query, { id: pending.gid }, { token: alice.token })).node).toEqual({ id: pending.gid });
  expect((await ok(query, { id: pending.gid }, { token: bob.token })).node).toBeNull();
});

test("the store refuses a fill made under an outdated version", async () => {
  const store = cacheStore();
  const keys = cacheKeys("test-entity", "fill-check");
  // Versions are the store's own strings (Redis counts; the in-process store counts within a generation).
  const [before] = await store.mget([keys.versionKey]);
  await store.invalidate([{ versionKey: keys.versionKey, valueKeys: [keys.valueKey] }]);
  const [after] = await store.mget([keys.versionKey]);
  expect(after).not.toBe(before ?? "0");
  await store.fillIfUnchanged([{ ...keys, seenVersion: before ?? "0", value: "stale", ttlMs: 60_000 }]);
  expect(await store.mget([keys.valueKey])).toEqual([null]);
  await store.fillIfUnchanged([{ ...keys, seenVersion: after as string, value: "fresh", ttlMs: 60_000 }]);
  expect(await store.mget([keys.valueKey, keys.versionKey])).toEqual(["fresh", after]);
});
