import { walPosition } from "../platform/db.ts";
import { logger } from "../platform/logger.ts";
import { covered, hasNotedVersion, noteUncovered, noteVersion, sharing } from "../platform/reads.ts";
import {
  floorOf,
  noteSeen,
  PENDING_VERSION,
  PRIMARY,
  readAt,
  replicasConfigured,
  seenFloor,
} from "../platform/replicas.ts";
import { requestScope } from "../platform/request-scope.ts";
import { isUuid } from "../platform/sql.ts";
import { CACHED_TABLES, type Change } from "./changes.ts";
import { requestMark } from "./local.ts";
import { bornKey, cacheKeys, cacheStore, type FillEntry, jitter, noteBorn, RedisStore, reviveDates } from "./store.ts";

/** One separately invalidated part of a cached entity: its fields, kept for `ttlSeconds` at most. */
export interface EntityPart<T> {
  ttlSeconds: number;
  fields: readonly (keyof T & string)[];
}

/**
 * How an entity is cached, and the one way to say it changed. It may be split into parts that are invalidated
 * separately: a post's caption rarely changes, its like count changes all the time, so a like drops only the
 * counters. The part names are the cache's key kinds: they are spelled here and nowhere else.
 */
export interface CachedEntity<T extends { id: string }, P extends string = string> {
  name: string;
  /** The table whose rows it caches (checked against what writes touched: see caching/changes.ts). */
  table: string;
  /**
   * The per-request loader holding it, which a change clears (a key of `createLoaders()`, loaders/index.ts; named
   * here as a string so that this file need not import that one, and checked by test/caching/changes.test.ts).
   */
  loader?: string;
  parts: Record<P, EntityPart<T>>;
  /** Full rows for the ids from PostgreSQL, in any order; absent ids are simply missing. */
  load(ids: string[]): Promise<T[]>;
  /** Which keys may be looked up at all (default: UUIDs); others resolve to null without a query. */
  isValidId?: (id: string) => boolean;
  /**
   * Kept by each instance alone (its local cache, in a pool of its own), never in Redis: per-viewer facts, read
   * again by the same viewer but rarely by another instance, for which a Redis read and fill on every miss would
   * cost more than the statement they save. The invalidation stream keeps them true like every local copy.
   */
  localOnly?: boolean;
  /** What a write changed, for `w.changed(…)` (services/write.ts): the named parts of the entity `id` (all parts if none named). */
  changed(id: string, ...parts: P[]): Change;
}

/** The per-request loaders that changes name (each must be a key of `createLoaders()`). */
export const CHANGED_LOADERS = new Set<string>();

/** Defines a cached entity (see CachedEntity); its table joins the ones the undeclared-change check watches. */
export function defineEntity<T extends { id: string }, P extends string>(
  definition: Omit<CachedEntity<T, P>, "changed">,
): CachedEntity<T, P> {
  CACHED_TABLES.add(definition.table);
  if (definition.loader) CHANGED_LOADERS.add(definition.loader);
  const all = Object.keys(definition.parts) as P[];
  return {
    ...definition,
    changed: (id, ...parts) => ({
      entity: definition.name,
      id,
      parts: parts.length ? parts : all,
      table: definition.table,
      loader: definition.loader,
    }),
  };
}

/** A fact about a viewer and one target (likes a post, follows someone), cached per pair (see `viewerFact`). */
export interface ViewerFact {
  /** Whether `viewerId` has the fact for each of `targetIds`, in key order: the cache first, then one statement. */
  load(viewerId: string, targetIds: readonly string[]): Promise<boolean[]>;
  /** What a write changed: the fact of `viewerId` for `targetId` (the request's loader forgets the target). */
  changed(viewerId: string, targetId: string): Change;
}

/**
 * Defines a per-viewer fact (has liked a post, follows someone): cached per (viewer, target) pair, present or
 * absent alike — by each instance alone (`localOnly`: its local cache with Redis, the in-process store without).
 * Absence is cached too, so every write that adds or removes the fact declares it, even when it was already so
 * (`viewerLike.changed(viewerId, postId)`); the table joins the undeclared-change check. Screens ask these for
 * every item they show (a feed's 20 posts): warm, they cost no statement and no round trip.
 */
export function viewerFact(definition: {
  name: string;
  table: string;
  /** The per-request loader holding the viewer's facts by target (a key of `createLoaders()`). */
  loader: string;
  ttlSeconds: number;
  /** The targets among `targetIds` the viewer has the fact for (one statement). */
  holds(viewerId: string, targetIds: string[]): Promise<Set<string>>;
}): ViewerFact {
  const { name, loader } = definition;
  const entity = defineEntity<{ id: string; holds: boolean }, string>({
    name,
    table: definition.table,
    parts: { [name]: { ttlSeconds: definition.ttlSeconds, fields: ["holds"] } },
    localOnly: true,
    isValidId: (id) => {
      const [viewerId, targetId, extra] = id.split(":");
      return extra === undefined && isUuid(viewerId ?? "") && isUuid(targetId ?? "");
    },
    // The batch is one viewer's, in practice (a request's loader): one statement per viewer.
    load: async (ids) => {
      const byViewer = new Map<string, string[]>();
      for (const id of ids) {
        const [viewerId, targetId] = id.split(":") as [string, string];
        byViewer.set(viewerId, [...(byViewer.get(viewerId) ?? []), targetId]);
      }
      const rows = await Promise.all(
        [...byViewer].map(async ([viewerId, targetIds]) => {
          const held = await definition.holds(viewerId, targetIds);
          return targetIds.map((targetId) => ({ id: `${viewerId}:${targetId}`, holds: held.has(targetId) }));
        }),
      );
      return rows.flat();
    },
  });
  CHANGED_LOADERS.add(loader);
  return {
    load: async (viewerId, targetIds) =>
      (
        await loadThroughCache(
          entity,
          targetIds.map((targetId) => `${viewerId}:${targetId}`),
        )
      ).map((fact) => fact?.holds ?? false),
    changed: (viewerId, targetId) => ({ ...entity.changed(`${viewerId}:${targetId}`), loader, loaderKey: targetId }),
  };
}

/** The version a local-only entry is kept under (none exists in Redis: the invalidation stream alone keeps it true). */
const LOCAL_ONLY_VERSION = "local";

// Database reads in progress in this process, keyed by entity and the versions seen before reading:
// concurrent requests for the same cold entity share one query (stampede protection), but a request that saw
// a newer version (a write committed in between) never joins a read that may predate that write.
const inFlight = new Map<string, Promise<unknown>>();

/**
 * Loads entities through the cache: one MGET for every part of every id (values and versions together), one
 * query for the misses, one atomic fill that is skipped for any entity written in the meantime. Results are
 * in key order; ids that don't exist (or aren't valid ids) are null.
 */
export async function loadThroughCache<T extends { id: string }, P extends string>(
  entity: CachedEntity<T, P>,
  ids: readonly string[],
): Promise<(T | null)[]> {
  const valid = entity.isValidId ?? isUuid;
  const unique = [...new Set(ids.filter(valid))];
  if (unique.length === 0) return ids.map(() => null);
  const store = cacheStore();
  const parts = Object.entries<EntityPart<T>>(entity.parts).map(([kind, part]) => ({ kind, ...part }));
  const keysOf = (id: string) => parts.map((part) => cacheKeys(part.kind, id));
  const replicas = replicasConfigured();
  // The versions read matter only to an answer that may be shared (platform/reads.ts), and to reads on replicas.
  const noting = sharing();
  const noteRead = (id: string, p: number, versionKey: string, version: string, born: string | null) => {
    if (noting) noteVersion(`${parts[p]?.kind}:${id}`, versionKey, version);
    if (replicas) noteSeen(`${parts[p]?.kind}:${id}`, floorOf([version], born));
  };
  const found = new Map<string, T>();

  // This instance's parsed copies first, once it caught up with every instance's invalidations (local.ts).
  const local = store instanceof RedisStore ? store.local : undefined;
  const mark = local ? await requestMark(local) : null;
  const pool = entity.localOnly ? "facts" : "entities";
  let remote = unique;
  if (local && mark !== null) {
    remote = [];
    for (const id of unique) {
      const keys = keysOf(id);
      const entries = keys.map((k) => local.get(k.versionKey, pool));
      if (entries.some((entry) => !entry)) {
        remote.push(id);
        continue;
      }
      const merged: Record<string, unknown> = {};
      entries.forEach((entry, p) => {
        Object.assign(merged, entry?.data);
        if (!entity.localOnly) {
          noteRead(id, p, keys[p]?.versionKey as string, entry?.version as string, entry?.born ?? null);
        }
      });
      found.set(id, merged as T);
    }
  }
  /** Keeps what was read for this instance, unless an invalidation of it arrived since this request caught up. */
  const keepLocally = (versionKey: string, version: string, data: Record<string, unknown>, born: string | null) => {
    if (local && mark !== null && version !== PENDING_VERSION) {
      local.keep(versionKey, { version, data, born }, mark, pool);
    }
  };

  if (entity.localOnly && store instanceof RedisStore) {
    // Not in Redis: what this instance lacks is read from PostgreSQL (the primary: no version covers it) and kept.
    const rows = remote.length ? await entity.load(remote) : [];
    for (const row of rows) {
      found.set(row.id, row);
      for (const part of parts) {
        const data = Object.fromEntries(part.fields.map((field) => [field, row[field]]));
        keepLocally(cacheKeys(part.kind, row.id).versionKey, LOCAL_ONLY_VERSION, data, null);
      }
    }
    const scope = requestScope.getStore();
    if (scope) {
      scope.cacheHits += unique.length - remote.length;
      scope.cacheMisses += remote.length;
    }
    return ids.map((id) => found.get(id) ?? null);
  }

  const keys = remote.map(keysOf);
  // With read replicas, where the versions begin comes along (an absent version stands for no write after it).
  const raw = remote.length
    ? await store.mget([...keys.flat().flatMap((k) => [k.valueKey, k.versionKey]), ...(replicas ? [bornKey()] : [])])
    : [];
  const born = replicas && remote.length ? bornOf(raw.at(-1) ?? null, store.available) : null;

  const misses: { id: string; seen: string[] }[] = [];
  remote.forEach((id, i) => {
    const merged: Record<string, unknown> = {};
    const seen: string[] = [];
    let hit = true;
    parts.forEach((_, p) => {
      const at = (i * parts.length + p) * 2;
      const version = raw[at + 1] ?? "0";
      const versionKey = keys[i]?.[p]?.versionKey as string;
      seen.push(version);
      noteRead(id, p, versionKey, version, born);
      const cached = raw[at] ? (JSON.parse(raw[at] as string) as { v: string; d: Record<string, unknown> }) : null;
      if (cached?.v === version) {
        const data = reviveDates(cached.d);
        keepLocally(versionKey, version, data, born);
        Object.assign(merged, data);
      } else hit = false;
    });
    if (hit) found.set(id, merged as T);
    else misses.push({ id, seen });
  });

  const scope = requestScope.getStore();
  if (scope) {
    scope.cacheHits += found.size;
    scope.cacheMisses += misses.length;
  }

  if (misses.length) {
    const waiting: Promise<unknown>[] = [];
    const toLoad: typeof misses = [];
    for (const miss of misses) {
      const pending = inFlight.get(`${parts[0]?.kind}:${miss.id}@${miss.seen.join(",")}`);
      if (pending) waiting.push(pending.then((row) => row && found.set(miss.id, row as T)));
      else toLoad.push(miss);
    }
    if (toLoad.length) {
      const query = covered(() => loadFromReplica(entity, toLoad, born));
      const flightKeys = toLoad.map((m) => `${parts[0]?.kind}:${m.id}@${m.seen.join(",")}`);
      flightKeys.forEach((key, i) => {
        const id = toLoad[i]?.id;
        inFlight.set(
          key,
          query.then((rows) => rows.find((row) => row.id === id) ?? null).catch(() => null),
        );
      });
      try {
        const rows = await query;
        const fills: FillEntry[] = [];
        const seenById = new Map(toLoad.map((m) => [m.id, m.seen]));
        for (const row of rows) {
          found.set(row.id, row);
          const seen = seenById.get(row.id);
          if (!seen) continue;
          parts.forEach((part, p) => {
            const data = Object.fromEntries(part.fields.map((field) => [field, row[field]]));
            const partKeys = cacheKeys(part.kind, row.id);
            keepLocally(partKeys.versionKey, seen[p] ?? "0", data, born);
            fills.push({
              valueKey: partKeys.valueKey,
              versionKey: partKeys.versionKey,
              seenVersion: seen[p] ?? "0",
              value: JSON.stringify({ v: seen[p] ?? "0", d: data }),
              ttlMs: jitter(part.ttlSeconds),
            });
          });
        }
        await store.fillIfUnchanged(fills);
      } finally {
        for (const key of flightKeys) inFlight.delete(key);
      }
    }
    await Promise.all(waiting);
    // No version covers a row that does not exist yet (inserts declare nothing): an answer saying "not found"
    // is not cached.
    if (misses.some((miss) => !found.has(miss.id))) noteUncovered(`a missing ${entity.name}`);
  }
  return ids.map((id) => found.get(id) ?? null);
}

/**
 * The rows for the misses, from a replica that has replayed every write their versions stand for (or the primary:
 * platform/replicas.ts). An id a replica lacks is asked of the primary: a row inserted since is behind no version.
 */
async function loadFromReplica<T extends { id: string }, P extends string>(
  entity: CachedEntity<T, P>,
  misses: { id: string; seen: string[] }[],
  born: string | null,
): Promise<T[]> {
  const ids = misses.map((miss) => miss.id);
  if (!replicasConfigured()) return entity.load(ids);
  const floor = misses.reduce((max, miss) => maxOf(max, floorOf(miss.seen, born)), 0n);
  const { value: rows, onReplica } = await readAt(floor, () => entity.load(ids));
  if (!onReplica || rows.length === ids.length) return rows;
  const found = new Set(rows.map((row) => row.id));
  return [...rows, ...(await entity.load(ids.filter((id) => !found.has(id))))];
}

/**
 * Where the versions begin, as read with them; null when unknown (the cache could not answer, or the keyspace
 * is new or was emptied: then it is noted, from the primary's WAL position now, for the reads after this one).
 */
function bornOf(value: string | null, available: boolean): string | null {
  if (!available) return null;
  if (value === null && !notingBorn) notingBorn = noteBornNow();
  return value;
}

// Noting where the versions begin: once at a time per process, in the background, outside the request that found
// it missing (bookkeeping of the cache, not a statement serving that request).
let notingBorn: Promise<void> | undefined;
const noteBornNow = () =>
  requestScope.exit(() =>
    walPosition()
      .then(noteBorn)
      .catch((error) => logger().warn({ err: error }, "cache: could not note where the versions begin"))
      .finally(() => {
        notingBorn = undefined;
      }),
  );

const maxOf = (a: bigint, b: bigint) => (a > b ? a : b);

/**
 * Runs a read of lists whose membership a cached part of their owners counts (a post's comments: its comment
 * count; an author's posts: the post count), so every write that changes such a list declares that part
 * changed. The owners must have been read earlier in the request (a parent before its children, as GraphQL
 * resolves them), their versions noted: an answer holding the lists is then checked against those versions
 * (caching/response-cache.ts). Otherwise the answer is not cached.
 */
export function listRead<T extends { id: string }, P extends string, R>(
  owner: CachedEntity<T, P>,
  part: P,
  ownerIds: readonly string[],
  read: () => Promise<R>,
): Promise<R> {
  if (sharing() && !ownerIds.every((id) => hasNotedVersion(`${part}:${id}`))) {
    noteUncovered(`a list whose ${owner.name} was not read first`);
  }
  if (!replicasConfigured()) return covered(read);
  // On a replica that holds every write the owners' versions (read first) stand for; else on the primary.
  const floor = cacheStore().available ? seenFloor(ownerIds.map((id) => `${part}:${id}`)) : PRIMARY;
  return covered(async () => (await readAt(floor, read)).value);
}

/**
 * Rows of a cached entity that a list read returned (an author's posts). When the answer may be shared they are
 * read again through the entity cache (values and versions in one MGET; hits, mostly), since the answer must
 * carry the version of every row it shows: a like changes a post's counters, not its author's list. Otherwise
 * the list's own rows serve.
 */
export async function withCachedRows<T extends { id: string }, P extends string>(
  entity: CachedEntity<T, P>,
  rows: T[],
): Promise<T[]> {
  if (!sharing() || rows.length === 0) return rows;
  const cached = await loadThroughCache(
    entity,
    rows.map((row) => row.id),
  );
  return rows.map((row, i) => cached[i] ?? row);
}
