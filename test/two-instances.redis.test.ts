// Two function instances sharing PostgreSQL and Redis: a write through one is never followed by a stale read
// through the other, however warm its cache.
import { afterAll, beforeAll, expect } from "vitest";
import { db } from "../src/platform/db.ts";
import { createPost, createUser, globalId, type TestUser, test } from "./helpers.ts";
import { type Instance, startInstance, statsOf } from "./instances.ts";

let a: Instance;
let b: Instance;

beforeAll(async () => {
  a = await startInstance();
  b = await startInstance();
});
afterAll(async () => {
  await Promise.all([a.close(), b.close()]);
});

const READ = `query ($id: ID!) { post(id: $id) { likeCount commentCount author { displayName followerCount } } }`;
const LIKE = `mutation ($id: ID!) { likePost(input: { postId: $id }) { __typename } }`;
const UNLIKE = `mutation ($id: ID!) { unlikePost(input: { postId: $id }) { __typename } }`;

test("every write through A is visible to the next read through B", async ({ alice }) => {
  const post = await createPost(alice);
  const fans: TestUser[] = await Promise.all(Array.from({ length: 10 }, () => createUser()));
  await b.query(READ, { id: post.gid });
  await b.query(READ, { id: post.gid }); // B is warm
  const liked = new Set<number>();
  for (let step = 0; step < 40; step++) {
    const i = (step * 7) % fans.length;
    const fan = fans[i] as TestUser;
    if (liked.has(i)) {
      await a.query(UNLIKE, { id: post.gid }, fan.token);
      liked.delete(i);
    } else {
      await a.query(LIKE, { id: post.gid }, fan.token);
      liked.add(i);
    }
    const read = await b.query(READ, { id: post.gid });
    expect(read.data.post.likeCount, `after write ${step}`).toBe(liked.size);
  }
  // B kept its (signed-out) answers all along, yet served none across a write: with no write in between, it does.
  await b.query(READ, { id: post.gid });
  expect((await statsOf(b, await b.query(READ, { id: post.gid }))).responseCache).toBe("hit");
  await a.query(`mutation { updateProfile(input: { displayName: "Seen by B" }) { __typename } }`, {}, alice.token);
  expect((await b.query(READ, { id: post.gid })).data.post.author.displayName).toBe("Seen by B");
  await a.query(
    `mutation ($id: ID!) { follow(input: { userId: $id }) { __typename } }`,
    { id: alice.gid },
    fans[0]?.token,
  );
  expect((await b.query(READ, { id: post.gid })).data.post.author.followerCount).toBe(1);
});

test("reads racing writes on both instances settle on the database's truth", async ({ alice }) => {
  const post = await createPost(alice);
  const fans = await Promise.all(Array.from({ length: 24 }, () => createUser()));
  await Promise.all(
    fans.flatMap((fan, i) => [
      (i % 2 ? a : b).query(LIKE, { id: post.gid }, fan.token),
      (i % 2 ? b : a).query(READ, { id: post.gid }),
    ]),
  );
  for (const instance of [a, b]) {
    expect((await instance.query(READ, { id: post.gid })).data.post.likeCount).toBe(24);
  }
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
  const { apollo } = await import("./apollo-client.ts");
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

test("a comment through A is in B's next answers, signed in and signed out, however warm B's caches", async ({
  alice,
  bob,
}) => {
  const post = await createPost(alice);
  const read = `query ($id: ID!) {
    post(id: $id) { few: comments(first: 3) { edges { node { body } } } page: comments(first: 30) { edges { node { body } } } }
  }`;
  const bodies = (result: { data?: any }) => [
    result.data.post.few.edges.map((e: any) => e.node.body),
    result.data.post.page.edges.map((e: any) => e.node.body),
  ];
  for (let i = 0; i < 2; i++) {
    await b.query(read, { id: post.gid }, bob.token);
    await b.query(read, { id: post.gid });
  }
  const add = `mutation ($id: ID!, $body: String!) { addComment(input: { postId: $id, body: $body }) { __typename } }`;
  await a.query(add, { id: post.gid, body: "one" }, alice.token);
  expect(bodies(await b.query(read, { id: post.gid }, bob.token))).toEqual([["one"], ["one"]]);
  expect(bodies(await b.query(read, { id: post.gid }))).toEqual([["one"], ["one"]]);
  await a.query(add, { id: post.gid, body: "two" }, bob.token);
  expect(bodies(await b.query(read, { id: post.gid }, bob.token))).toEqual([
    ["one", "two"],
    ["one", "two"],
  ]);
  expect(bodies(await b.query(read, { id: post.gid }))).toEqual([
    ["one", "two"],
    ["one", "two"],
  ]);
});
