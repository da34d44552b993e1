import { AsyncLocalStorage } from "node:async_hooks";
import { PrismaPg } from "@prisma/adapter-pg";
import type { SqlDriverAdapter, SqlQuery, SqlResultSet } from "@prisma/driver-adapter-utils";
import { config } from "./config.ts";
import { logger } from "./logger.ts";
import { type RequestScope, requestScope } from "./request-scope.ts";

// Reads on read replicas (DATABASE_REPLICA_URLS), never older than what a client wrote or was shown.
//
// Every write leaves its place in the primary's WAL (an LSN read right after its COMMIT: services/write.ts) on the
// cache versions it bumps (`<n>@<lsn>`: caching/store.ts). A read that a version covers (an entity the cache
// missed, a list whose owner's version counts its members) may go to a replica only once that replica has
// replayed past the LSN of every version it read: then it holds every write those versions stand for. Anything
// else — a read no version covers (a viewer's own facts, the feed), a read while the cache cannot be asked (no
// versions known), a replica that lags, fails or is gone — goes to the primary. So a replica's lag costs the
// primary some reads, never a client an older answer; and a replica's failure costs them the same, never an error.

/** An LSN (`16/B374D848`) as a number: comparable. */
export function parseLsn(text: string | undefined | null): bigint {
  const match = /^([0-9A-F]+)\/([0-9A-F]+)$/i.exec(text ?? "");
  return match ? (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`) : 0n;
}

/**
 * What a version key reads as while this instance holds an invalidation of it that Redis has not taken yet
 * (caching/store.ts): it stands for a write no replica is known to hold.
 */
export const PENDING_VERSION = "pending";

/** A floor no replica can meet: the read goes to the primary. */
export const PRIMARY = 2n ** 64n;

interface Replica {
  url: string;
  adapter?: Promise<SqlDriverAdapter>;
  /** What it had replayed when last asked: a lower bound of what it holds now. */
  replayed: bigint;
  askedAt: number;
  asking?: Promise<void>;
  /** After a failure, left alone until then. */
  downUntil: number;
}

let replicas: Replica[] | undefined;
const all = () =>
  (replicas ??= config().database.replicaUrls.map((url) => ({ url, replayed: 0n, askedAt: 0, downUntil: 0 })));

/** Whether reads may go to replicas at all (configured). */
export const replicasConfigured = () => config().database.replicaUrls.length > 0;

/** How often a replica behind a read's floor is asked again how far it got. */
const ASK_EVERY_MS = 50;
/** How long a replica that failed is left alone. */
const DOWN_FOR_MS = 5_000;

const LSN_QUERY: SqlQuery = { sql: "SELECT pg_last_wal_replay_lsn()::text AS lsn", args: [], argTypes: [] };

function adapterOf(replica: Replica): Promise<SqlDriverAdapter> {
  const { poolMax, idleTimeoutSeconds } = config().database;
  replica.adapter ??= new PrismaPg({
    connectionString: replica.url,
    max: poolMax,
    idleTimeoutMillis: idleTimeoutSeconds * 1000,
    connectionTimeoutMillis: 2_000,
  })
    .connect()
    .catch((error) => {
      replica.adapter = undefined;
      throw error;
    });
  return replica.adapter;
}

function failed(replica: Replica, error: unknown) {
  if (Date.now() >= replica.downUntil) {
    logger().warn(
      { err: error, replica: new URL(replica.url).host },
      "database: a read replica failed; reading from the primary",
    );
  }
  replica.downUntil = Date.now() + DOWN_FOR_MS;
}

/**
 * Asks the replica how far it has replayed, unless it was asked within ASK_EVERY_MS (then that answer stands):
 * one short statement on the replica saves the primary a read, and at most 1000 / ASK_EVERY_MS of them a second.
 */
function ask(replica: Replica): Promise<void> {
  if (replica.asking) return replica.asking;
  if (Date.now() - replica.askedAt < ASK_EVERY_MS) return Promise.resolve();
  replica.askedAt = Date.now();
  replica.asking = adapterOf(replica)
    .then((adapter) => adapter.queryRaw(LSN_QUERY))
    .then((result) => {
      replica.replayed = parseLsn(result.rows[0]?.[0] as string);
    })
    .catch((error) => failed(replica, error))
    .finally(() => {
      replica.asking = undefined;
    });
  return replica.asking;
}

/** A replica that holds everything up to `floor`, if one does (those behind are asked how far they got). */
async function replicaFor(floor: bigint): Promise<Replica | undefined> {
  if (floor >= PRIMARY) return undefined;
  const live = all().filter((replica) => Date.now() >= replica.downUntil);
  let ready = live.filter((replica) => replica.replayed >= floor);
  if (ready.length === 0) {
    await Promise.all(live.map(ask));
    ready = live.filter((replica) => Date.now() >= replica.downUntil && replica.replayed >= floor);
  }
  return ready[Math.floor(Math.random() * ready.length)];
}

interface FloorScope {
  floor: bigint;
  /** Set when a statement of the read was answered by a replica. */
  onReplica: boolean;
}
const floors = new AsyncLocalStorage<FloorScope>();

/**
 * Runs a read whose rows are all covered by writes at or below `floor` (an LSN; PRIMARY when unknown): its
 * statements may be answered by a replica that has replayed that far. @returns what `read` returns, and whether a
 * replica answered (a row it lacks may be newer than its floor says: an insert bumps no version).
 */
export async function readAt<T>(floor: bigint, read: () => Promise<T>): Promise<{ value: T; onReplica: boolean }> {
  if (!replicasConfigured()) return { value: await read(), onReplica: false };
  const scope: FloorScope = { floor, onReplica: false };
  // Awaited inside: Prisma's queries are lazy, and would otherwise start (and run) outside.
  const value = await floors.run(scope, async () => await read());
  return { value, onReplica: scope.onReplica };
}

/** Runs `work` with its statements on the primary, even inside a read that replicas may answer. */
export function onPrimary<T>(work: () => Promise<T>): Promise<T> {
  return floors.exit(work);
}

/**
 * A statement outside any transaction (db.ts): sent to a replica when it is a read inside `readAt` and a replica
 * holds what its floor needs, otherwise to the primary (`primary`) — also when the replica fails.
 */
export async function routeRead(query: SqlQuery, primary: () => Promise<SqlResultSet>): Promise<SqlResultSet> {
  const scope = floors.getStore();
  if (!scope || !/^\s*(select|with)\b/i.test(query.sql)) return primary();
  const replica = await replicaFor(scope.floor);
  if (!replica) return primary();
  try {
    const result = await (await adapterOf(replica)).queryRaw(query);
    scope.onReplica = true;
    const request = requestScope.getStore();
    if (request) request.replicaStatements++;
    return result;
  } catch (error) {
    failed(replica, error);
    return primary();
  }
}

// The LSNs of the versions each request read, by entity part (`post-counts:<id>`): the floors of its reads that
// depend on those versions (a list whose owner it read first). Kept here, by request, like the other notes.
const seenByRequest = new WeakMap<RequestScope, Map<string, bigint>>();

/**
 * The floor of a read covered by these versions: the highest LSN they carry. A version without one (absent, or
 * written before replicas were configured) stands for no write after where the versions begin (`born`; the read
 * goes to the primary when that is unknown); one this instance is still invalidating, for an unknown write.
 */
export function floorOf(versions: readonly string[], born: string | null): bigint {
  let floor = 0n;
  for (const version of versions) {
    if (version === PENDING_VERSION) return PRIMARY;
    const at = version.indexOf("@");
    const lsn = at >= 0 ? parseLsn(version.slice(at + 1)) : born === null ? PRIMARY : parseLsn(born);
    if (lsn > floor) floor = lsn;
  }
  return floor;
}

/** The request read an entity part (`tag`) whose writes a replica must have replayed up to `lsn` (entities.ts). */
export function noteSeen(tag: string, lsn: bigint): void {
  const scope = requestScope.getStore();
  if (!scope) return;
  let seen = seenByRequest.get(scope);
  if (!seen) {
    seen = new Map();
    seenByRequest.set(scope, seen);
  }
  seen.set(tag, lsn);
}

/** The floor of a read covered by parts the request read before (PRIMARY if it did not read one of them). */
export function seenFloor(tags: readonly string[]): bigint {
  const scope = requestScope.getStore();
  const seen = scope && seenByRequest.get(scope);
  let floor = 0n;
  for (const tag of tags) {
    const lsn = seen?.get(tag);
    if (lsn === undefined) return PRIMARY;
    if (lsn > floor) floor = lsn;
  }
  return floor;
}

/** Closes the replicas' pools (tests, graceful shutdown). */
export async function closeReplicas(): Promise<void> {
  const open = replicas ?? [];
  replicas = undefined;
  await Promise.all(open.map(async (replica) => (await replica.adapter?.catch(() => undefined))?.dispose()));
}
