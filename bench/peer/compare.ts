// Shutter's and PostGraphile's answers for the same screen, in one shape, so the bench can check that both
// serve the same data before it compares their speed: Relay global ids and `rowId`s become the row's UUID,
// connections (`edges { node }`, `nodes`) become lists, cursors are dropped (each server has its own), and
// timestamps become milliseconds (PostgreSQL prints microseconds and an offset, Shutter ISO 8601).

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

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

/** A UUID as it is, or the UUID inside a Relay global id (base64 of "Type:uuid"). */
function uuidOf(id: string): string {
  if (UUID.test(id)) return id;
  const decoded = Buffer.from(id, "base64").toString().split(":")[1];
  return decoded && UUID.test(decoded) ? decoded : id;
}
