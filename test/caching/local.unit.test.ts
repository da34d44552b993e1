// The rules of an instance's local cache (src/caching/local.ts), against a stream held in memory here (the real one,
// in Redis, is tested through two instances in two-instances.redis.test.ts): what it may keep and serve after
// catching up, and that it drops everything when it fell behind or cannot read the stream.
import { expect, test } from "vitest";
import { LocalCache, type StreamAccess } from "../../src/caching/local.ts";

/** A stream of invalidations: entries `n-0` with the version keys they name. */
function memoryStream() {
  const entries: [string, string[]][] = [];
  let reads = 0;
  let failing = false;
  const stream: StreamAccess = {
    async read(position, count) {
      reads++;
      if (failing) return null;
      if (position === undefined) return { entries: [], last: entries.at(-1)?.[0] };
      const after = Number(position.split("-")[0]);
      return { entries: entries.filter(([id]) => Number(id.split("-")[0]) > after).slice(0, count) };
    },
  };
  return {
    stream,
    append: (...keys: string[]) => entries.push([`${entries.length + 1}-0`, keys.flatMap((key) => ["k", key])]),
    reads: () => reads,
    fail: (value: boolean) => {
      failing = value;
    },
  };
}

const entry = (version: string) => ({ version, data: { caption: `v${version}` } });

test("kept entries are served until the stream says they changed", async () => {
  const redis = memoryStream();
  redis.append("old"); // before this instance started: not its concern
  const cache = new LocalCache(redis.stream, 100);
  const mark = (await cache.catchUp(performance.now())) as number;
  cache.keep("post:1", entry("1"), mark);
  cache.keep("post:2", entry("1"), mark);
  expect(cache.get("post:1")?.version).toBe("1");
  redis.append("post:1");
  await cache.catchUp(performance.now());
  expect(cache.get("post:1")).toBeUndefined();
  expect(cache.get("post:2")?.version).toBe("1");
});

test("what a request read before an invalidation it had not seen is not kept", async () => {
  const redis = memoryStream();
  const cache = new LocalCache(redis.stream, 100);
  const early = (await cache.catchUp(performance.now())) as number;
  // Another request catches up after a write: the early request's value (read before it) may be older.
  redis.append("post:1");
  const late = (await cache.catchUp(performance.now())) as number;
  cache.keep("post:1", entry("1"), early);
  expect(cache.get("post:1")).toBeUndefined();
  cache.keep("post:1", entry("2"), late);
  expect(cache.get("post:1")?.version).toBe("2");
  // This instance's own write forgets at once, and refuses what was read before it.
  cache.forget("post:1");
  cache.keep("post:1", entry("2"), late);
  expect(cache.get("post:1")).toBeUndefined();
});

test("an instance that fell behind (a full read) drops everything and starts from the end", async () => {
  const redis = memoryStream();
  const cache = new LocalCache(redis.stream, 100);
  const mark = (await cache.catchUp(performance.now())) as number;
  cache.keep("post:1", entry("1"), mark);
  for (let i = 0; i < 1_000; i++) redis.append(`other:${i}`);
  const after = (await cache.catchUp(performance.now())) as number;
  expect(cache.get("post:1")).toBeUndefined();
  cache.keep("post:1", entry("1"), after);
  redis.append("post:1");
  await cache.catchUp(performance.now());
  expect(cache.get("post:1")).toBeUndefined();
});

test("requests share a read sent after they began; a later request sends its own", async () => {
  const redis = memoryStream();
  const cache = new LocalCache(redis.stream, 100);
  const began = performance.now();
  await Promise.all([cache.catchUp(began), cache.catchUp(began)]);
  expect(redis.reads()).toBe(1);
  await cache.catchUp(performance.now() + 1);
  expect(redis.reads()).toBe(2);
});

test("when the stream cannot be read, nothing may be served (no mark)", async () => {
  const redis = memoryStream();
  const cache = new LocalCache(redis.stream, 100);
  redis.fail(true);
  expect(await cache.catchUp(performance.now())).toBeNull();
  redis.fail(false);
  expect(await cache.catchUp(performance.now())).toBe(1);
});

test("per-viewer facts have a pool of their own: a flood of them evicts no entity, and the stream drops them too", async () => {
  const redis = memoryStream();
  const cache = new LocalCache(redis.stream, 10);
  const mark = (await cache.catchUp(performance.now())) as number;
  cache.keep("post:1", entry("1"), mark);
  // Twice the entities' bound in facts (a viewer opening post after post): the post stays.
  for (let i = 0; i < 20; i++) cache.keep(`viewer-like:v:${i}`, entry("local"), mark, "facts");
  expect(cache.get("post:1")?.version).toBe("1");
  expect(cache.get("viewer-like:v:19", "facts")?.version).toBe("local");
  expect(cache.get("viewer-like:v:19")).toBeUndefined(); // not an entity
  // A third flood evicts the oldest facts, not the post.
  for (let i = 20; i < 30; i++) cache.keep(`viewer-like:v:${i}`, entry("local"), mark, "facts");
  expect(cache.get("viewer-like:v:0", "facts")).toBeUndefined();
  expect(cache.get("post:1")?.version).toBe("1");
  // An unlike through another instance: dropped at the next catch-up, and a read from before it is not kept.
  redis.append("viewer-like:v:25");
  const late = (await cache.catchUp(performance.now())) as number;
  expect(cache.get("viewer-like:v:25", "facts")).toBeUndefined();
  cache.keep("viewer-like:v:25", entry("local"), mark, "facts");
  expect(cache.get("viewer-like:v:25", "facts")).toBeUndefined();
  cache.keep("viewer-like:v:25", entry("local"), late, "facts");
  expect(cache.get("viewer-like:v:25", "facts")?.version).toBe("local");
});

test("what was current at a catch-up is vouched for until the stream names a key, in that catch-up or later", async () => {
  const redis = memoryStream();
  const cache = new LocalCache(redis.stream, 100);
  // The first catch-up starts at the stream's end: what came before it is unknown, so it vouches for nothing.
  const first = (await cache.catchUp(performance.now())) as number;
  expect(cache.unchangedSince(["post:1"], first)).toBe(false);
  const confirmed = (await cache.catchUp(performance.now() + 1)) as number;
  const answer = ["post:1", "user:1"];
  expect(cache.unchangedSince(answer, confirmed)).toBe(true);
  redis.append("post:2");
  await cache.catchUp(performance.now());
  expect(cache.unchangedSince(answer, confirmed)).toBe(true);
  // Named in the very catch-up an answer was confirmed after: on a cluster the key's own shard may not have applied
  // it when the versions were read, so that check proves nothing.
  redis.append("user:1");
  const named = (await cache.catchUp(performance.now())) as number;
  expect(cache.unchangedSince(answer, confirmed)).toBe(false);
  expect(cache.unchangedSince(answer, named)).toBe(false);
  // Confirmed again after a later catch-up: vouched for again. This instance's own write counts at once.
  const later = (await cache.catchUp(performance.now())) as number;
  expect(cache.unchangedSince(answer, later)).toBe(true);
  cache.forget("post:1");
  expect(cache.unchangedSince(answer, later)).toBe(false);
});

test("an instance that fell behind, or forgot an invalidation early, vouches for nothing confirmed before", async () => {
  const redis = memoryStream();
  const cache = new LocalCache(redis.stream, 100);
  await cache.catchUp(performance.now());
  const confirmed = (await cache.catchUp(performance.now() + 1)) as number;
  expect(cache.unchangedSince(["post:1"], confirmed)).toBe(true);
  // More than one read's worth of entries: skipped, not read; whatever they named is unknown.
  for (let i = 0; i < 1_000; i++) redis.append(`post:${i + 100}`);
  const after = (await cache.catchUp(performance.now())) as number;
  expect(cache.unchangedSince(["post:1"], confirmed)).toBe(false);
  expect(cache.unchangedSince(["post:1"], after)).toBe(false);
  const next = (await cache.catchUp(performance.now())) as number;
  expect(cache.unchangedSince(["post:1"], next)).toBe(true);
  // A burst of invalidations beyond what is remembered pushes the oldest out before their time.
  for (let i = 0; i < 100_001; i++) cache.forget(`photo:${i}`);
  const beyond = (await cache.catchUp(performance.now())) as number;
  expect(cache.unchangedSince(["post:1"], next)).toBe(false);
  expect(cache.unchangedSince(["post:1"], beyond + 1)).toBe(true);
});

test("a request that began while a read was in flight sends its own at once, and both apply in order", async () => {
  const redis = memoryStream();
  const cache = new LocalCache(redis.stream, 100);
  await cache.catchUp(performance.now());
  const first = cache.catchUp(performance.now() + 1);
  redis.append("post:1"); // a write answered after the first read was sent
  const second = cache.catchUp(performance.now() + 2);
  // Not queued behind the first: queued, a busy instance's requests would each wait two round trips.
  expect(redis.reads()).toBe(3);
  const [early, late] = (await Promise.all([first, second])) as [number, number];
  expect(late).toBeGreaterThan(early);
  cache.keep("post:1", entry("1"), early);
  expect(cache.get("post:1")).toBeUndefined();
  // The position moved past the entry: the next read does not bring it again.
  cache.keep("post:1", entry("2"), late);
  await cache.catchUp(performance.now() + 3);
  expect(cache.get("post:1")?.version).toBe("2");
});
