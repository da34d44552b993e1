import { resolveCursorConnection } from "@pothos/plugin-relay";
import { ValidationError } from "../errors.ts";
import { config } from "../platform/config.ts";
import { join, raw, type Sql, sql } from "../platform/sql.ts";

/** Relay connection arguments as every connection field receives them. */
export interface ConnectionArgs {
  first?: number | null;
  last?: number | null;
  after?: string | null;
  before?: string | null;
}

/** Values that place a row in a keyset ordering, e.g. [createdAt, id]. */
export type CursorKey = (string | number)[];

/**
 * What each value of a cursor is, checked when a cursor comes back: a client can send anything, and a value of
 * the wrong kind would otherwise reach SQL (an error there is a 500, not the client's fault).
 */
export type CursorPart = "time" | "uuid" | "count" | "handle";

// Each within what its SQL type holds, not only what JavaScript does: a value beyond it fails in PostgreSQL.
const CURSOR_PARTS: Record<CursorPart, (value: unknown) => boolean> = {
  // Milliseconds since 1970, up to what a Date can hold (timestamptz goes further; rows are never older).
  time: (v) => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= 8.64e15,
  uuid: (v) => typeof v === "string" && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(v),
  // A counter column: int4.
  count: (v) => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= 2_147_483_647,
  handle: (v) => typeof v === "string" && /^[a-z0-9_.]{1,30}$/.test(v),
};

/** One page to fetch: rows strictly after/before the decoded keys, in reverse order when `inverted`. */
export interface PageRequest {
  after?: CursorKey;
  before?: CursorKey;
  limit: number;
  inverted: boolean;
}

/** A Relay connection page, as connection fields resolve to. */
export interface Connection<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: { startCursor: string | null; endCursor: string | null; hasPreviousPage: boolean; hasNextPage: boolean };
}

/** A list's keyset ordering: the values that place a row in it, and what each of them is. */
export interface Ordering<T> {
  key: (row: T) => CursorKey;
  parts: CursorPart[];
}

/** The most common ordering: by creation time, ties broken by id. */
export const byCreation: Ordering<{ createdAt: Date; id: string }> = {
  key: (row) => [row.createdAt.getTime(), row.id],
  parts: ["time", "uuid"],
};

export const DEFAULT_PAGE_SIZE = 20;

/** Cursors are opaque to clients: base64url of the keyset values. */
export function encodeCursor(key: CursorKey): string {
  return Buffer.from(JSON.stringify(key)).toString("base64url");
}

/** @throws ValidationError when the cursor is not one `encodeCursor` made for a list ordered by these parts. */
export function decodeCursor(cursor: string, parts: CursorPart[], argName = "after"): CursorKey {
  let key: unknown;
  try {
    key = cursor.length <= 400 ? JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) : undefined;
  } catch {
    key = undefined;
  }
  if (
    !Array.isArray(key) ||
    key.length !== parts.length ||
    !key.every((value, i) => CURSOR_PARTS[parts[i] as CursorPart](value))
  ) {
    throw ValidationError.field([argName], `"${argName}" is not a cursor from this list. Start again without it.`);
  }
  return key;
}

/**
 * Validates the page size (too large is an error the client can act on, not a silent clamp), decodes the
 * cursors and builds a Relay connection from the rows `fetch` returns (it may return `limit` rows; one more
 * than the page tells that another page exists).
 * @throws ValidationError for negative or oversized page sizes and foreign cursors.
 */
export async function paginate<T>(
  args: ConnectionArgs,
  fetch: (page: PageRequest) => Promise<T[]>,
  ordering: Ordering<T>,
): Promise<Connection<T>> {
  const max = config().maxPageSize;
  for (const name of ["first", "last"] as const) {
    const value = args[name];
    if (value != null && (value < 0 || value > max)) {
      throw ValidationError.field([name], `"${name}" must be between 0 and ${max}.`);
    }
  }
  const after = args.after ? decodeCursor(args.after, ordering.parts, "after") : undefined;
  const before = args.before ? decodeCursor(args.before, ordering.parts, "before") : undefined;
  const connection = await resolveCursorConnection(
    {
      args,
      toCursor: (row) => encodeCursor(ordering.key(row as T)),
      defaultSize: DEFAULT_PAGE_SIZE,
      maxSize: max,
    },
    ({ limit, inverted }) => fetch({ after, before, limit, inverted }),
  );
  const page = connection as Connection<T>;
  // Relay: an empty page has no cursors (Pothos reports empty strings).
  if (page.edges.length === 0) page.pageInfo = { ...page.pageInfo, startCursor: null, endCursor: null };
  return page;
}

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
