// Two function instances sharing Redis: what only a shared cache gives (one computation of a shared value, one
// rate-limit budget, persisted queries registered once). Their coherence, with or without Redis, is
// test/two-instances.test.ts's.
import { afterAll, beforeAll, expect } from "vitest";
import { db } from "../../src/platform/db.ts";
import { createPost, globalId, test } from "../kit/helpers.ts";
import { type Instance, startInstance, statsOf } from "../kit/instances.ts";

let a: Instance;
let b: Instance;

beforeAll(async () => {
  a = await startInstance();
  b = await startInstance();
});
afterAll(async () => {
  await Promise.all([a.close(), b.close()]);
});

test("the first explore page is computed once for both instances", async ({ alice }) => {
  for (let i = 0; i < 3; i++) await createPost(alice);
  // The posts themselves are in the entity cache already, so what each request costs is the ranking alone.
  // (Cold, which request first loads the posts, and on which instance, is a race: the ranking request may find
  // them loaded by one that waited for it.)
  const ids = (await db().post.findMany({ select: { id: true } })).map((post) => globalId("Post", post.id));
  await a.query(`query ($ids: [ID!]!) { nodes(ids: $ids) { id } }`, { ids });
  const query = `{ explore(first: 7) { edges { node { id } } } }`;
  const results = await Promise.all([a.query(query), b.query(query), a.query(query), b.query(query)]);
  const statements = await Promise.all(results.map(async (r, i) => (await statsOf(i % 2 ? b : a, r)).sqlStatements));
  // One request ranked the posts (1 statement); the others waited for its result.
  expect(statements.toSorted(), `statements: ${statements}`).toEqual([0, 0, 0, 1]);
  expect(new Set(results.map((r) => JSON.stringify(r.data))).size).toBe(1);
});

test("the rate-limit budget is shared: spending it on one instance is felt on the other", async ({ bob }) => {
  const limits = { RATE_LIMIT_POINTS: "100", RATE_LIMIT_WINDOW_SECONDS: "60" };
  const [x, y] = await Promise.all([startInstance(limits), startInstance(limits)]);
  try {
    const feed = `{ feed(first: 10) { edges { node { id } } } }`; // 31 points each: three fit in 100
    const results = [];
    for (const instance of [x, y, x, y]) results.push(await instance.query(feed, {}, bob.token));
    expect(results.map((r) => r.errors?.[0]?.extensions?.code ?? "ok")).toEqual(["ok", "ok", "ok", "RATE_LIMITED"]);
  } finally {
    await Promise.all([x.close(), y.close()]);
  }
});

test("a persisted query registered through one instance is served by the other (Apollo Client over HTTP)", async () => {
  const { gql } = await import("@apollo/client");
  const { apollo } = await import("../kit/apollo-client.ts");
  const [first, second] = await Promise.all([
    startInstance({ PERSISTED_QUERIES: "apq" }),
    startInstance({ PERSISTED_QUERIES: "apq" }),
  ]);
  const [urlA, urlB] = await Promise.all([first.url(), second.url()]);
  try {
    const query = gql`query CrossInstance { explore(first: 2) { edges { node { id } } } }`;
    const viaA = apollo(urlA);
    await viaA.client.query({ query });
    expect(viaA.wire.map((w) => w.status)).toEqual([404, 200]); // registered on A
    const viaB = apollo(urlB);
    await viaB.client.query({ query });
    expect(viaB.wire.map((w) => [w.hasQuery, w.status])).toEqual([[false, 200]]); // B knew the hash
  } finally {
    await Promise.all([first.close(), second.close()]);
  }
});

test("what an instance keeps locally is current after a write through another (the invalidation stream)", async ({
  alice,
  bob,
}) => {
  const post = await createPost(alice, { caption: "kept" });
  // Signed in: the response cache (signed-out answers) stays out of it.
  const query = `query ($id: ID!) { post(id: $id) { caption likeCount viewerHasLiked } }`;
  const read = (instance: Instance) => instance.query(query, { id: post.gid }, bob.token);
  await read(a);
  const warm = await read(a);
  expect(warm.data.post).toEqual({ caption: "kept", likeCount: 0, viewerHasLiked: false });
  // Kept by instance a (caching/local.ts), the post and whether bob likes it: no statement; Redis is asked what
  // changed since, and charges the rate limit: two round trips, no entity read.
  const stats = await statsOf(a, warm);
  expect(stats.sqlStatements).toBe(0);
  expect(stats.cache.roundTrips).toBe(2);
  expect(stats.cache.hits).toBe(2);
  const like = `mutation ($id: ID!) { likePost(input: { postId: $id }) { __typename } }`;
  const unlike = `mutation ($id: ID!) { unlikePost(input: { postId: $id }) { __typename } }`;
  await b.query(like, { id: post.gid }, bob.token);
  expect((await read(a)).data.post).toMatchObject({ likeCount: 1, viewerHasLiked: true });
  await b.query(unlike, { id: post.gid }, bob.token);
  expect((await read(a)).data.post).toMatchObject({ likeCount: 0, viewerHasLiked: false });
  await a.query(like, { id: post.gid }, alice.token);
  expect((await read(b)).data.post).toMatchObject({ likeCount: 1, viewerHasLiked: false });
  expect((await read(a)).data.post).toMatchObject({ likeCount: 1, viewerHasLiked: false });
});
