import { createHash } from "node:crypto";
import { LRUCache } from "lru-cache";
import { CACHE_SHAPE_VERSION, cacheStore } from "./cache.ts";
import { type Change, onChanges } from "./changes.ts";
import { config } from "./config.ts";
import { logger, requestScope } from "./logger.ts";

// Whole answers of shareable operations (queries from someone signed out: explore, a profile, a post), keyed by
// document and variables. An answer is served while every cached entity part it read still has
// the version it was read under: the versions that `commitChanges` bumps after every write (platform/changes.ts),
// checked in one Redis round trip per hit. So a write through any instance invalidates the answers of every
// instance at once, and an answer computed while a write committed is never served (it carries the old
// version). What no version covers (a list read straight from PostgreSQL) makes an answer uncacheable, unless
// the list's read says which version covers it (loaders/cached.ts: `listRead`).

/** The response cache's part in one request (see http/plugins/use-response-cache.ts). */
export interface ResponseCacheState {
  key: string;
  /** The cached answer that answered the request. */
  hit?: CachedResponse;
  /** The answer the request computed and kept. */
  kept?: CachedResponse;
}

/** A cached answer. */
export interface CachedResponse {
  /** The JSON of the execution result's data (answers with errors are never cached). */
  json: string;
  /** The versions it was read under: [version key, version, tag]. */
  versions: [string, string, string][];
  storedAt: number;
  expiresAt: number;
  /** The points the operation cost: each answer from the cache is charged the same. */
  cost: number;
  /** Whether HTTP caches may keep it too (nothing personal selected; see use-http-caching.ts). */
  public: boolean;
  /** Its ETag, computed on its first answer over GET (this instance's copy only). */
  etag?: string;
}

// This instance's answers, checked against the shared versions on every hit. Bounded by entries and bytes.
let local: LRUCache<string, CachedResponse> | undefined;
const localCache = () =>
  (local ??= new LRUCache<string, CachedResponse>({
    max: 10_000,
    // Sized by each entry's JSON length (given on set).
    maxSize: 64 * 1024 * 1024,
  }));

/**
 * Where the answer to a document with its variables is cached (in Redis, and this instance's LRU). Besides the
 * data, answers depend on where photo URLs point (the bucket, the CDN base URL): instances configured
 * differently never share answers. A deploy that changes what a document answers bumps CACHE_SHAPE_VERSION.
 */
export function responseKey(query: string, operationName: string | null | undefined, variables: unknown): string {
  const { s3 } = config();
  const hash = createHash("sha256")
    .update(s3 ? `${s3.bucket}\0${s3.endpoint ?? ""}\0${s3.publicBaseUrl ?? ""}\0` : "\0")
    .update(query)
    .update("\0")
    .update(operationName ?? "")
    .update("\0")
    .update(JSON.stringify(variables ?? {}))
    .digest("base64url");
  return `${config().redisKeyPrefix}:r${CACHE_SHAPE_VERSION}:${hash}`;
}

/**
 * The cached answer for the key, if there is one: from this instance's memory, else from Redis (another
 * instance's answer). Still to be checked with `isCurrent`.
 */
export async function findResponse(key: string): Promise<CachedResponse | undefined> {
  const memory = localCache();
  const entry = memory.get(key);
  if (entry) return entry;
  const store = cacheStore();
  if (store.kind !== "redis") return undefined;
  const [raw] = await store.mget([key]);
  if (!raw) return undefined;
  const shared = JSON.parse(raw) as CachedResponse;
  const ttl = shared.expiresAt - Date.now();
  if (ttl <= 0) return undefined;
  memory.set(key, shared, { size: raw.length + key.length, ttl });
  return shared;
}

/**
 * Whether every entity part the answer read still has the version it was read under (one round trip). Never
 * stale: while Redis cannot be asked, no answer is current.
 */
export async function isCurrent(key: string, entry: CachedResponse): Promise<boolean> {
  const store = cacheStore();
  const current = entry.versions.length ? await store.mget(entry.versions.map(([versionKey]) => versionKey)) : [];
  // A store that could not answer returns nulls, which would read as "version 0": that proves nothing.
  if (store.available && entry.versions.every(([, version], i) => (current[i] ?? "0") === version)) return true;
  localCache().delete(key);
  return false;
}

/**
 * Keeps an answer if what it read allows: every read covered by a version (or a time bound).
 * @returns the entry kept, if it was.
 */
export async function keepResponse(
  key: string,
  json: string,
  cost: number,
  isPublic: boolean,
): Promise<CachedResponse | undefined> {
  const reads = requestScope.getStore()?.reads;
  if (!reads || reads.uncovered) return undefined;
  const { ttlSeconds } = config().responseCache;
  const seconds = Math.min(ttlSeconds, reads.maxAgeSeconds ?? ttlSeconds);
  const now = Date.now();
  const entry: CachedResponse = {
    json,
    versions: [...reads.versions].map(([tag, { key: versionKey, version }]) => [versionKey, version, tag]),
    storedAt: now,
    expiresAt: now + seconds * 1000,
    cost,
    public: isPublic,
  };
  const raw = JSON.stringify(entry);
  localCache().set(key, entry, { size: raw.length + key.length, ttl: seconds * 1000 });
  const store = cacheStore();
  if (store.kind === "redis") await store.set(key, raw, seconds * 1000);
  return entry;
}

/** The entity parts an answer read, as CDN surrogate keys (`post:<id>`, `user-counts:<id>` …). */
export const surrogateKeys = (entry: Pick<CachedResponse, "versions">): string[] =>
  entry.versions.map(([, , tag]) => tag);

/** The surrogate keys of what changed: the tags of the answers to purge from a CDN. */
export const changedKeys = (changes: readonly Change[]): string[] => [
  ...new Set(changes.flatMap((change) => change.parts.map((part) => `${part}:${change.id}`))),
];

let purging = false;

/**
 * With CDN_PURGE_URL set, every commit's changes are POSTed there as surrogate keys (`{ "keys": [...] }`, with
 * CDN_PURGE_TOKEN as a bearer token): the hook for a CDN that purges by tag (Fastly's Surrogate-Key,
 * Cloudflare's Cache-Tag, or a small function that turns them into CloudFront invalidations). Public GET answers
 * carry the same keys in `Surrogate-Key`. Registered once per process, when the first server is built.
 */
export function purgeCdnOnChanges(): void {
  const purge = config().responseCache.cdnPurge;
  if (!purge || purging) return;
  purging = true;
  onChanges(async (changes) => {
    const keys = changedKeys(changes);
    const response = await fetch(purge.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(purge.token ? { authorization: `Bearer ${purge.token}` } : {}),
      },
      body: JSON.stringify({ keys }),
      signal: AbortSignal.timeout(2_000),
    });
    if (!response.ok) logger().warn({ status: response.status, keys: keys.length }, "CDN purge refused");
  });
}
