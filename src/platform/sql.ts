import type { CursorKey, PageRequest } from "../domain/pagination.ts";
import { Prisma } from "../generated/prisma/client.ts";

const { sql, raw, join, empty } = Prisma;

export { empty, join, raw, sql };
export type Sql = Prisma.Sql;

/**
 * Keyset pagination in SQL: the row-value comparison `(a, b) < (x, y)` that the matching composite index
 * answers directly, however deep the page. `order` is the list's natural order; an inverted page (`last`)
 * reads it backwards.
 */
export function keyset(columns: Sql, order: "asc" | "desc", page: PageRequest, values: (key: CursorKey) => Sql) {
  const conditions: Sql[] = [];
  const forward = order === "desc" ? "<" : ">";
  const backward = order === "desc" ? ">" : "<";
  if (page.after) conditions.push(sql`(${columns}) ${raw(forward)} (${values(page.after)})`);
  if (page.before) conditions.push(sql`(${columns}) ${raw(backward)} (${values(page.before)})`);
  const ascending = (order === "asc") !== page.inverted;
  return {
    where: conditions.length ? join(conditions, " AND ") : sql`TRUE`,
    direction: raw(ascending ? "ASC" : "DESC"),
  };
}

/** Cursor values for the common (created_at, id) ordering. */
export const createdAtAndId = ([createdAt, id]: CursorKey) =>
  sql`${new Date(Number(createdAt))}::timestamptz, ${String(id)}::uuid`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether a decoded id can be sent to PostgreSQL as a uuid (anything else would fail the whole statement). */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}
