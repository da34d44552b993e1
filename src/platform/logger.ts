import { AsyncLocalStorage } from "node:async_hooks";
import { type Logger, type LoggerOptions, pino } from "pino";
import type { Change } from "./changes.ts";
import { config } from "./config.ts";
import type { IdempotencyClaim } from "./idempotency.ts";
import type { Reads } from "./reads.ts";
import type { ResponseCacheState } from "./response-cache.ts";
import { activeTraceId } from "./telemetry.ts";

/** What every log line and error of one request carries. */
export interface RequestScope {
  requestId: string;
  startedAt: number;
  operationName?: string;
  /** Whether this is the first request its instance serves (its cold start), for traces and metrics. */
  coldStart?: boolean;
  /** The codes of the errors answered (for the request's metrics). */
  errorCodes?: string[];
  /** SQL statements sent to PostgreSQL while serving the request. */
  sqlStatements: number;
  /** Round trips to the cache (Redis) while serving the request. */
  cacheRoundTrips: number;
  /** Cached entity parts found and not found. */
  cacheHits: number;
  cacheMisses: number;
  /** Whether the response may be cached by anyone ("public") or only by the viewer ("private"); see use-http-caching.ts. */
  httpCache?: "public" | "private";
  /** Outbox events written while serving the request, announced once it is done (see events/outbox.ts). */
  events: bigint[];
  /** A document the request registers (APQ), stored once its operation passed the gate (see use-gate.ts). */
  registration?: { hash: string; document: string };
  /** The mutation's Idempotency-Key, claimed in its first transaction (see platform/idempotency.ts). */
  idempotency?: IdempotencyClaim;
  /** Tables whose rows committed statements updated or deleted (counted outside production; see db.ts). */
  writtenTables: Set<string>;
  /** Tables of the entities the request's writes declared as changed (see changes.ts). */
  declaredTables: Set<string>;
  /** The response cache's key for the request and what it did (see platform/response-cache.ts). */
  responseCache?: ResponseCacheState;
  /** What the operation read, for the response cache (see platform/response-cache.ts). */
  reads: Reads;
  /** The answer's ETag, when it is known before its body is written (an answer from the response cache). */
  etag?: string;
  /** Points already charged to the caller's budget for this operation (by the response cache's lookup). */
  precharged?: number;
  /** The points the gate charged for the operation (a cached answer is charged the same; see use-gate.ts). */
  cost?: number;
  /** Called with each commit's changes: the request's loaders forget those entities (set by createContext). */
  onChanges?: (changes: readonly Change[]) => void;
}

/** A fresh scope for one request. */
export function createRequestScope(requestId: string): RequestScope {
  return {
    requestId,
    startedAt: performance.now(),
    sqlStatements: 0,
    cacheRoundTrips: 0,
    cacheHits: 0,
    cacheMisses: 0,
    events: [],
    writtenTables: new Set(),
    declaredTables: new Set(),
    reads: { versions: new Map() },
  };
}

/**
 * The request being served. Set by the function entry around each invocation, so logs written anywhere
 * below it (resolvers, loaders, the cache) carry the request id without threading it through calls.
 */
export const requestScope = new AsyncLocalStorage<RequestScope>();

let instance: Logger | undefined;

/** The process logger: JSON lines in production (CloudWatch, Loki), readable lines in development. */
export function logger(): Logger {
  if (!instance) {
    const { level, pretty } = config().log;
    const options: LoggerOptions = {
      level,
      base: { service: "shutter" },
      // The request id in every line of a request, and the trace id when tracing (each findable from the other).
      mixin: () => {
        const scope = requestScope.getStore();
        const traceId = activeTraceId();
        return { ...(scope ? { requestId: scope.requestId } : {}), ...(traceId ? { traceId } : {}) };
      },
      // Secrets never reach the logs, even if an object carrying them is logged whole.
      redact: ["password", "*.password", "refreshToken", "*.refreshToken", "headers.authorization", "authorization"],
    };
    instance = pretty
      ? pino({ ...options, transport: { target: "pino-pretty", options: { ignore: "pid,hostname,service" } } })
      : pino(options, process.stdout);
  }
  return instance;
}

/**
 * Reports why the process cannot start, as one log record (a JSON line in production, a readable line
 * otherwise) with no stack: a bad setting or an unreachable secret store is the operator's to fix, and the
 * message says how. Read from the environment directly: the configuration may be what is wrong.
 */
export function logStartupFailure(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  const json = (process.env.LOG_FORMAT ?? (process.env.NODE_ENV === "production" ? "json" : "pretty")) === "json";
  process.stderr.write(
    json
      ? `${JSON.stringify({ level: 60, time: Date.now(), service: "shutter", msg: `cannot start: ${message}` })}\n`
      : `Shutter cannot start: ${message}\n`,
  );
}
