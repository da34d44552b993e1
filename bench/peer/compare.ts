// Shutter's and PostGraphile's answers for the same screen, in one shape, so the bench can check that both
// serve the same data before it compares their speed: Relay global ids and `rowId`s become the row's UUID,
// connections (`edges { node }`, `nodes`) become lists, cursors are dropped (each server has its own), and
// timestamps become milliseconds (PostgreSQL prints microseconds and an offset, Shutter ISO 8601).
import { decodeGlobalID } from "@pothos/plugin-relay";
import { isUuid } from "../../src/platform/sql.ts";

/** The canonical form of a response's `data` (the root field's name left out). */
export function canonical(data: Record<string, unknown> | null | undefined): unknown {
  const [root] = Object.values(data ?? {});
  return normalize(root);
}

function normalize(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalize);
  if (!value || typeof value !== "object") return value;
  const record = value as Record<string, unknown>;
  if (Array.isArray(record.edges)) {
    const list = (record.edges as { node: unknown }[]).map((edge) => normalize(edge.node));
    const pageInfo = record.pageInfo as { hasNextPage?: boolean } | undefined;
    return pageInfo ? { list, hasNextPage: pageInfo.hasNextPage } : list;
  }
  if (Array.isArray(record.nodes)) return normalize(record.nodes);
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(record)) {
    if (key === "cursor") continue;
    if (key === "rowId" || key === "id") out.id = typeof field === "string" ? uuidOf(field) : field;
    else if (key.endsWith("At") && typeof field === "string") out[key] = new Date(field).getTime();
    else out[key] = normalize(field);
  }
  return out;
}

/** A UUID as it is, or the UUID inside a Relay global id. */
function uuidOf(id: string): string {
  if (isUuid(id)) return id;
  try {
    const decoded = decodeGlobalID(id).id;
    return isUuid(decoded) ? decoded : id;
  } catch {
    return id;
  }
}
