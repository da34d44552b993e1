import { createHash } from "node:crypto";
import type { GraphQLError } from "graphql";
import { LRUCache } from "lru-cache";
import { config } from "../platform/config.ts";
import { requestReads } from "../platform/reads.ts";
import { REMEMBER_MS, requestMark } from "./local.ts";
import { CACHE_SHAPE_VERSION, cacheStore, RedisStore } from "./store.ts";

/**
 * How long an answer found current is vouched for by the invalidation stream alone: below what the stream's reader
 * remembers, and short, so that a stream entry a failover lost holds an outdated answer no longer than this.
 */
const CONFIRMED_FOR_MS = Math.min(5_000, REMEMBER_MS);

// Whole answers of shareable operations (queries from someone signed out: explore, a profile, a post), keyed by
// document and variables. An answer is served while every cached entity part it read still has
// the version it was read under: the versions that every write bumps once it committed (caching/changes.ts),
// checked in one Redis round trip per hit. So a write through any instance invalidates the answers of every
// instance at once, and an answer computed while a write committed is never served (it carries the old
// version). What no version covers (a list read straight from PostgreSQL) makes an answer uncacheable, unless
// the list's read says which version covers it (caching/entities.ts: `listRead`).
//
// An answer this instance holds needs no such round trip while it keeps up with the invalidation stream (local.ts):
// once its versions were found current after one of the instance's catch-ups, the stream tells of every change to
// them since. So a hit is checked in Redis at most every CONFIRMED_FOR_MS; in between, the request's catch-up
// (shared by the requests that began together, and sent with the rate limit's charge) is all it waits for.

/** The response cache's part in one request (see http/plugins/use-response-cache.ts). */
export interface ResponseCacheState {
  key: string;
  /** The cached answer that answered the request. */
  hit?: CachedResponse;
  /** The answer the request computed and kept. */
  kept?: CachedResponse;
  /** Looked up from the request's URL before Yoga read its parameters (a GET URL answered before). */
  early?: boolean;
  /** The caller's budget refused the cached answer's charge. */
  refused?: GraphQLError;
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
  /** Its whole HTTP body (`{"data":…}`), encoded on its first answer sent as kept (this instance's copy only). */
  body?: Uint8Array<ArrayBuffer>;
  /** When this instance last found its versions current, and after which catch-up (this instance's copy only). */
  confirmed?: { at: number; mark: number };
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
    .update(JSON.stringify(declaredVariables(query, variables)))
    .digest("base64url");
  return `${config().redisKeyPrefix}:r${CACHE_SHAPE_VERSION}:${hash}`;
}

/**
 * The variables the document declares (`$name: Type`), in a stable order: the ones it does not declare change
 * nothing in the answer, and would otherwise make a new entry each (a client could fill the cache with them).
 */
function declaredVariables(query: string, variables: unknown): Record<string, unknown> {
  if (!variables || typeof variables !== "object") return {};
  const declared = new Set([...query.matchAll(/\$([_A-Za-z][_0-9A-Za-z]*)\s*:/g)].map((match) => match[1]));
  return Object.fromEntries(
    Object.entries(variables)
      .filter(([name]) => declared.has(name))
      .sort(([a], [b]) => (a < b ? -1 : 1)),
  );
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
 * Whether every entity part the answer read still has the version it was read under: known from the invalidation
 * stream when this instance confirmed it lately, else asked of Redis (one round trip). Never stale: while Redis
 * cannot be asked, no answer is current.
 */
export async function isCurrent(key: string, entry: CachedResponse): Promise<boolean> {
  const store = cacheStore();
  const versionKeys = entry.versions.map(([versionKey]) => versionKey);
  const local = store instanceof RedisStore ? store.local : undefined;
  const mark = local ? await requestMark(local) : null;
  const { confirmed } = entry;
  if (
    local &&
    mark !== null &&
    confirmed &&
    Date.now() - confirmed.at < CONFIRMED_FOR_MS &&
    local.unchangedSince(versionKeys, confirmed.mark)
  ) {
    return true;
  }
  const current = versionKeys.length ? await store.mget(versionKeys) : [];
  // A store that could not answer returns nulls, which would read as "version 0": that proves nothing.
  if (store.available && entry.versions.every(([, version], i) => (current[i] ?? "0") === version)) {
    if (mark !== null) entry.confirmed = { at: Date.now(), mark };
    return true;
  }
  localCache().delete(key);
  return false;
}

/** The answer's HTTP body as sent when nothing is added to it (a public answer over GET in production). */
export const bodyOf = (entry: CachedResponse): Uint8Array<ArrayBuffer> =>
  (entry.body ??= new TextEncoder().encode(`{"data":${entry.json}}`));

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
  const reads = requestReads();
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
