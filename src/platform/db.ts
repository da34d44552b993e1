import { createHash } from "node:crypto";
import { PrismaPg } from "@prisma/adapter-pg";
import type { SqlDriverAdapter, SqlDriverAdapterFactory, SqlQueryable } from "@prisma/driver-adapter-utils";
import { PrismaClient } from "../generated/prisma/client.ts";
import { type Config, config } from "./config.ts";
import { noteDatabase, unavailableService } from "./outage.ts";
import { noteStatement } from "./reads.ts";
import { closeReplicas, onPrimary, replicasConfigured, routeRead } from "./replicas.ts";
import { type RequestScope, requestScope } from "./request-scope.ts";
import { inSpan, tracing } from "./telemetry.ts";

let client: PrismaClient | undefined;

/**
 * The process's Prisma client, created on first use (no connection is opened at import) and reused by warm
 * invocations. Import this; don't carry the client in the GraphQL context.
 */
export function db(): PrismaClient {
  if (!client) {
    performance.mark("shutter:prisma:create");
    client = createPrismaClient(config().database);
    performance.mark("shutter:prisma:created");
  }
  return client;
}

/** Closes the pools (tests, graceful shutdown). */
export async function disconnectDb(): Promise<void> {
  const current = client;
  client = undefined;
  await Promise.all([current?.$disconnect(), closeReplicas()]);
}

/**
 * The primary's current end of WAL, read after a commit: at or past that commit's record, so a replica that has
 * replayed this far holds the write (platform/replicas.ts).
 */
export async function walPosition(): Promise<string> {
  const [row] = await onPrimary(
    async () => await db().$queryRaw<{ lsn: string }[]>`SELECT pg_current_wal_insert_lsn()::text AS lsn`,
  );
  return row?.lsn ?? "";
}

export function createPrismaClient(options: Config["database"]): PrismaClient {
  const factory = new PrismaPg(
    {
      connectionString: options.url,
      max: options.poolMax,
      // A function instance may sit frozen for minutes: drop idle sockets early rather than find them dead.
      idleTimeoutMillis: options.idleTimeoutSeconds * 1000,
      connectionTimeoutMillis: 5_000,
    },
    // By default every statement is sent unnamed (parsed each time), which is what transaction-mode poolers
    // (PgBouncer before 1.21, RDS Proxy without pinning) require: a named statement prepared on one server
    // connection does not exist on the next. Named statements save the parse on direct connections.
    options.preparedStatements ? { statementNameGenerator: statementName } : undefined,
  );
  return new PrismaClient({ adapter: countingStatements(factory, !config().production, options.poolMax + 1) });
}

const statementNames = new Map<string, string>();
/** One name per SQL text, so each connection prepares a statement once and reuses it. */
function statementName(query: { sql: string }): string {
  let name = statementNames.get(query.sql);
  if (!name) {
    name = `shutter_${createHash("sha1").update(query.sql).digest("hex").slice(0, 20)}`;
    statementNames.set(query.sql, name);
  }
  return name;
}

/** A plain read (a SELECT, or a WITH query that changes nothing): sending it twice is harmless. */
const READ = /^\s*(?:SELECT|WITH)\b/i;
const CHANGES = /\b(?:INSERT|UPDATE|DELETE|MERGE)\b/i;
/** A connection that died under a statement (closed by the server or a proxy), not a database refusing or failing. */
const LOST =
  /Connection terminated|Connection closed|closed the connection|Client has encountered a connection error|ECONNRESET|EPIPE/i;

/**
 * A read outside a transaction, sent again once if its connection turned out to be dead: an instance thawed after
 * minutes frozen holds pooled sockets the server closed meanwhile, and may write its first statement to one before
 * the close is read (and the pool may hold several such sockets: it is sent until a live one takes it, once more
 * than the pool holds). A read changes nothing, so sending it again is safe whether or not it arrived; anything
 * else fails as it did.
 */
function readAgainIfLost<R>(sql: string, send: () => Promise<R>, attempts: number): Promise<R> {
  if (!READ.test(sql) || CHANGES.test(sql)) return send();
  // Each dead connection fails once and leaves the pool: the next send takes another, or opens a new one.
  const attempt = (left: number): Promise<R> =>
    send().catch((error: unknown) => {
      if (left <= 1 || !lostConnection(error)) throw error;
      return attempt(left - 1);
    });
  return attempt(attempts);
}

function lostConnection(error: unknown): boolean {
  for (
    let current = error as { message?: unknown; code?: unknown; kind?: unknown; cause?: unknown } | undefined,
      depth = 0;
    current && typeof current === "object" && depth < 6;
    depth++
  ) {
    if (current.kind === "ConnectionClosed") return true;
    if (typeof current.message === "string" && LOST.test(current.message)) return true;
    if (typeof current.code === "string" && LOST.test(current.code)) return true;
    current = current.cause as typeof current;
  }
  return false;
}

/** Whether the database answers, as each statement finds out (platform/outage.ts). */
function observed<R>(sent: Promise<R>): Promise<R> {
  return sent.then(
    (result) => {
      noteDatabase(true);
      return result;
    },
    (error: unknown) => {
      if (unavailableService(error) === "database") noteDatabase(false);
      throw error;
    },
  );
}

// The tables whose rows each request's committed statements updated or deleted (outside production): what the
// undeclared-change check (caching/changes.ts) compares with what the request's writes declared.
const writtenByRequest = new WeakMap<RequestScope, Set<string>>();

/** The tables whose rows the request's committed statements updated or deleted (outside production). */
export function writtenTables(scope: RequestScope): ReadonlySet<string> {
  return writtenByRequest.get(scope) ?? new Set();
}

function noteWrittenTable(table: string, scope: RequestScope | undefined): void {
  if (!scope) return;
  let tables = writtenByRequest.get(scope);
  if (!tables) {
    tables = new Set();
    writtenByRequest.set(scope, tables);
  }
  tables.add(table);
}

/** The table a statement updates or deletes rows of (Prisma's SQL and ours), or null for anything else. */
const WRITE = /^\s*(?:update|delete\s+from)\s+(?:"?public"?\.)?"?(\w+)"?/i;

/**
 * Counts every statement sent through the adapter into the current request's scope. The count is the
 * "SQL statements per operation" that tests assert on and dev responses report. Outside production it also
 * notes the tables whose rows committed statements updated or deleted (a transaction's, once it commits), which
 * the undeclared-change check compares with what the request's services declared (caching/changes.ts).
 */
function countingStatements(
  factory: SqlDriverAdapterFactory,
  trackWrites: boolean,
  sends: number,
): SqlDriverAdapterFactory {
  const count = () => {
    const scope = requestScope.getStore();
    if (scope) {
      scope.sqlStatements++;
      noteStatement();
    }
  };
  let first = true;
  // The first statement of the process also opens the first connection: marked for the cold-start breakdown.
  const timeFirst = <R>(run: () => Promise<R>): Promise<R> => {
    if (!first) return run();
    first = false;
    performance.mark("shutter:db:first-statement");
    return run().finally(() => performance.mark("shutter:db:first-result"));
  };
  /**
   * Runs a statement; outside production, once it succeeded, the table it wrote goes to `pending` (a
   * transaction's) or the request's scope.
   */
  const run = <R>(sql: string, pending: Set<string> | undefined, send: () => Promise<R>): Promise<R> => {
    count();
    const statement = () =>
      !tracing()
        ? observed(send())
        : inSpan(
            `sql ${/^\s*(\w+)/.exec(sql)?.[1]?.toUpperCase() ?? "statement"}`,
            { "db.system.name": "postgresql", "db.query.text": sql.slice(0, 2_000) },
            () => observed(send()),
            "client",
          );
    if (!trackWrites) return timeFirst(statement);
    const scope = requestScope.getStore();
    return timeFirst(statement).then((result) => {
      const table = WRITE.exec(sql)?.[1]?.toLowerCase();
      if (table) pending ? pending.add(table) : noteWrittenTable(table, scope);
      return result;
    });
  };
  const instrument = <T extends SqlQueryable>(queryable: T, pending?: Set<string>, outside = false): T => {
    const queryRaw = queryable.queryRaw.bind(queryable);
    const executeRaw = queryable.executeRaw.bind(queryable);
    // Outside a transaction, a read may be answered by a replica (platform/replicas.ts), and is sent again once on a
    // new connection if the one it went out on was found dead.
    queryable.queryRaw = !outside
      ? (query) => run(query.sql, pending, () => queryRaw(query))
      : replicasConfigured()
        ? (query) =>
            run(query.sql, pending, () =>
              readAgainIfLost(query.sql, () => routeRead(query, () => queryRaw(query)), sends),
            )
        : (query) => run(query.sql, pending, () => readAgainIfLost(query.sql, () => queryRaw(query), sends));
    queryable.executeRaw = (query) => run(query.sql, pending, () => executeRaw(query));
    return queryable;
  };
  return {
    provider: factory.provider,
    adapterName: factory.adapterName,
    async connect(): Promise<SqlDriverAdapter> {
      const adapter = instrument(await factory.connect(), undefined, true);
      const startTransaction = adapter.startTransaction.bind(adapter);
      adapter.startTransaction = async (isolationLevel) => {
        count(); // BEGIN
        const scope = requestScope.getStore();
        // A transaction's writes count once it commits: a rolled-back one changed nothing.
        const pending = trackWrites ? new Set<string>() : undefined;
        const transaction = instrument(await observed(startTransaction(isolationLevel)), pending);
        if (!pending) return transaction;
        const commit = transaction.commit.bind(transaction);
        const rollback = transaction.rollback.bind(transaction);
        transaction.commit = async () => {
          await commit();
          for (const table of pending) noteWrittenTable(table, scope);
        };
        transaction.rollback = async () => {
          pending.clear();
          await rollback();
        };
        return transaction;
      };
      return adapter;
    },
  };
}
