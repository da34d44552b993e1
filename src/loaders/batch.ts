import { isUuid } from "../platform/sql.ts";
import { inSpan, tracing } from "../platform/telemetry.ts";

/**
 * Runs a by-id batch query for the well-formed ids only and returns one result per key, in key order:
 * a malformed id resolves to null for its own key instead of failing the statement for the whole batch.
 */
export async function byIds<T extends { id: string }>(
  ids: readonly string[],
  query: (ids: string[]) => Promise<T[]>,
): Promise<(T | null)[]> {
  const valid = [...new Set(ids.filter(isUuid))];
  const rows = valid.length ? await query(valid) : [];
  const byId = new Map(rows.map((row) => [row.id, row]));
  return ids.map((id) => byId.get(id) ?? null);
}

/** Groups rows by a key and returns the groups in the order of `keys` (empty arrays for keys without rows). */
export function groupInKeyOrder<K, T>(keys: readonly K[], rows: T[], keyOf: (row: T) => K): T[][] {
  const groups = new Map<K, T[]>();
  for (const row of rows) {
    const key = keyOf(row);
    const group = groups.get(key);
    if (group) group.push(row);
    else groups.set(key, [row]);
  }
  return keys.map((key) => groups.get(key) ?? []);
}

/** A key of a "first N children per parent" loader. */
export interface FirstPageKey {
  parentId: string;
  limit: number;
}

export const firstPageCacheKey = (key: FirstPageKey) => `${key.parentId}:${key.limit}`;

/**
 * Batches "first N children of each parent": one statement per distinct N (in practice one per batch),
 * each fetching every parent's first page at once (LATERAL joins).
 */
export async function firstPages<T>(
  keys: readonly FirstPageKey[],
  query: (parentIds: string[], limit: number) => Promise<T[]>,
  parentOf: (row: T) => string,
): Promise<T[][]> {
  const limits = [...new Set(keys.map((k) => k.limit))];
  const results = new Map<string, T[]>();
  await Promise.all(
    limits.map(async (limit) => {
      const parentIds = [
        ...new Set(keys.filter((k) => k.limit === limit && isUuid(k.parentId)).map((k) => k.parentId)),
      ];
      const rows = parentIds.length && limit > 0 ? await query(parentIds, limit) : [];
      const grouped = groupInKeyOrder(parentIds, rows, parentOf);
      parentIds.forEach((id, i) => {
        results.set(firstPageCacheKey({ parentId: id, limit }), grouped[i] ?? []);
      });
    }),
  );
  return keys.map((key) => results.get(firstPageCacheKey(key)) ?? []);
}

/** What a by-id batch function returns for one id (null when absent): a service's single read. */
export async function one<T>(batch: (ids: readonly string[]) => Promise<(T | null)[]>, id: string): Promise<T | null> {
  return (await batch([id]))[0] ?? null;
}

/** A DataLoader batch function in a span of its own (with its batch size) when tracing; else the function. */
export function traced<K, V>(
  name: string,
  batch: (keys: readonly K[]) => Promise<V[]>,
): (keys: readonly K[]) => Promise<V[]> {
  if (!tracing()) return batch;
  return (keys) => inSpan(`dataloader ${name}`, { "dataloader.batch_size": keys.length }, () => batch(keys));
}
