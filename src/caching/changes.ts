import { writtenTables } from "../platform/db.ts";
import { logger } from "../platform/logger.ts";
import { type RequestScope, requestScope } from "../platform/request-scope.ts";
import { purgeCdn } from "./cdn-purge.ts";
import { cacheKeys, cacheStore } from "./store.ts";

/**
 * What a committed write changed: parts of one cached entity. Made only by an entity definition
 * (`postEntity.changed(id, "post-counts")`, see caching/entities.ts), so no cache key is spelled anywhere else.
 */
export interface Change {
  /** The entity (`post`, `user`, `photo` …). */
  entity: string;
  /** Its id. */
  id: string;
  /** The cached parts that changed (each is one cache key). */
  parts: readonly string[];
  /** The table whose rows the entity caches: what the undeclared-change check compares writes with. */
  table: string;
  /** The per-request DataLoader that holds the entity (`post`, `photosByPost` …), if any. */
  loader?: string;
  /** The key that loader holds it under, when not `id` (a per-viewer fact: its target). */
  loaderKey?: string;
}

export type ChangeListener = (changes: readonly Change[]) => void | Promise<void>;

const listeners = new Set<ChangeListener>();

/**
 * Subscribes to every commit's changes, in this process. A listener that throws is logged; it never fails the write, which has already committed.
 * @returns a function that unsubscribes.
 */
export function onChanges(listener: ChangeListener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/**
 * Applies what a committed write changed (called by the unit of work, services/write.ts, and nothing else): the
 * entity cache's versions are bumped (a reader racing the write can no longer store the old value, on any
 * instance; stamped with the write's `lsn`, no replica older than the write serves them: platform/replicas.ts),
 * the writing request's loaders forget those entities, a CDN purges the answers that showed them
 * (cdn-purge.ts: in every process that commits), and the listeners hear of it. Never call it inside a
 * transaction: a concurrent reader could re-read the old row before the commit and cache it under the new version.
 */
export async function applyChanges(
  changes: readonly Change[],
  request?: { forget(changes: readonly Change[]): void },
  lsn?: string,
): Promise<void> {
  if (changes.length === 0) return;
  const invalidated = changes.flatMap((change) =>
    change.parts.map((part) => {
      const keys = cacheKeys(part, change.id);
      return { versionKey: keys.versionKey, valueKeys: keys.allValueKeys };
    }),
  );
  if (invalidated.length) await cacheStore().invalidate(invalidated, lsn);
  const scope = requestScope.getStore();
  if (scope) for (const change of changes) declaredOf(scope).add(change.table);
  request?.forget(changes);
  await purgeCdn(changes);
  await Promise.all(
    [...listeners].map(async (listener) => {
      try {
        await listener(changes);
      } catch (error) {
        logger().error({ err: error }, "a change listener failed");
      }
    }),
  );
}

/** Tables whose rows some entity caches (filled in by the entity definitions). */
export const CACHED_TABLES = new Set<string>();

/**
 * Cached tables the request updated or deleted rows of (in committed statements) without declaring a change of
 * any entity of that table: a stale read nobody would see. Outside production, every response reports them
 * (`extensions.undeclaredChanges`) and the tests fail on it. Inserts need no declaration: a row that did not
 * exist was never cached (misses are not stored).
 */
export function undeclaredChanges(scope: RequestScope): string[] {
  const declared = declaredOf(scope);
  return [...writtenTables(scope)].filter((table) => CACHED_TABLES.has(table) && !declared.has(table));
}

// The tables each request's writes declared as changed (outside production), kept here: the undeclared-change
// check is this module's. What its statements wrote, the database adapter notes (db.ts).
const declaredByRequest = new WeakMap<RequestScope, Set<string>>();
function declaredOf(scope: RequestScope): Set<string> {
  let tables = declaredByRequest.get(scope);
  if (!tables) {
    tables = new Set();
    declaredByRequest.set(scope, tables);
  }
  return tables;
}
