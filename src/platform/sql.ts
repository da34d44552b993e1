import { Prisma } from "../generated/prisma/client.ts";

const { sql, raw, join, empty } = Prisma;

export { empty, join, raw, sql };
export type Sql = Prisma.Sql;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether a decoded id can be sent to PostgreSQL as a uuid (anything else would fail the whole statement). */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}
