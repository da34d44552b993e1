import calculateSlot from "cluster-key-slot";
import { LRUCache } from "lru-cache";
import { config } from "../platform/config.ts";
import { logger } from "../platform/logger.ts";
import { databaseDown } from "../platform/outage.ts";
import { boundAge, covered } from "../platform/reads.ts";
import { bySlot, connectRedis, isCluster, nodesOf, type RedisClient } from "../platform/redis.ts";
import { PENDING_VERSION, parseLsn, readAt } from "../platform/replicas.ts";
import { requestScope } from "../platform/request-scope.ts";
import { inSpan } from "../platform/telemetry.ts";
import { invalidationStream, type LocalCache, localCache, type StreamAccess } from "./local.ts";
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
  /**
   * Bumps the versions and drops the values of entities that changed (after the commit: see changes.ts), the
   * versions stamped with the write's `lsn` when given (reads on replicas: platform/replicas.ts).
   */
  invalidate(entities: Invalidation[], lsn?: string): Promise<void>;
  /** Stores a value (no version), e.g. a lock or a precomputed page. */
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /**
   * Stores a value unless the key holds one (a lock: `true` when taken). When the store is unavailable, everyone
   * "gets" it.
   */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
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

/** How long an invalidation waits for REDIS_WAIT_REPLICAS replicas to acknowledge it. */
const WAIT_MS = 100;

const FILL_SCRIPT = `
for i = 1, #KEYS, 2 do
  local j = (i - 1) / 2 * 3
  local current = redis.call('GET', KEYS[i + 1]) or '0'
  if current == ARGV[j + 1] then
    redis.call('SET', KEYS[i], ARGV[j + 2], 'PX', ARGV[j + 3])
  end
end
return 1`;

/**
 * Bumps each entity's version and drops its values. KEYS: per entity, its version key then its value keys;
 * ARGV[1]: the versions' TTL; ARGV[2]: the write's place in the primary's WAL, when reads may go to replicas
 * (the version becomes `<n>@<lsn>`: platform/replicas.ts); then per entity how many value keys follow its version key.
 */
const INVALIDATE_SCRIPT = `
local k = 1
for i = 3, #ARGV do
  local n = (tonumber(string.match(redis.call('GET', KEYS[k]) or '0', '^%d+')) or 0) + 1
  redis.call('SET', KEYS[k], ARGV[2] == '' and n or (n .. '@' .. ARGV[2]), 'PX', ARGV[1])
  local values = tonumber(ARGV[i])
  for j = 1, values do redis.call('DEL', KEYS[k + j]) end
  k = k + values + 1
end
return 1`;

/** Counts round trips to the cache in the current request's scope (reported by dev responses and the bench). */
export function countRoundTrip(n = 1) {
  const scope = requestScope.getStore();
  if (scope) scope.cacheRoundTrips += n;
}

/**
 * A call's result, or a rejection once `ms` have passed — and the event loop has also handled the I/O that
 * arrived meanwhile. A process running late (a CPU spike, a long GC pause, a busy machine) runs its overdue
 * timers before it reads its sockets: a plain timeout would then blame Redis for the process's own lag, and open
 * the breaker while the answer sat unread. The one extra turn (setImmediate runs after the I/O poll) lets an
 * answer that did arrive in time win. A timer that fires well after it was due (the process was busy: a cold
 * instance's first request compiles and initialises for hundreds of milliseconds, during which a command to a node
 * not yet connected cannot even be sent) gives the call one more budget from then.
 */
function withinBudget<T>(call: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    const arm = (due: number, again: boolean) => {
      timer = setTimeout(() => {
        if (again && performance.now() - due > LATE_MS) arm(performance.now() + ms, false);
        else setImmediate(() => reject(new Error("Command timed out")));
      }, ms);
    };
    arm(performance.now() + ms, true);
  });
  return Promise.race([call, expired]).finally(() => clearTimeout(timer));
}

/** How late a budget's timer may fire before the process, not Redis, is taken to have been slow. */
const LATE_MS = 50;

const REDIS_OPTIONS = {
  lazyConnect: true,
  connectTimeout: 1_000,
  // A backstop only: each call's budget is kept by guard() (see withinBudget).
  commandTimeout: 1_000,
  maxRetriesPerRequest: 0,
  // Keep reconnecting in the background, never faster than every 2 s.
  retryStrategy: (attempt: number) => Math.min(attempt * 200, 2_000),
};

/**
 * A cluster's nodes connect on their first command (ioredis): a cold instance's first read would pay for its
 * connection to each master (TCP, TLS, the ready check) within a command's budget, and on a busy host overrun it —
 * taking Redis for down, and serving from PostgreSQL for the breaker's cooldown. So the masters are connected with
 * the cluster, under the connection's budget. One that does not answer (being failed over) is left to its first
 * command, as before.
 */
async function connectMasters(client: RedisClient): Promise<void> {
  if (!isCluster(client)) return;
  const ms = REDIS_OPTIONS.connectTimeout;
  await Promise.allSettled(
    client
      .nodes("master")
      .map((node) =>
        node.status === "wait"
          ? withinBudget(node.connect(), ms)
          : node.status === "ready"
            ? undefined
            : readyWithin(node, ms),
      ),
  );
}

/** Resolves once a connection already under way is ready; rejects after `ms`. */
function readyWithin(client: RedisClient, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off("ready", ready);
      reject(new Error(`Redis not ready within ${ms} ms`));
    }, ms);
    const ready = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once("ready", ready);
  });
}

/** WAIT on the connection to the node serving `key`'s slot (a WAIT of its own carries no key to route by). */
function waitOn(client: RedisClient, key: string, replicas: number): Promise<unknown> {
  if (!isCluster(client)) return client.wait(replicas, WAIT_MS);
  const node = client.slots[calculateSlot(key)]?.[0];
  const connection = client.nodes("master").find((n) => `${n.options.host}:${n.options.port}` === node);
  if (!connection) throw new Error(`no connection to ${node}`);
  return connection.wait(replicas, WAIT_MS);
}

/**
 * How long a write waits for its invalidations to reach Redis (and its replicas, with REDIS_WAIT_REPLICAS) before
 * it answers: long enough to ride out a cluster failover (a replica promoted in 2-3 s with a 1 s node timeout, and
 * the new master found). A write answered only once its invalidations are applied is never seen to have happened
 * while the cache still serves what it changed. Once Redis has been failing for LONG_OUTAGE_MS (an outage, not a
 * failover) writes stop waiting: nobody is served from Redis then. What a write could not invalidate is retried
 * every RETRY_MS — more often than another instance's breaker probes Redis again (cooldownMs) — and this instance
 * serves none of it from Redis meanwhile.
 */
const INVALIDATION_BUDGET_MS = 5_000;
const LONG_OUTAGE_MS = 30_000;
const RETRY_MS = 200;
/** See RedisStore.available: a few of other instances' retries (and a cluster's topology refresh) long. */
const RECOVERY_GRACE_MS = 1_000;

/**
 * Redis (one node or a cluster: platform/redis.ts), guarded: every call has a small time budget, and while Redis
 * is unreachable, slow or failing the store answers "nothing cached" immediately (a circuit breaker, re-probed
 * every `cooldownMs`), so requests are served from PostgreSQL. The outage and the recovery are each logged once.
 * On a cluster, multi-key reads are split by hash slot and pipelined per node (one round trip per node, in
 * parallel); what must be atomic (an entity's value and version) shares a slot by its `{kind:id}` tag.
 */
export class RedisStore implements CacheStore {
  readonly kind = "redis";
  readonly client: RedisClient;
  private readonly options: { commandTimeoutMs?: number; cooldownMs?: number };
  private readonly waitReplicas: number;
  private openUntil = 0;
  private graceUntil = 0;
  private failingSince: number | undefined;
  private healthy = true;
  private connecting?: Promise<void>;
  /** Invalidations Redis has not taken yet (a failover, an outage), by version key; retried until it does. */
  private readonly pending = new Map<string, Invalidation & { lsn?: string }>();
  private pendingValueKeys = new Set<string>();
  private retrying?: NodeJS.Timeout;

  /** `url`: another Redis than REDIS_URL's, in the same mode (tests). */
  constructor(options: { url?: string; commandTimeoutMs?: number; cooldownMs?: number } = {}) {
    this.options = options;
    this.waitReplicas = config().redis?.waitReplicas ?? 0;
    this.client = connectRedis(REDIS_OPTIONS, options.url);
    this.client.defineCommand("fillIfUnchanged", { lua: FILL_SCRIPT });
    this.client.defineCommand("invalidate", { lua: INVALIDATE_SCRIPT });
    // Connection errors are reported through the breaker (once); the event itself only needs a listener.
    this.client.on("error", () => {});
  }

  /** The stream of invalidations, as local caches read it (guarded: null when Redis cannot be asked). */
  private readonly stream: StreamAccess = {
    read: (position, count) =>
      this.guard(
        "XREAD",
        async () => {
          const key = invalidationStream();
          if (position === undefined) {
            const [last] = await this.client.xrevrange(key, "+", "-", "COUNT", 1);
            return { entries: [], last: last?.[0] };
          }
          const reply = await this.client.xread("COUNT", count, "STREAMS", key, position);
          return { entries: (reply?.[0]?.[1] ?? []) as [string, string[]][] };
        },
        null,
        { optional: true },
      ),
  };

  /** This instance's parsed copy of hot entity parts (caching/local.ts), unless turned off. */
  get local(): LocalCache | undefined {
    return localCache(this.stream, this.client);
  }

  /**
   * False while the breaker is open (Redis recently failed), and for RECOVERY_GRACE_MS after it closed again:
   * callers should not wait on Redis, nor trust what it would answer.
   */
  get available(): boolean {
    return Date.now() >= Math.max(this.openUntil, this.graceUntil);
  }

  /**
   * Runs a call within its budget, unless the store is unavailable (then `fallback`). `force`: even then (held
   * invalidations must reach Redis as soon as it can take them, and a success ends the breaker's cooldown).
   * `optional`: a failure costs only what the call was for (the local cache's catch-up: nothing local is served) and
   * is not taken for Redis failing — a cold instance's first command to a node it has not connected to yet may
   * overrun its budget, and must not send the whole instance to PostgreSQL and its rate limits to their fallback.
   */
  private async guard<T>(
    command: string,
    operation: () => Promise<T>,
    fallback: T,
    { roundTrips = 1, budgetMs = this.options.commandTimeoutMs ?? 150, force = false, optional = false } = {},
  ): Promise<T> {
    if (!force && !this.available) return fallback;
    try {
      // The first connection (TCP, and TLS to ElastiCache; a cluster's slot map) is no command: it has its own
      // budget (connectTimeout). Counted against the command's 150 ms, a cold instance's first read would open the
      // breaker — also when another user of the client (the rate limiter) started connecting it first.
      // Also when the client is ready already (another user connected it): a cluster's masters are still to connect.
      if (!this.connecting) {
        const { status } = this.client;
        const connected = (
          status === "ready"
            ? Promise.resolve()
            : status === "wait"
              ? this.client.connect()
              : readyWithin(this.client, REDIS_OPTIONS.connectTimeout)
        ).then(() => connectMasters(this.client));
        this.connecting = connected.then(
          () => undefined,
          (error) => {
            this.connecting = undefined;
            throw error;
          },
        );
      }
      if (this.connecting) await this.connecting;
      countRoundTrip(roundTrips);
      const result = await inSpan(
        `redis ${command}`,
        { "db.system.name": "redis" },
        () => withinBudget(operation(), budgetMs),
        "client",
      );
      const failedFor = this.failingSince === undefined ? 0 : Date.now() - this.failingSince;
      this.failingSince = undefined;
      if (!this.healthy) {
        this.healthy = true;
        this.openUntil = 0;
        logger().info("cache: Redis is reachable again, caching resumed");
        // After failing for longer than a write waits, another instance may have answered writes whose
        // invalidations it still holds (it retries every RETRY_MS): what Redis holds, this first answer included
        // (an invalidation's excepted: it landed), is not trusted until they had time to land.
        if (failedFor > INVALIDATION_BUDGET_MS) {
          this.graceUntil = Date.now() + RECOVERY_GRACE_MS;
          if (!force) return fallback;
        }
      }
      return result;
    } catch (error) {
      if (optional) return fallback;
      this.openUntil = Date.now() + (this.options.cooldownMs ?? 2_000);
      this.failingSince ??= Date.now();
      // A node that stopped answering may have been failed over: learn where its slots went now, not at the next
      // periodic refresh (held invalidations must reach the new master before other instances read from it).
      if (isCluster(this.client)) this.client.refreshSlotsCache();
      if (this.healthy) {
        this.healthy = false;
        logger().warn({ err: error, command }, "cache: Redis unavailable, serving from PostgreSQL until it is back");
      }
      return fallback;
    }
  }

  async mget(keys: string[]) {
    if (keys.length === 0) return [];
    const client = this.client;
    const values = await this.guard(
      "MGET",
      async () => {
        const groups = bySlot(client, keys, (key) => key);
        if (groups.length === 1) return client.mget(keys);
        // One MGET per slot, issued in one tick: ioredis pipelines those of one node into one write.
        const found = new Map<string, string | null>();
        await Promise.all(
          groups.map(async (group) => {
            const answers = await client.mget(group);
            for (const [i, key] of group.entries()) found.set(key, answers[i] ?? null);
          }),
        );
        return keys.map((key) => found.get(key) ?? null);
      },
      keys.map(() => null),
      { roundTrips: nodesOf(client, keys) },
    );
    if (this.pending.size === 0) return values;
    // What this instance changed and Redis has not heard of yet is not served from it, and no answer that read
    // it under an older version is current.
    return keys.map((key, i) =>
      this.pending.has(key) ? PENDING_VERSION : this.pendingValueKeys.has(key) ? null : (values[i] ?? null),
    );
  }

  async fillIfUnchanged(entries: FillEntry[]) {
    const kept = entries.filter((entry) => !this.pending.has(entry.versionKey));
    if (kept.length === 0) return;
    const client = this.client as RedisClient & { fillIfUnchanged(n: number, ...a: string[]): Promise<unknown> };
    await this.guard(
      "EVALSHA",
      async () => {
        await Promise.all(
          bySlot(client, kept, (entry) => entry.versionKey).map((group) =>
            client.fillIfUnchanged(
              group.length * 2,
              ...group.flatMap((e) => [e.valueKey, e.versionKey]),
              ...group.flatMap((e) => [e.seenVersion, e.value, String(e.ttlMs)]),
            ),
          ),
        );
      },
      undefined,
      {
        roundTrips: nodesOf(
          client,
          kept.map((entry) => entry.versionKey),
        ),
      },
    );
  }

  async invalidate(entities: Invalidation[], lsn?: string) {
    if (entities.length === 0) return;
    const local = this.local;
    for (const entity of entities) {
      this.hold({ ...entity, lsn });
      local?.forget(entity.versionKey);
    }
    const waitUntil =
      this.failingSince !== undefined && Date.now() - this.failingSince > LONG_OUTAGE_MS
        ? 0
        : Date.now() + INVALIDATION_BUDGET_MS;
    for (;;) {
      await this.applyPending();
      if (this.pending.size === 0 || Date.now() + RETRY_MS > waitUntil) break;
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
    if (this.pending.size) this.retryLater();
  }

  private hold(entity: Invalidation & { lsn?: string }) {
    this.pending.set(entity.versionKey, entity);
    for (const key of entity.valueKeys) this.pendingValueKeys.add(key);
  }

  /**
   * Sends the held invalidations (each slot's in one script, with WAIT for replicas when configured) and appends
   * their version keys to the invalidation stream that instances' local caches read (local.ts): an invalidation
   * counts as applied only once both are done.
   */
  private async applyPending() {
    const held = [...this.pending.values()];
    if (held.length === 0) return;
    const client = this.client as RedisClient & { invalidate(n: number, ...a: (string | number)[]): unknown };
    const groups = bySlot(client, held, (entity) => entity.versionKey);
    const streamed = config().cache.localEntries > 0;
    const applied = await this.guard(
      "INVALIDATE",
      async () => {
        // The stream and the scripts at once; all of it again next time unless all of it was taken. The stream gets
        // every held key, whatever became of its script: an instance's local copy goes once the stream says so,
        // even while the key's own shard cannot take the script (local.ts).
        const [done, appended] = await Promise.all([
          Promise.all(
            groups.map(async (group) => {
              const pipeline = client.pipeline() as ReturnType<RedisClient["pipeline"]> & {
                invalidate(n: number, ...a: (string | number)[]): unknown;
              };
              const keys = group.flatMap((entity) => [entity.versionKey, ...entity.valueKeys]);
              // One LSN per script: the group's highest (a held invalidation retried with a later write's is safe).
              const lsn = group.reduce((max, e) => (parseLsn(e.lsn) > parseLsn(max) ? (e.lsn ?? "") : max), "");
              pipeline.invalidate(keys.length, ...keys, VERSION_TTL_MS, lsn, ...group.map((e) => e.valueKeys.length));
              return (await this.replicated(pipeline, group[0]!.versionKey)) ? group : [];
            }),
          ),
          streamed ? this.appendToStream(held.map((entity) => entity.versionKey)) : true,
        ]);
        return appended ? done : [];
      },
      [] as Invalidation[][],
      {
        roundTrips:
          nodesOf(
            client,
            held.map((entity) => entity.versionKey),
          ) + (streamed ? 1 : 0),
        // A write waits for its invalidations anyway: a budget that a loaded machine's replica acks fit in.
        budgetMs: WAIT_MS + 400,
        force: true,
      },
    );
    for (const entity of applied.flat()) {
      // Held again meanwhile (another write of the same entity): that one still has to go.
      if (this.pending.get(entity.versionKey) === entity) this.pending.delete(entity.versionKey);
    }
    this.pendingValueKeys = new Set([...this.pending.values()].flatMap((entity) => entity.valueKeys));
  }

  /**
   * Appends version keys to the invalidation stream that instances' local caches read (local.ts). @returns false
   * when its replica did not acknowledge in time.
   */
  private appendToStream(versionKeys: string[]): Promise<boolean> {
    const pipeline = this.client.pipeline();
    pipeline.xadd(invalidationStream(), "MAXLEN", "~", "100000", "*", ...versionKeys.flatMap((key) => ["k", key]));
    return this.replicated(pipeline, invalidationStream());
  }

  /**
   * Runs a pipeline of writes to `key`'s slot and waits until they are taken by the shard's replicas too, so a
   * failover cannot bring back what they replaced: by as many as are attached (ROLE lists them), up to
   * REDIS_WAIT_REPLICAS. A master left without a replica (its replica was just promoted) has no copy that could come
   * back older. WAIT goes to the node the pipeline ran on (the slot's), on the same connection: it counts what that
   * connection wrote. @returns false when a replica did not acknowledge in time (a slow replica: the master has it,
   * Redis is up; the caller holds and sends again). @throws what the pipeline failed with.
   */
  private async replicated(pipeline: ReturnType<RedisClient["pipeline"]>, key: string): Promise<boolean> {
    const client = this.client;
    if (this.waitReplicas) pipeline.role();
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([error]) => error)?.[0];
    if (failed) {
      // A pipeline is not redirected like a lone command: learn where the slot went before the retry.
      if (isCluster(client) && /^(MOVED|ASK) /.test(failed.message)) client.refreshSlotsCache();
      throw failed;
    }
    if (!this.waitReplicas) return true;
    const attached = ((results.at(-1)?.[1] as unknown[] | undefined)?.[2] as unknown[] | undefined)?.length ?? 0;
    const needed = Math.min(this.waitReplicas, attached);
    if (needed === 0) return true;
    return Number(await waitOn(client, key, needed)) >= needed;
  }

  /** Retries held invalidations in the background until Redis takes them (the breaker's cooldown ignored). */
  private retryLater() {
    if (this.retrying) return;
    logger().warn(
      { invalidations: this.pending.size },
      "cache: invalidations not yet taken by Redis; retrying, and not serving their entities from it meanwhile",
    );
    const retry = async () => {
      await this.applyPending();
      if (this.pending.size) {
        this.retrying = setTimeout(retry, RETRY_MS);
        this.retrying.unref();
      } else {
        this.retrying = undefined;
        logger().info("cache: held invalidations applied");
      }
    };
    this.retrying = setTimeout(retry, RETRY_MS);
    this.retrying.unref();
  }

  /**
   * A command of another structure this Redis keeps (home timelines: caching/timelines.ts), guarded like the store's
   * own: `fallback` while Redis is unavailable, failing or slow. `held`: a version key whose invalidation this
   * instance holds (not yet taken by Redis): then nothing is asked, and `fallback` answers.
   */
  guarded<T>(
    command: string,
    call: (client: RedisClient) => Promise<T>,
    fallback: T,
    options: { roundTrips?: number; held?: string } = {},
  ): Promise<T> {
    if (options.held && this.pending.has(options.held)) return Promise.resolve(fallback);
    return this.guard(command, () => call(this.client), fallback, { roundTrips: options.roundTrips });
  }

  async set(key: string, value: string, ttlMs: number) {
    await this.guard("SET", () => this.client.set(key, value, "PX", ttlMs), undefined);
  }

  setIfAbsent(key: string, value: string, ttlMs: number) {
    return this.guard("SET", async () => (await this.client.set(key, value, "PX", ttlMs, "NX")) === "OK", true);
  }

  async del(keys: string[]) {
    const client = this.client;
    if (keys.length) {
      await this.guard(
        "DEL",
        () => Promise.all(bySlot(client, keys, (key) => key).map((group) => client.del(...group))),
        [],
        { roundTrips: nodesOf(client, keys) },
      );
    }
  }

  async close() {
    clearTimeout(this.retrying);
    this.retrying = undefined;
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

  async setIfAbsent(key: string, value: string, ttlMs: number) {
    if (this.values.has(key)) return false;
    this.values.set(key, value, { ttl: ttlMs });
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
    store = redisUrl ? new RedisStore() : new MemoryStore(database.url);
    logger().info(
      store.kind === "redis"
        ? `cache: Redis${config().redis?.cluster ? " Cluster" : ""} (shared by all instances)`
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

/**
 * Where the cache's versions begin: the primary's WAL position when this keyspace was first used (with read
 * replicas). A version that is absent (never written, expired, or lost with the keyspace) stands for no write
 * after that position (platform/replicas.ts). Kept as long as versions, so it outlives each of them.
 */
export const bornKey = () => `${config().redisKeyPrefix}:versions-born`;

/** Notes where the versions begin, if nobody has (a fresh or emptied keyspace); see bornKey. */
export async function noteBorn(lsn: string): Promise<void> {
  await cacheStore().setIfAbsent(bornKey(), lsn, VERSION_TTL_MS);
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
  // Shared for a while by design, it may be computed on any replica (platform/replicas.ts).
  const compute = () => covered(async () => (await readAt(0n, computeValue)).value);
  const store = cacheStore();
  const key = `${config().redisKeyPrefix}:c${CACHE_SHAPE_VERSION}:${name}`;
  const read = async () => {
    const [hit] = await store.mget([key]);
    return hit ? reviveDates(JSON.parse(hit) as T) : undefined;
  };
  const cached = await read();
  if (cached !== undefined) return cached;
  if (await store.setIfAbsent(`${key}:lock`, "1", 5_000)) {
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
