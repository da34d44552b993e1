// Telling an outage from a bug: the errors that mean "a service we depend on cannot be reached right now", as the
// database driver, Prisma and the AWS SDK report them. They become SERVICE_UNAVAILABLE (retryable, HTTP 503) at the
// edge (http/mask-error.ts) instead of a masked internal error.

/**
 * Prisma's codes for a database it cannot reach, that timed out, or closed the connection; a pool timeout; and a
 * transaction that could not start or outlived its timeout (P2028: rolled back, nothing committed — under load, a
 * database too slow to serve is as good as unreachable, and the retry is safe).
 */
const PRISMA_UNREACHABLE = new Set(["P1001", "P1002", "P1008", "P1017", "P2024", "P2028"]);
/** The pg adapter's kinds of connection failure (DriverAdapterError's cause). */
const ADAPTER_UNREACHABLE = new Set(["DatabaseNotReachable", "ConnectionClosed", "SocketTimeout"]);
/** PostgreSQL's own: shutting down, starting up, too many connections, and connection exceptions (class 08). */
const POSTGRES_UNAVAILABLE = /^(57P0[1-3]|53300|08...)$/;
const SOCKET_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENOTFOUND", "EPIPE", "EHOSTUNREACH"]);
/** What node-postgres says when a connection dies or cannot be had in time. */
const PG_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection closed/i;

type Failure = {
  name?: string;
  code?: unknown;
  message?: unknown;
  cause?: unknown;
  kind?: unknown;
  originalCode?: unknown;
  $metadata?: { httpStatusCode?: number };
  meta?: { driverAdapterError?: unknown };
};

/** The service an error says is unreachable, or null when the error is anything else. */
export function unavailableService(error: unknown): "database" | "storage" | null {
  for (let current = error as Failure | undefined, depth = 0; current && depth < 6; depth++) {
    if (typeof current !== "object") return null;
    // The AWS SDK: a response from storage that says it is failing, or no response at all.
    if (current.$metadata) {
      const status = current.$metadata.httpStatusCode;
      if (status === undefined || status >= 500) return "storage";
      return null;
    }
    if (typeof current.code === "string" && PRISMA_UNREACHABLE.has(current.code)) return "database";
    if (typeof current.kind === "string" && ADAPTER_UNREACHABLE.has(current.kind)) return "database";
    if (current.kind === "postgres" && typeof current.code === "string" && POSTGRES_UNAVAILABLE.test(current.code)) {
      return "database";
    }
    if (typeof current.code === "string" && SOCKET_CODES.has(current.code)) return "database";
    if (typeof current.message === "string" && PG_MESSAGES.test(current.message)) return "database";
    // Prisma's raw queries (P2010) carry the adapter's error in `meta`, not as the cause.
    current = (current.meta?.driverAdapterError ?? current.cause) as Failure | undefined;
  }
  return null;
}

/**
 * Since when this process has found the database unreachable, or null while it works as far as the process knows:
 * set by a statement that failed with an outage, cleared by the next that succeeds. Answers given meanwhile come
 * from the caches (http/plugins/use-degraded-flag.ts says so in their extensions).
 */
let databaseDownSince: number | null = null;

export function noteDatabase(reachable: boolean): void {
  if (reachable) databaseDownSince = null;
  else databaseDownSince ??= Date.now();
}

export const databaseDown = (): number | null => databaseDownSince;
