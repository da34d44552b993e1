// Reads on a real streaming replica (scripts/pg-replica.sh: a primary and a hot standby of the machine's
// PostgreSQL), through two instances sharing Redis: a read goes to the replica only once it has replayed every
// write the cache's versions say the answer depends on. With the standby's replay paused (real, measured lag),
// nobody reads less than they wrote or were shown; a standby that dies costs reads on the primary, not errors.
//
// Runs in the `replicas` project, one file at a time: it pauses and stops the pair's standby.
import { execFileSync } from "node:child_process";
import pg from "pg";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { coldCache, createPost, createUser, test } from "../kit/helpers.ts";
import { type Instance, startInstance, statsOf } from "../kit/instances.ts";
import { mobile } from "../kit/operations.ts";

const pair = (...args: string[]) => execFileSync("scripts/pg-replica.sh", args, { stdio: "pipe" });
const POST = `query ($id: ID!) { post(id: $id) { caption likeCount viewerHasLiked } }`;
const PUBLIC_POST = `query ($id: ID!) { post(id: $id) { caption likeCount } }`;
const PROFILE = `query ($handle: String!) { user(handle: $handle) { handle posts(first: 10) { edges { node { id } } } } }`;
const NODE = `query ($id: ID!) { node(id: $id) { ... on User { handle } } }`;

let primary: pg.Client;
let standby: pg.Client;
let a: Instance;
let b: Instance;

beforeAll(async () => {
  primary = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await primary.connect();
  // The test file's database was just cloned on the primary: wait for the standby to have it.
  await connectStandby();
  [a, b] = await Promise.all([startInstance(), startInstance()]);
});
afterAll(async () => {
  pair("resume");
  await Promise.all([a.close(), b.close(), primary.end(), standby.end().catch(() => {})]);
});

/** (Re)connects to the standby, waiting for it to accept connections to this file's database. */
async function connectStandby() {
  for (let attempt = 0; ; attempt++) {
    standby = new pg.Client({ connectionString: process.env.DATABASE_REPLICA_URLS });
    // The standby is stopped on purpose below: its connection ending is expected.
    standby.on("error", () => {});
    try {
      await standby.connect();
      return;
    } catch (error) {
      if (attempt > 100) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Waits until the standby has replayed everything the primary has written so far. */
async function caughtUp() {
  const [{ lsn }] = (await primary.query("SELECT pg_current_wal_insert_lsn()::text AS lsn")).rows;
  for (let waited = 0; waited < 10_000; waited += 50) {
    const { rows } = await standby.query("SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), $1) >= 0 AS done", [lsn]);
    if (rows[0].done) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error("the standby did not catch up in 10 s");
}

/**
 * An empty cache, whose versions begin now: what a fresh or emptied keyspace becomes once its first reader noted
 * the primary's position (caching/store.ts, bornKey), here without waiting for one.
 */
async function freshCache() {
  await coldCache();
  const { noteBorn } = await import("../../src/caching/store.ts");
  await noteBorn((await primary.query("SELECT pg_current_wal_insert_lsn()::text AS lsn")).rows[0].lsn);
}

/** How far the standby is behind: WAL bytes not yet replayed, and how old its last replayed commit is. */
async function lag() {
  const [{ lsn }] = (await primary.query("SELECT pg_current_wal_insert_lsn()::text AS lsn")).rows;
  const { rows } = await standby.query(
    `SELECT pg_wal_lsn_diff($1, pg_last_wal_replay_lsn())::bigint AS bytes,
            extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000 AS ms`,
    [lsn],
  );
  return { bytes: Number(rows[0].bytes), ms: Math.round(Number(rows[0].ms)) };
}

test("reads covered by the cache's versions go to the replica once it has replayed their writes", async ({
  alice,
  bob,
}) => {
  const post = await createPost(alice, { caption: "on the replica" });
  await caughtUp();
  await freshCache();
  const read = await b.query(POST, { id: post.gid }, bob.token);
  expect(read.data.post).toEqual({ caption: "on the replica", likeCount: 0, viewerHasLiked: false });
  const stats = await statsOf(b, read);
  // The post from the replica; whether bob liked it (a fact of his that no version covers) from the primary.
  expect(stats.replicaStatements).toBeGreaterThan(0);
  expect(stats.replicaStatements).toBeLessThan(stats.sqlStatements);
});

describe("with the standby's replay paused", () => {
  test("nobody reads less than they wrote, through either instance, signed in or out", async ({
    alice,
    bob,
    carol,
  }) => {
    const post = await createPost(alice, { caption: "before the pause" });
    await caughtUp();
    await freshCache();
    // Both instances have read the post (and alice's profile) before the pause.
    for (const instance of [a, b]) {
      await instance.query(PUBLIC_POST, { id: post.gid });
      await instance.query(PROFILE, { handle: alice.handle });
    }
    pair("pause");
    try {
      const liked = await a.query(mobile.likePost.text, { postId: post.gid }, bob.token);
      expect(liked.data.likePost.post.likeCount).toBe(1);
      const second = await createPost(alice, { caption: "during the pause" });
      const dave = await createUser();
      // A second on, the standby is that far behind: its last replayed commit is older than everything here.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      // Real lag: the like, the post and the new account are on the primary only.
      const measured = await lag();
      expect(measured.bytes).toBeGreaterThan(0);
      expect(measured.ms).toBeGreaterThanOrEqual(1_000);
      expect((await standby.query("SELECT count(*)::int AS n FROM likes")).rows[0].n).toBe(0);
      console.log(JSON.stringify({ replicationLag: measured }));

      // Bob, through the other instance, signed in: his like and its count.
      const mine = await b.query(POST, { id: post.gid }, bob.token);
      expect(mine.data.post).toEqual({ caption: "before the pause", likeCount: 1, viewerHasLiked: true });
      // Its counters, dropped from the cache by the like, were read again — on the primary: the replica has not
      // replayed the like their version stands for.
      const mineStats = await statsOf(b, mine);
      expect(mineStats.cache.misses).toBeGreaterThan(0);
      expect(mineStats.replicaStatements).toBe(0);
      // Anyone, signed out, through either instance (the response cache's answers are checked against versions).
      for (const instance of [a, b]) {
        expect((await instance.query(PUBLIC_POST, { id: post.gid })).data.post.likeCount).toBe(1);
        const profile = await instance.query(PROFILE, { handle: alice.handle });
        expect(profile.data.user.posts.edges.map((edge: { node: { id: string } }) => edge.node.id)).toEqual([
          second.gid,
          post.gid,
        ]);
      }
      // An account created since: the replica does not have it, so the primary answers.
      expect((await b.query(NODE, { id: dave.gid })).data.node).toEqual({ handle: dave.handle });
      // What no write has touched since before the pause is still read on the replica (carol: never cached).
      const untouched = await b.query(NODE, { id: carol.gid });
      expect(untouched.data.node).toEqual({ handle: carol.handle });
      expect((await statsOf(b, untouched)).replicaStatements).toBe(1);
    } finally {
      pair("resume");
    }
    // Once it has caught up, the replica serves the liked post too — to an instance that holds nothing of it: what an
    // instance holds stays vouched for by the invalidation stream, which emptying Redis (no write) does not touch.
    await caughtUp();
    await freshCache();
    const fresh = await startInstance();
    const after = await fresh.query(PUBLIC_POST, { id: post.gid });
    expect(after.data.post.likeCount).toBe(1);
    expect((await statsOf(fresh, after)).replicaStatements).toBeGreaterThan(0);
  });
});

test("a standby that dies costs reads on the primary, not errors; once back it serves again", async ({
  alice,
  bob,
}) => {
  const posts = await Promise.all([createPost(alice), createPost(alice), createPost(alice)]);
  await caughtUp();
  const c = await startInstance({ LOG_LEVEL: "warn" });
  try {
    await freshCache();
    pair("kill");
    for (const post of posts) {
      const read = await c.query(POST, { id: post.gid }, bob.token);
      expect(read.errors).toBeUndefined();
      expect(read.data.post.caption).toBe("a post");
      expect((await statsOf(c, read)).replicaStatements).toBe(0);
    }
    expect(
      c.logs.filter((line) => line.msg === "database: a read replica failed; reading from the primary"),
    ).toHaveLength(1);
  } finally {
    pair("revive");
  }
  await connectStandby();
  // Left alone for a few seconds after a failure, then read from again.
  let served = false;
  for (let attempt = 0; attempt < 40 && !served; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    await caughtUp();
    await freshCache();
    const read = await c.query(POST, { id: posts[0]!.gid }, bob.token);
    expect(read.errors).toBeUndefined();
    served = (await statsOf(c, read)).replicaStatements > 0;
  }
  expect(served).toBe(true);
  await c.close();
});
