import { Redis } from "ioredis";
import { LRUCache } from "lru-cache";
import { config } from "../platform/config.ts";
import { logger } from "../platform/logger.ts";
import { databaseDown } from "../platform/outage.ts";
import { boundAge, covered } from "../platform/reads.ts";
import { requestScope } from "../platform/request-scope.ts";
import { inSpan } from "../platform/telemetry.ts";
import { type CachePeers, type Invalidation, postgresPeers } from "./peers.ts";

/**
 * The shared cache: Redis when REDIS_URL is set (one truth for every function instance), otherwise a bounded
 * in-process LRU with the same behaviour, kept coherent with the other processes on the database through
 * PostgreSQL LISTEN/NOTIFY (see peers.ts).
 *
 * Invalidation uses versions. Each cached entity has a version key that writers bump after their transaction
 * commits. A reader notes the version before reading PostgreSQL and stores what it read only if the version is
 * still the same (atomically, in Redis); a stored value carries the version it was read under, and a hit
 * counts only if that still matches. So a read racing a write can never put back the old value, and a value
 * cached by one deploy is invalidated by the writes of any other (the version keys do not depend on the
 * shape of the cached values, only the value keys do).
 */
export interface CacheStore {
  readonly kind: "redis" | "memory";
  /**
   * False while the store cannot vouch for what it answers (Redis unreachable; the in-process store cut off from
   * other processes' changes): its answers then read as "nothing cached", which proves nothing.
   */
  readonly available: boolean;
  /** Values of the keys, in order (null for absent), in one round trip. */
  mget(keys: string[]): Promise<(string | null)[]>;
  /** Stores each value only if its version key still holds the version seen before the database read. */
  fillIfUnchanged(entries: FillEntry[]): Promise<void>;
  /** Bumps the versions and drops the values of entities that changed (after the commit: see changes.ts). */
  invalidate(entities: { versionKey: string; valueKeys: string[] }[]): Promise<void>;
  /** Stores a value (no version), e.g. a lock or a precomputed page. */
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /** Takes a lock unless someone holds it. When the store is unavailable, everyone "gets" it. */
  acquireLock(key: string, ttlMs: number): Promise<boolean>;
  del(keys: string[]): Promise<void>;
  close(): Promise<void>;
}

export interface FillEntry {
  valueKey: string;
  versionKey: string;
  seenVersion: string;
  value: string;
  ttlMs: number;
}

/** Bump this when the shape of any cached value changes: a deploy then uses fresh value keys. */
export const CACHE_SHAPE_VERSION = 1;

/** Versions outlive any value (values live minutes): an expired version key reads as "0" again safely. */
const VERSION_TTL_MS = 7 * 24 * 3600_000;

const FILL_SCRIPT = `
for i = 1, #KEYS, 2 do
  local j = (i - 1) / 2 * 3
  local current = redis.call('GET', KEYS[i + 1]) or '0'
  if current == ARGV[j + 1] then
    redis.call('SET', KEYS[i], ARGV[j + 2], 'PX', ARGV[j + 3])
  end
end
return 1`;

/** Counts one round trip to the cache in the current request's scope (reported by dev responses and the bench). */
export function countRoundTrip() {
  const scope = requestScope.getStore();
  if (scope) scope.cacheRoundTrips++;
}

/**
 * A call's result, or a rejection once `ms` have passed — and the event loop has also handled the I/O that
 * arrived meanwhile. A process running late (a CPU spike, a long GC pause, a busy machine) runs its overdue
 * timers before it reads its sockets: a plain timeout would then blame Redis for the process's own lag, and open
 * the breaker while the answer sat unread. The one extra turn (setImmediate runs after the I/O poll) lets an
 * answer that did arrive in time win.
 */
function withinBudget<T>(call: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => setImmediate(() => reject(new Error("Command timed out"))), ms);
  });
  return Promise.race([call, expired]).finally(() => clearTimeout(timer));
}

/**
 * Redis, guarded: every call has a small time budget, and while Redis is unreachable, slow or failing the
 * store answers "nothing cached" immediately (a circuit breaker, re-probed every `cooldownMs`), so requests
 * are served from PostgreSQL. The outage and the recovery are each logged once.
 */
export class RedisStore implements CacheStore {
  readonly kind = "redis";
  readonly client: Redis;
  private readonly options: { commandTimeoutMs?: number; cooldownMs?: number };
  private openUntil = 0;
  private healthy = true;
  private connecting?: Promise<void>;

  constructor(url: string, options: { commandTimeoutMs?: number; cooldownMs?: number } = {}) {
    this.options = options;
    this.client = new Redis(url, {
      lazyConnect: true,
      connectTimeout: 1_000,
      // A backstop only: each call's budget is kept by guard() (see withinBudget).
      commandTimeout: 1_000,
      maxRetriesPerRequest: 0,
      // Keep reconnecting in the background, never faster than every 2 s.
      retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
    });
    this.client.defineCommand("fillIfUnchanged", { lua: FILL_SCRIPT });
    // Connection errors are reported through the breaker (once); the event itself only needs a listener.
    this.client.on("error", () => {});
  }

  /** False while the breaker is open (Redis recently failed): callers should not wait on Redis. */
  get available(): boolean {
    return Date.now() >= this.openUntil;
  }

  private async guard<T>(command: string, operation: () => Promise<T>, fallback: T): Promise<T> {
    if (Date.now() < this.openUntil) return fallback;
    try {
      // The first connection (TCP, and TLS to ElastiCache) is no command: it has its own budget (connectTimeout).
      // Counted against the command's 150 ms, a cold instance's first read would open the breaker.
      if (this.client.status === "wait") {
        this.connecting ??= this.client.connect().then(
          () => undefined,
          (error) => {
            this.connecting = undefined;
            throw error;
          },
        );
      }
      if (this.connecting) await this.connecting;
      countRoundTrip();
      const result = await inSpan(
        `redis ${command}`,
        { "db.system.name": "redis" },
        () => withinBudget(operation(), this.options.commandTimeoutMs ?? 150),
        "client",
      );
      if (!this.healthy) {
        this.healthy = true;
        logger().info("cache: Redis is reachable again, caching resumed");
      }
      return result;
    } catch (error) {
      this.openUntil = Date.now() + (this.options.cooldownMs ?? 2_000);
      if (this.healthy) {
        this.healthy = false;
        logger().warn({ err: error }, "cache: Redis unavailable, serving from PostgreSQL until it is back");
      }
      return fallback;
    }
  }

  mget(keys: string[]) {
    if (keys.length === 0) return Promise.resolve([]);
    return this.guard(
      "MGET",
      () => this.client.mget(keys),
      keys.map(() => null),
    );
  }

  async fillIfUnchanged(entries: FillEntry[]) {
    if (entries.length === 0) return;
    const keys = entries.flatMap((e) => [e.valueKey, e.versionKey]);
    const args = entries.flatMap((e) => [e.seenVersion, e.value, String(e.ttlMs)]);
    await this.guard(
      "EVALSHA",
      async () => {
        await (
          this.client as unknown as { fillIfUnchanged(n: number, ...a: string[]): Promise<unknown> }
        ).fillIfUnchanged(keys.length, ...keys, ...args);
      },
      undefined,
    );
  }

  async invalidate(entities: { versionKey: string; valueKeys: string[] }[]) {
    if (entities.length === 0) return;
    const multi = this.client.multi();
    for (const { versionKey, valueKeys } of entities) {
      multi.incr(versionKey).pexpire(versionKey, VERSION_TTL_MS);
      if (valueKeys.length) multi.del(...valueKeys);
    }
    await this.guard(
      "MULTI",
      async () => {
        await multi.exec();
      },
      undefined,
    );
  }

  async set(key: string, value: string, ttlMs: number) {
    await this.guard("SET", () => this.client.set(key, value, "PX", ttlMs), undefined);
  }

  acquireLock(key: string, ttlMs: number) {
    return this.guard("SET", async () => (await this.client.set(key, "1", "PX", ttlMs, "NX")) === "OK", true);
  }

  async del(keys: string[]) {
    if (keys.length) await this.guard("DEL", () => this.client.del(...keys), 0);
  }

  async close() {
    this.client.disconnect();
  }
}

/**
 * The in-process store: same contract, for the processes of one database without Redis (dev, tests without
 * Redis, containers and functions deployed without it). Other processes' writes reach it through `peers`; each
 * read syncs with them first (one round trip, see peers.ts), and nothing is served while it cannot.
 */
export class MemoryStore implements CacheStore {
  readonly kind = "memory";
  private readonly peers?: CachePeers;
  private synced = true;
  // Bounded by bytes as well as entries: values range from a counter to a 16 KiB persisted document.
  private readonly values = new LRUCache<string, string>({
    max: 20_000,
    maxSize: 64 * 1024 * 1024,
    sizeCalculation: (value, key) => value.length + key.length,
  });
  private readonly versions = new LRUCache<string, string>({ max: 100_000 });
  /**
   * Bumped when the store forgets everything (its link to other processes was down): versions are
   * `<generation>.<n>`, so nothing read or kept under an earlier generation matches again.
   */
  private generation = 0;

  constructor(databaseUrl?: string) {
    if (databaseUrl) {
      this.peers = postgresPeers(databaseUrl, {
        apply: (invalidations) => this.applyLocally(invalidations),
        // Every version starts again under a new generation: values and answers kept under the old ones no
        // longer match. What is kept without a version (documents by hash, time-bound values) stays.
        reset: () => {
          this.versions.clear();
          this.generation++;
        },
      });
    }
  }

  /**
   * Cut off from other processes' writes, what it holds is still served while the database is unreachable to this
   * process too (nobody can be writing through it then; the answers say they are degraded: use-degraded-flag.ts),
   * and nothing otherwise.
   */
  get available() {
    return this.synced || databaseDown() !== null;
  }

  private async sync(): Promise<boolean> {
    const peers = this.peers;
    if (!peers) return true;
    countRoundTrip();
    this.synced = await inSpan("cache sync", { "db.system.name": "postgresql" }, () => peers.sync(), "client");
    return this.synced;
  }

  private version(key: string) {
    return this.versions.get(key) ?? `${this.generation}.0`;
  }

  async mget(keys: string[]) {
    if (keys.length === 0) return [];
    if (!(await this.sync()) && !this.available) return keys.map(() => null);
    // Value and version keys have distinct names: each lives in one of the two maps.
    return keys.map((key) => this.values.get(key) ?? (isVersionKey(key) ? this.version(key) : null));
  }

  async fillIfUnchanged(entries: FillEntry[]) {
    if (!this.synced) return;
    for (const entry of entries) {
      if (this.version(entry.versionKey) === entry.seenVersion) {
        this.values.set(entry.valueKey, entry.value, { ttl: entry.ttlMs });
      }
    }
  }

  private applyLocally(invalidations: readonly Invalidation[]) {
    for (const { versionKey, valueKeys } of invalidations) {
      const n = Number(this.versions.get(versionKey)?.split(".")[1] ?? 0);
      this.versions.set(versionKey, `${this.generation}.${n + 1}`, { ttl: VERSION_TTL_MS });
      for (const key of valueKeys) this.values.delete(key);
    }
  }

  async invalidate(entities: Invalidation[]) {
    this.applyLocally(entities);
    await this.peers?.publish(entities);
  }

  async set(key: string, value: string, ttlMs: number) {
    this.values.set(key, value, { ttl: ttlMs });
  }

  async acquireLock(key: string, ttlMs: number) {
    if (this.values.has(key)) return false;
    this.values.set(key, "1", { ttl: ttlMs });
    return true;
  }

  async del(keys: string[]) {
    for (const key of keys) this.values.delete(key);
  }

  async close() {
    await this.peers?.close();
  }
}

let store: CacheStore | undefined;

/** The process's cache store, created on first use (Redis connects lazily). */
export function cacheStore(): CacheStore {
  if (!store) {
    const { redisUrl, database } = config();
    store = redisUrl ? new RedisStore(redisUrl) : new MemoryStore(database.url);
    logger().info(
      store.kind === "redis"
        ? "cache: Redis (shared by all instances)"
        : "cache: in-process, kept coherent with other processes through PostgreSQL LISTEN/NOTIFY (set REDIS_URL to share one cache)",
    );
  }
  return store;
}

/** Closes the store (tests, graceful shutdown). */
export async function closeCache(): Promise<void> {
  await store?.close();
  store = undefined;
}

const VERSION_INFIX = ":ver:";
const isVersionKey = (key: string) => key.includes(`${VERSION_INFIX}{`);

/** Where one entity's cached part lives: `{kind:id}` keeps its value and version in one Redis cluster slot. */
export function cacheKeys(kind: string, id: string) {
  const prefix = config().redisKeyPrefix;
  const tag = `{${kind}:${id}}`;
  return {
    valueKey: `${prefix}:c${CACHE_SHAPE_VERSION}:${tag}`,
    versionKey: `${prefix}${VERSION_INFIX}${tag}`,
    /** Value keys of the shape versions a running deploy may still use. */
    allValueKeys: [CACHE_SHAPE_VERSION - 1, CACHE_SHAPE_VERSION]
      .filter((v) => v > 0)
      .map((v) => `${prefix}:c${v}:${tag}`),
  };
}

/**
 * Dates are cached as ISO strings; every `...At` field of a parsed value comes back as a Date (in place).
 * A walk after `JSON.parse`, not a reviver: V8 parses with a reviver several times slower, and cache reads
 * parse a hundred entries per request.
 */
export function reviveDates<T>(value: T): T {
  if (Array.isArray(value)) {
    for (const item of value) reviveDates(item);
  } else if (value && typeof value === "object") {
    const record = value as Record<string, unknown>;
    for (const key in record) {
      const field = record[key];
      if (typeof field === "string") {
        if (field.length >= 20 && key.endsWith("At")) record[key] = new Date(field);
      } else if (field && typeof field === "object") reviveDates(field);
    }
  }
  return value;
}

/**
 * A computed value shared by everyone for `ttlSeconds` (e.g. the first explore page), not tied to one entity's
 * writes. Only one caller computes it when it is missing (a lock); the others wait briefly for the result
 * rather than all running the same expensive query at once.
 */
export async function cachedValue<T>(name: string, ttlSeconds: number, computeValue: () => Promise<T>): Promise<T> {
  // An answer that holds it may be shared no longer than it is; what computes it is covered by that bound.
  boundAge(ttlSeconds);
  const compute = () => covered(computeValue);
  const store = cacheStore();
  const key = `${config().redisKeyPrefix}:c${CACHE_SHAPE_VERSION}:${name}`;
  const read = async () => {
    const [hit] = await store.mget([key]);
    return hit ? reviveDates(JSON.parse(hit) as T) : undefined;
  };
  const cached = await read();
  if (cached !== undefined) return cached;
  if (await store.acquireLock(`${key}:lock`, 5_000)) {
    try {
      // Another caller may have computed it between our miss and our lock (it releases the lock when done).
      const stored = await read();
      if (stored !== undefined) return stored;
      const value = await compute();
      await store.set(key, JSON.stringify(value), jitter(ttlSeconds));
      return value;
    } finally {
      await store.del([`${key}:lock`]);
    }
  }
  for (let waited = 0; waited < 500; waited += 25) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    const value = await read();
    if (value !== undefined) return value;
  }
  return compute();
}

/** A TTL with ±10% jitter, so entries cached together do not all expire together. */
export function jitter(ttlSeconds: number): number {
  return Math.round(ttlSeconds * 1000 * (0.9 + Math.random() * 0.2));
}
