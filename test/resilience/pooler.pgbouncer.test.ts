// Shutter behind a transaction-mode pooler (PgBouncer 1.18, started by scripts/pgbouncer.sh), the way RDS Proxy
// or a managed PgBouncer sits in front of the database in production: each transaction may land on a different
// server connection, and nothing prepared or set on one connection exists on the next.
import { afterAll, beforeAll, expect } from "vitest";
import { db } from "../../src/platform/db.ts";
import { createPost, createUser, test } from "../kit/helpers.ts";
import { type Instance, startInstance } from "../kit/instances.ts";
import { mobile } from "../kit/operations.ts";

const pooled = new URL(process.env.PGBOUNCER_URL as string);
pooled.pathname = new URL(process.env.DATABASE_URL as string).pathname; // this file's own database

let a: Instance;
let b: Instance;
beforeAll(async () => {
  // Two function instances with small pools share PgBouncer's four server connections.
  a = await startInstance({ DATABASE_URL: pooled.toString(), DATABASE_POOL_MAX: "3" });
  b = await startInstance({ DATABASE_URL: pooled.toString(), DATABASE_POOL_MAX: "3" });
});
afterAll(async () => {
  await Promise.all([a.close(), b.close()]);
});

const COMMENT = `mutation ($id: ID!, $text: String!) {
  addComment(input: { postId: $id, body: $text }) { __typename ... on AddCommentSuccess { comment { id } } } }`;
const READ = `query ($id: ID!) { post(id: $id) { likeCount commentCount viewerHasLiked author { handle } } }`;
const FEED = `{ feed(first: 20) { edges { node { id likeCount comments(first: 3) { edges { node { body } } } } } } }`;

test("concurrent reads and transactional writes through the pooler are all answered and exact", async ({ alice }) => {
  const post = await createPost(alice);
  const fans = await Promise.all(Array.from({ length: 16 }, () => createUser()));
  const results = await Promise.all(
    fans.flatMap((fan, i) => {
      const instance = i % 2 ? a : b;
      return [
        instance.query(mobile.likePost.text, { postId: post.gid }, fan.token),
        instance.query(COMMENT, { id: post.gid, text: `comment ${i}` }, fan.token),
        instance.query(READ, { id: post.gid }, fan.token),
        instance.query(FEED, {}, fan.token),
      ];
    }),
  );
  expect(results.filter((r) => r.errors?.length)).toEqual([]);
  // Half of them take their like back, concurrently.
  const unliked = await Promise.all(
    fans.slice(0, 8).map((fan, i) => (i % 2 ? a : b).query(mobile.unlikePost.text, { postId: post.gid }, fan.token)),
  );
  expect(unliked.map((r) => r.data?.unlikePost.__typename)).toEqual(Array(8).fill("UnlikePostSuccess"));

  const [likes, comments] = await Promise.all([
    db().like.count({ where: { postId: post.id } }),
    db().comment.count({ where: { postId: post.id } }),
  ]);
  expect({ likes, comments }).toEqual({ likes: 8, comments: 16 });
  for (const instance of [a, b]) {
    const read = await instance.query(READ, { id: post.gid }, fans[15]?.token);
    expect(read.data.post).toEqual({
      likeCount: 8,
      commentCount: 16,
      viewerHasLiked: true,
      author: { handle: alice.handle },
    });
  }
});

test("sign-up and log-in (multi-statement transactions) work through the pooler", async () => {
  const signUp = await a.query(
    `mutation { signUp(input: { handle: "pooled_ana", email: "ana@pooled.test", password: "correct horse battery", displayName: "Ana" }) {
      __typename ... on SignUpSuccess { session { accessToken } } } }`,
  );
  expect(signUp.data.signUp.__typename).toBe("SignUpSuccess");
  const logIn = await b.query(
    `mutation { logIn(input: { login: "pooled_ana", password: "correct horse battery" }) {
      __typename ... on LogInSuccess { session { accessToken } } } }`,
  );
  expect(logIn.data.logIn.__typename).toBe("LogInSuccess");
  const me = await b.query(`{ viewer { user { handle } } }`, {}, logIn.data.logIn.session.accessToken);
  expect(me.data.viewer.user.handle).toBe("pooled_ana");
});

test("with DATABASE_PREPARED_STATEMENTS on a direct connection, statements are prepared once per connection", async ({
  alice,
}) => {
  const direct = await startInstance({ DATABASE_PREPARED_STATEMENTS: "true", DATABASE_POOL_MAX: "1" });
  try {
    const post = await createPost(alice, { caption: "prepared" });
    for (let i = 0; i < 3; i++) {
      const read = await direct.query(READ, { id: post.gid });
      expect(read.data.post.author.handle).toBe(alice.handle);
    }
    // One connection in the pool: this runs in the session that prepared the statements above.
    const { db: instanceDb } = await import("../../src/platform/db.ts");
    const prepared = await instanceDb().$queryRaw<{ name: string }[]>`
      SELECT name FROM pg_prepared_statements WHERE name LIKE 'shutter_%'`;
    expect(prepared.length).toBeGreaterThan(0);
  } finally {
    await direct.close();
  }
});

test("without Redis, LISTEN through the pooler is found not to work: nothing is cached, nothing is stale", async ({
  alice,
  bob,
}) => {
  // REDIS_URL is set for this run: instances without it need an environment of their own.
  const saved = process.env.REDIS_URL;
  delete process.env.REDIS_URL;
  let x: Instance | undefined;
  let y: Instance | undefined;
  try {
    [x, y] = await Promise.all([
      startInstance({ DATABASE_URL: pooled.toString(), LOG_LEVEL: "info" }),
      startInstance({ DATABASE_URL: pooled.toString(), LOG_LEVEL: "info" }),
    ]);
    const post = await createPost(alice);
    const read = `query ($id: ID!) { post(id: $id) { likeCount } }`;
    expect((await y.query(read, { id: post.gid })).data.post.likeCount).toBe(0);
    expect((await y.query(read, { id: post.gid })).data.post.likeCount).toBe(0);
    await x.query(mobile.likePost.text, { postId: post.gid }, bob.token);
    expect((await y.query(read, { id: post.gid })).data.post.likeCount).toBe(1);
    const said = (instance: Instance) =>
      instance.logs.some((line) => line.level === 50 && /LISTEN\/NOTIFY does not work/.test(line.msg));
    expect(said(y)).toBe(true);
  } finally {
    if (saved) process.env.REDIS_URL = saved;
    await Promise.all([x?.close(), y?.close()]);
  }
});
