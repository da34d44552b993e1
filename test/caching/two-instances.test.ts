// Two function instances sharing PostgreSQL (and Redis, when REDIS_URL is set; without it each keeps its cache in
// process, and hears the other's writes through PostgreSQL LISTEN/NOTIFY: caching/peers.ts): a write
// through one is never followed by a stale read through the other, however warm its caches.
import { afterAll, beforeAll, expect } from "vitest";
import { createPost, createUser, type TestUser, test } from "../kit/helpers.ts";
import { type Instance, startInstance, statsOf } from "../kit/instances.ts";
import { mobile } from "../kit/operations.ts";

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
      await a.query(mobile.unlikePost.text, { postId: post.gid }, fan.token);
      liked.delete(i);
    } else {
      await a.query(mobile.likePost.text, { postId: post.gid }, fan.token);
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
      (i % 2 ? a : b).query(mobile.likePost.text, { postId: post.gid }, fan.token),
      (i % 2 ? b : a).query(READ, { id: post.gid }),
    ]),
  );
  for (const instance of [a, b]) {
    expect((await instance.query(READ, { id: post.gid })).data.post.likeCount).toBe(24);
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
