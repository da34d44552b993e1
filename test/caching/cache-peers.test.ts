// Deployed without Redis (a laptop, a single container, a stack with `redis: none`): every process keeps its
// cache in memory and hears the others' writes through PostgreSQL LISTEN/NOTIFY (caching/peers.ts). This
// file runs in that configuration whatever the run's services are. When the connection that hears them is cut,
// nothing is served from memory until it is back, and what was kept before is forgotten: never a stale answer.
// The limits that guard accounts (sign-in guessing) are kept in PostgreSQL then, so instances share them.
import { afterAll, beforeAll, expect } from "vitest";
import { APPLICATION_NAME } from "../../src/caching/peers.ts";
import { db } from "../../src/platform/db.ts";
import { createPost, createUser, test } from "../kit/helpers.ts";
import { type Instance, startInstance, statsOf } from "../kit/instances.ts";
import { mobile } from "../kit/operations.ts";

// This file's instances run without Redis, whatever the run has.
delete process.env.REDIS_URL;

let a: Instance;
let b: Instance;

const LIMITS = { LOGIN_MAX_FAILURES_PER_ACCOUNT: "3", LOGIN_MAX_FAILURES_PER_ADDRESS: "50" };

beforeAll(async () => {
  a = await startInstance(LIMITS);
  b = await startInstance(LIMITS);
});
afterAll(async () => {
  await Promise.all([a.close(), b.close()]);
});

const READ = `query ($id: ID!) { post(id: $id) { likeCount caption } }`;

/** The listening connections of every process on this file's database. */
async function listeners(): Promise<number> {
  const rows = await db().$queryRaw<{ n: bigint }[]>`
    SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = ${APPLICATION_NAME}`;
  return Number(rows[0]?.n);
}

/** Ends every listening connection, as a failover, an idle timeout or a proxy would. */
async function cutListeners(): Promise<number> {
  const rows = await db().$queryRaw<{ ended: boolean }[]>`
    SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = ${APPLICATION_NAME}`;
  return rows.filter((row) => row.ended).length;
}

test("each instance caches, and hears the other's writes before its next read", async ({ alice }) => {
  const post = await createPost(alice);
  const fans = await Promise.all(Array.from({ length: 5 }, () => createUser()));
  await b.query(READ, { id: post.gid });
  const warm = await b.query(READ, { id: post.gid });
  // Served from memory: the post was read once, then kept (its answer too).
  expect((await statsOf(b, warm)).sqlStatements).toBe(0);
  for (const [i, fan] of fans.entries()) {
    await a.query(mobile.likePost.text, { postId: post.gid }, fan.token);
    expect((await b.query(READ, { id: post.gid })).data.post.likeCount, `after like ${i}`).toBe(i + 1);
  }
  // A listening connection each (more on the Lambda targets: an instance per process).
  expect(await listeners()).toBeGreaterThanOrEqual(2);
});

test("cut off from the others' writes, an instance serves from PostgreSQL, then caches again once it hears them", async ({
  alice,
  bob,
}) => {
  const post = await createPost(alice);
  await b.query(READ, { id: post.gid });
  expect((await b.query(READ, { id: post.gid })).data.post.likeCount).toBe(0);
  expect(await cutListeners()).toBeGreaterThanOrEqual(1);
  // A write while B cannot hear it: B must not answer from what it kept.
  await a.query(mobile.likePost.text, { postId: post.gid }, bob.token);
  const after = await b.query(READ, { id: post.gid });
  expect(after.data.post.likeCount).toBe(1);
  // Listening again, B caches again: the next read is served from memory.
  await b.query(READ, { id: post.gid });
  const again = await b.query(READ, { id: post.gid });
  expect(again.data.post.likeCount).toBe(1);
  expect((await statsOf(b, again)).sqlStatements).toBe(0);
  expect(await listeners()).toBeGreaterThanOrEqual(2);
});

test("sign-in guesses spread over instances share one budget, kept in PostgreSQL", async ({ alice }) => {
  const guess = async (instance: Instance) =>
    (
      await instance
        .fetch("/graphql", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            query: `mutation ($login: String!) { logIn(input: { login: $login, password: "not the password" }) { __typename ... on Error { code } } }`,
            variables: { login: alice.handle },
          }),
          from: "127.9.0.1",
        })
        .then((response) => response.json())
    ).data.logIn;
  const answers = [];
  for (const instance of [a, b, a, b, a, b]) answers.push((await guess(instance)).code);
  expect(answers).toEqual([
    "INVALID_CREDENTIALS",
    "INVALID_CREDENTIALS",
    "INVALID_CREDENTIALS",
    "RATE_LIMITED",
    "RATE_LIMITED",
    "RATE_LIMITED",
  ]);
  expect(await db().rateLimit.count({ where: { key: { contains: ":rl:login-pair:" } } })).toBe(1);
});
