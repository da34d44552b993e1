// The instance's own copy of hot entity parts, parsed, in front of Redis: a post, user or photo read a moment ago is
// served again with no round trip and no parse. It stays true on serverless, where pub/sub cannot reach a frozen
// instance: every write that bumps versions also appends the version keys to an invalidation stream in Redis
// (store.ts), and each request first reads that stream from the instance's last position (one round trip, shared
// by requests that began before it was sent), dropping what changed. The response cache vouches for its answers
// the same way (`unchangedSince`). An instance that fell too far behind (a thaw
// after a busy hour: more than a read's worth of entries) drops everything and starts again from the end.
//
// So a request is never served an entity older than a write that answered before the request began, on any
// instance: the write appended its keys before answering, and the request read the stream after it began. What a
// request reads from Redis while a write is in flight is kept only if no invalidation of it arrived since the
// request's catch-up. A stream entry Redis lost (a failover before its replica had it) is bounded by the entries'
// lifetime (LOCAL_TTL_MS).
import { LRUCache } from "lru-cache";
import { config } from "../platform/config.ts";
import type { RedisClient } from "../platform/redis.ts";
import { type RequestScope, requestScope } from "../platform/request-scope.ts";

/** How long a local entry lives at most (it is dropped sooner by any invalidation the stream carries). */
const LOCAL_TTL_MS = 30_000;
/** Entries read per catch-up; a full read means the instance fell behind: it drops everything instead. */
const CATCH_UP_COUNT = 1_000;
/** How long an invalidation is remembered, so a request that read before it arrived keeps nothing older. */
export const REMEMBER_MS = 30_000;
/** Per-viewer facts kept for each entity part the instance keeps (`CACHE_LOCAL_ENTRIES`): a fact is ~100 bytes. */
const FACTS_PER_ENTRY = 2;

/** One entity part as Redis held it: its version and its fields, parsed (dates revived). */
export interface LocalEntry {
  version: string;
  data: Record<string, unknown>;
  /** Where the versions began when it was read (with read replicas: an absent version's floor, replicas.ts). */
  born?: string | null;
}

/** The stream every instance's invalidations go to (one slot of its own on a cluster). */
export const invalidationStream = () => `${config().redisKeyPrefix}:{invalidations}`;

/**
 * The stream's commands, as the Redis store runs them (guarded: its budget, its breaker). `read` answers null when
 * Redis could not be asked.
 */
export interface StreamAccess {
  /** Entries after `position` (at most `count`), or only the last entry's id when `position` is undefined. */
  read(position: string | undefined, count: number): Promise<{ entries: [string, string[]][]; last?: string } | null>;
}

/** Which of the instance's memories an entry lives in: entity parts, or per-viewer facts (their own bound). */
export type LocalPool = "entities" | "facts";

export class LocalCache {
  private readonly entries: LRUCache<string, LocalEntry>;
  /** Per-viewer facts (has liked, follows): many, tiny, mostly read once; kept apart so they never evict entities. */
  private readonly facts: LRUCache<string, LocalEntry>;
  /** Version keys invalidated lately, with the catch-up count at which this instance learnt it. */
  private readonly invalidated = new LRUCache<string, number>({
    max: 100_000,
    ttl: REMEMBER_MS,
    // An invalidation pushed out before its time is one `unchangedSince` can no longer see.
    dispose: (at, _key, reason) => {
      if (reason === "evict") this.blindUpTo = Math.max(this.blindUpTo, at);
    },
  });
  /** Up to which catch-up this instance may have missed an invalidation (it fell behind, or forgot one early). */
  private blindUpTo = 0;
  private position: string | undefined;
  private catchUps = 0;
  private last?: { startedAt: number; done: Promise<number | null> };

  private readonly stream: StreamAccess;

  constructor(stream: StreamAccess, max: number) {
    this.stream = stream;
    this.entries = new LRUCache<string, LocalEntry>({ max, ttl: LOCAL_TTL_MS });
    this.facts = new LRUCache<string, LocalEntry>({ max: max * FACTS_PER_ENTRY, ttl: LOCAL_TTL_MS });
  }

  private pool(pool: LocalPool): LRUCache<string, LocalEntry> {
    return pool === "facts" ? this.facts : this.entries;
  }

  /**
   * Catches up with the invalidations for a request that began at `startedAt` (performance.now()): reuses a read
   * sent after that, else sends one. @returns a mark to keep values under (see `keep`), or null when the stream
   * could not be read (then nothing local may be served).
   */
  catchUp(startedAt: number): Promise<number | null> {
    const last = this.last;
    if (last && last.startedAt >= startedAt) return last.done;
    const sentAt = performance.now();
    // Sent at once, beside a read still in flight (sent before this request began, so it cannot vouch for it):
    // queued behind it, every request of a busy instance would wait up to two round trips. The stream is one key,
    // read over one connection, so reads are answered in the order sent; one answered out of order would only apply
    // entries that a later read applied already (forgetting is idempotent, and the position only moves forward).
    const done = this.readOnce();
    this.last = { startedAt: sentAt, done };
    return done;
  }

  private async readOnce(): Promise<number | null> {
    if (this.position === undefined) {
      // First read, or fell behind: nothing kept can be vouched for; start at the stream's end.
      const reply = await this.stream.read(undefined, 0);
      if (!reply) return null;
      this.entries.clear();
      this.facts.clear();
      this.position = reply.last ?? "0-0";
      this.blindUpTo = this.catchUps + 1;
      return ++this.catchUps;
    }
    const reply = await this.stream.read(this.position, CATCH_UP_COUNT);
    if (!reply) return null;
    if (reply.entries.length >= CATCH_UP_COUNT) {
      this.position = undefined;
      return this.readOnce();
    }
    for (const [id, fields] of reply.entries) {
      for (let i = 1; i < fields.length; i += 2) this.forget(fields[i] as string);
      if (this.position === undefined || after(id, this.position)) this.position = id;
    }
    return ++this.catchUps;
  }

  /** Drops a version key's entry (its entity changed), remembering it for `keep`. */
  forget(versionKey: string): void {
    this.entries.delete(versionKey);
    this.facts.delete(versionKey);
    this.invalidated.set(versionKey, this.catchUps + 1);
  }

  /**
   * Whether this instance knows that none of the version keys changed since catch-up `mark` — what was current then
   * (checked in Redis after that catch-up) still is. An invalidation learnt in catch-up `mark` itself counts as
   * since: on a cluster the stream's shard may have it before the key's shard applied it, so the check may have
   * read the old version. Callers bound how old `mark` may be: invalidations are remembered for REMEMBER_MS.
   */
  unchangedSince(versionKeys: readonly string[], mark: number): boolean {
    if (mark <= this.blindUpTo) return false;
    for (const key of versionKeys) {
      const at = this.invalidated.peek(key);
      if (at !== undefined && at >= mark) return false;
    }
    return true;
  }

  /** The entry for a version key, when held. */
  get(versionKey: string, pool: LocalPool = "entities"): LocalEntry | undefined {
    return this.pool(pool).get(versionKey);
  }

  /**
   * Keeps what a request read from Redis (or PostgreSQL) after its catch-up `mark`, unless an invalidation of it
   * arrived since (it may be older than that write).
   */
  keep(versionKey: string, entry: LocalEntry, mark: number, pool: LocalPool = "entities"): void {
    const at = this.invalidated.get(versionKey);
    if (at !== undefined && at > mark) return;
    this.pool(pool).set(versionKey, entry);
  }
}

/** Whether stream entry id `a` ("<ms>-<seq>") comes after `b`. */
function after(a: string, b: string): boolean {
  const [aMs = 0, aSeq = 0] = a.split("-").map(Number);
  const [bMs = 0, bSeq = 0] = b.split("-").map(Number);
  return aMs > bMs || (aMs === bMs && aSeq > bSeq);
}

let local: LocalCache | undefined;
let localFor: RedisClient | undefined;

/** The instance's local cache in front of `client` (created on first use), or undefined when it is turned off. */
export function localCache(stream: StreamAccess, client: RedisClient): LocalCache | undefined {
  const max = config().cache.localEntries;
  if (max === 0) return undefined;
  if (!local || localFor !== client) {
    local = new LocalCache(stream, max);
    localFor = client;
  }
  return local;
}

const marks = new WeakMap<RequestScope, Promise<number | null>>();

/** This request's catch-up mark (one catch-up per request), or null outside a request or when it failed. */
export function requestMark(cache: LocalCache): Promise<number | null> {
  const scope = requestScope.getStore();
  if (!scope) return Promise.resolve(null);
  let mark = marks.get(scope);
  if (!mark) {
    mark = cache.catchUp(scope.startedAt);
    marks.set(scope, mark);
  }
  return mark;
}
