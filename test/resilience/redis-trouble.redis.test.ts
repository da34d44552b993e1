// Redis down, slow or failing: every query still answers from PostgreSQL, the problem is logged once, and the
// cache resumes by itself when Redis is back.
import { afterAll, beforeAll, describe, expect } from "vitest";
import { createPost, test } from "../kit/helpers.ts";
import { type Instance, startInstance, statsOf } from "../kit/instances.ts";
import { startProxy, type TcpProxy } from "../kit/tcp-proxy.ts";

const logged = (instance: Instance, message: string) => instance.logs.filter((line) => line.msg === message).length;
const DOWN = "cache: Redis unavailable, serving from PostgreSQL until it is back";
const BACK = "cache: Redis is reachable again, caching resumed";
const READ = `query ($id: ID!) { post(id: $id) { caption likeCount author { handle } photos { width } } }`;

/** Reads a post `times` times; signed in (`token`), past the response cache, which serves only the signed-out. */
async function readMany(instance: Instance, id: string, times: number, token?: string) {
  const results: Awaited<ReturnType<Instance["query"]>>[] = [];
  for (let i = 0; i < times; i++) results.push(await instance.query(READ, { id }, token));
  return results;
}

describe.each(["down", "slow", "errors"] as const)("Redis %s", (mode) => {
  let proxy: TcpProxy;
  let instance: Instance;
  beforeAll(async () => {
    proxy = await startProxy(process.env.REDIS_URL as string);
    proxy.setMode(mode);
    instance = await startInstance({ REDIS_URL: proxy.url, LOG_LEVEL: "info" });
  });
  afterAll(async () => {
    await instance.close();
    await proxy.close();
  });

  test("queries are answered from PostgreSQL and the problem is logged once", async ({ alice }) => {
    const post = await createPost(alice, { caption: `redis ${mode}` });
    const results = await readMany(instance, post.gid, 8);
    for (const result of results) {
      expect(result.errors).toBeUndefined();
      expect(result.data.post).toEqual({
        caption: `redis ${mode}`,
        likeCount: 0,
        author: { handle: alice.handle },
        photos: [{ width: 1080 }],
      });
    }
    expect(logged(instance, DOWN)).toBe(1);
  });
});

test("Redis stopping mid-run and coming back: answers throughout, caching resumes by itself", async ({ alice }) => {
  const proxy = await startProxy(process.env.REDIS_URL as string);
  const instance = await startInstance({ REDIS_URL: proxy.url, LOG_LEVEL: "info" });
  try {
    const post = await createPost(alice, { caption: "outage" });
    await readMany(instance, post.gid, 2, alice.token);
    const [warm] = await readMany(instance, post.gid, 1, alice.token);
    expect((await statsOf(instance, warm!)).cache.hits).toBeGreaterThan(0);
    // Signed out, the same read is kept whole by the response cache, and answered from it.
    const [, cached] = await readMany(instance, post.gid, 2);
    expect((await statsOf(instance, cached!)).responseCache).toBe("hit");

    proxy.setMode("down");
    const during = await readMany(instance, post.gid, 5, alice.token);
    expect(during.every((r) => r.data.post.caption === "outage")).toBe(true);
    expect((await statsOf(instance, during.at(-1)!)).cache).toEqual({
      roundTrips: 0,
      hits: 0,
      misses: expect.any(Number),
    });
    // Without Redis nobody can tell whether a kept answer is still current: none is served.
    const signedOut = await readMany(instance, post.gid, 3);
    expect(signedOut.every((r) => r.data.post.caption === "outage")).toBe(true);
    for (const result of signedOut) expect((await statsOf(instance, result)).responseCache).not.toBe("hit");
    expect(logged(instance, DOWN)).toBe(1);

    proxy.setMode("forward");
    // The breaker probes Redis again after its cooldown (the client reconnects in the background meanwhile), and
    // trusts it a second later (what other instances could not invalidate meanwhile has landed by then).
    let resumed = false;
    for (let attempt = 0; attempt < 40 && !resumed; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      const [result] = await readMany(instance, post.gid, 1, alice.token);
      expect(result?.data.post.caption).toBe("outage");
      resumed = (await statsOf(instance, result!)).cache.hits > 0;
    }
    expect(resumed).toBe(true);
    const [, again] = await readMany(instance, post.gid, 2);
    expect((await statsOf(instance, again!)).responseCache).toBe("hit");
    expect(logged(instance, BACK)).toBe(1);
    expect(logged(instance, DOWN)).toBe(1);
  } finally {
    await instance.close();
    await proxy.close();
  }
});

test("a busy process does not mistake its own lag for a slow Redis", async () => {
  const { RedisStore } = await import("../../src/caching/store.ts");
  // REDIS_URL itself: the instances above read their settings (a proxy's address) into the modules this file imports.
  const store = new RedisStore({ url: process.env.REDIS_URL });
  try {
    await store.set(`${process.env.REDIS_KEY_PREFIX}:lag`, "answered", 10_000);
    const read = store.mget([`${process.env.REDIS_KEY_PREFIX}:lag`]);
    // Let the call start (its budget's timer set, the command written: a few microtask turns, no I/O)...
    for (let turn = 0; turn < 5; turn++) await null;
    // ...then the process is busy for twice the 150 ms budget (a GC pause, a CPU spike); Redis answers meanwhile.
    const until = Date.now() + 300;
    while (Date.now() < until) {}
    expect(await read).toEqual(["answered"]);
    expect(store.available).toBe(true);
  } finally {
    await store.close();
  }
});
