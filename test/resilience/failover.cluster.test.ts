// A Redis Cluster master killed under load, with two instances sharing the cluster: its replica takes over,
// every request keeps answering (from PostgreSQL while the shard is away), and no read ever shows less than a
// write that had answered before the read started — during the failover or after it.
//
// Runs against scripts/redis-cluster.sh's cluster (the `cluster` projects), alone: it kills one of its masters.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import calculateSlot from "cluster-key-slot";
import { Cluster } from "ioredis";
import { afterAll, beforeAll, expect } from "vitest";
import { cacheKeys } from "../../src/caching/store.ts";
import { db } from "../../src/platform/db.ts";
import { createPost, createUser, type TestUser, test } from "../kit/helpers.ts";
import { type Instance, startInstance, statsOf } from "../kit/instances.ts";
import { mobile } from "../kit/operations.ts";

// Not execFileSync: on the Lambda target the gateway emulator runs in this process, and a revival blocks for seconds
// (until the node is a replica in sync): its server's keep-alive timers would then close sockets the client reuses
// at that moment (ECONNRESET on the next request).
const script = (...args: string[]) => promisify(execFile)("scripts/redis-cluster.sh", args);
const READ = `query ($id: ID!) { post(id: $id) { likeCount } }`;
const LIKE = mobile.likePost.text;

let a: Instance;
let b: Instance;
let cluster: Cluster;

beforeAll(async () => {
  const seed = new URL(process.env.REDIS_URL as string);
  cluster = new Cluster([{ host: seed.hostname, port: Number(seed.port) }]);
  [a, b] = await Promise.all([startInstance({ LOG_LEVEL: "info" }), startInstance({ LOG_LEVEL: "info" })]);
});
afterAll(async () => {
  await Promise.all([a.close(), b.close()]);
  cluster.disconnect();
});

/** The master serving a key's slot, as "host:port". */
async function masterOf(key: string): Promise<string> {
  const slots = await cluster.cluster("SLOTS");
  const slot = calculateSlot(key);
  const [, , master] = slots.find(([from, to]) => slot >= from && slot <= to) ?? [];
  return `${master?.[0]}:${master?.[1]}`;
}

test("a master killed mid-load: answers throughout, its replica takes over, nothing stale", async ({ alice }) => {
  const posts = await Promise.all(Array.from({ length: 6 }, () => createPost(alice)));
  const likers: TestUser[] = await Promise.all(Array.from({ length: 16 }, () => createUser()));
  const reader = await createUser();
  const instances = [a, b];
  // Warm both instances' caches (and the response cache) on every post.
  for (const instance of instances) {
    for (const post of posts) {
      await instance.query(READ, { id: post.gid }, reader.token);
      await instance.query(READ, { id: post.gid });
    }
  }

  // The likes each post has had answered so far: a read that starts later must show at least as many.
  const answered = new Map(posts.map((post) => [post.gid, 0]));
  const errors: Record<string, number> = {};
  /** Reads that showed fewer likes than had been answered when they began (`atMs`: since the kill). */
  const stale: { post: string; expected: number; seen: number; atMs: number }[] = [];
  let reads = 0;
  let killedAt = Number.POSITIVE_INFINITY;
  /**
   * When the killed master's shard first answered a read from the cache again (source instances report hits in
   * their answers' extensions; bundled ones run in production, without them).
   */
  let cachedAgainAt: number | undefined;
  let writes = 0;
  let running = true;
  const noteError = (result: { errors?: { extensions?: { code?: string } }[] }) => {
    for (const error of result.errors ?? []) {
      const code = error.extensions?.code ?? "NO_CODE";
      errors[code] = (errors[code] ?? 0) + 1;
    }
  };

  const writers = posts.map(async (post, p) => {
    for (let i = 0; running && i < likers.length; i++) {
      const result = await instances[(i + p) % 2]!.query(LIKE, { postId: post.gid }, likers[i]!.token);
      noteError(result);
      const outcome = result.data?.likePost?.__typename;
      if (outcome && outcome !== "LikePostSuccess") errors[outcome] = (errors[outcome] ?? 0) + 1;
      if (outcome === "LikePostSuccess") answered.set(post.gid, (answered.get(post.gid) ?? 0) + 1);
      writes++;
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
  });
  const readers = Array.from({ length: 4 }, async (_, r) => {
    for (let i = 0; running; i++) {
      const post = posts[(i * 7 + r) % posts.length]!;
      const expected = answered.get(post.gid) ?? 0;
      const started = Date.now();
      // Signed in (the entity cache) and signed out (the response cache), through either instance.
      const result = await instances[(i + r) % 2]!.query(READ, { id: post.gid }, i % 2 ? reader.token : undefined);
      noteError(result);
      reads++;
      const seen = result.data?.post?.likeCount;
      if (typeof seen === "number" && seen < expected) {
        stale.push({ post: post.gid, expected, seen, atMs: started - killedAt });
      }
      // The first post's cached parts include one on the killed master: a hit on it means that shard is back.
      if (post === posts[0] && started > killedAt && result.extensions?.cache?.hits > 0) cachedAgainAt ??= Date.now();
    }
  });

  // Kill the master holding the first post's cached counters, a second into the load.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const victim = await masterOf(cacheKeys("post-counts", posts[0]!.id).versionKey);
  const victimPort = victim.split(":")[1] as string;
  killedAt = Date.now();
  await script("kill", victimPort);
  let promotedAfterMs: number | undefined;
  while (promotedAfterMs === undefined && Date.now() - killedAt < 15_000) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    if ((await masterOf(cacheKeys("post-counts", posts[0]!.id).versionKey).catch(() => victim)) !== victim) {
      promotedAfterMs = Date.now() - killedAt;
    }
  }
  // Load keeps going for a while on the new master.
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  running = false;
  await Promise.all([...writers, ...readers]);
  await script("revive", victimPort);

  // Caching resumed on both instances: a read is answered from the cache again.
  const recoveredAfterMs = cachedAgainAt && cachedAgainAt - killedAt;
  const resumedAfterMs: Record<string, number> = {};
  for (const [name, instance] of [["a", a] as const, ["b", b] as const]) {
    for (let attempt = 0; attempt < 40 && resumedAfterMs[name] === undefined; attempt++) {
      const result = await instance.query(READ, { id: posts[0]!.gid }, reader.token);
      if ((await statsOf(instance, result)).cache.hits > 0) resumedAfterMs[name] = Date.now() - killedAt;
      else await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  console.log(
    JSON.stringify({ failover: { reads, writes, errors, stale: stale.length, promotedAfterMs, recoveredAfterMs } }),
  );

  expect(promotedAfterMs, "the replica took over").toBeDefined();
  expect(errors).toEqual({});
  expect(stale).toEqual([]);
  expect(Object.keys(resumedAfterMs).sort()).toEqual(["a", "b"]);
  // Afterwards every answer, signed in or out and through either instance, is what the database holds.
  for (const post of posts) {
    const likes = await db().like.count({ where: { postId: post.id } });
    expect(likes).toBe(answered.get(post.gid));
    for (const instance of instances) {
      for (const token of [reader.token, undefined]) {
        expect((await instance.query(READ, { id: post.gid }, token)).data.post.likeCount).toBe(likes);
      }
    }
  }
});
