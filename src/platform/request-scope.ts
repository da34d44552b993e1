// The request being served, for what every part of it reports: the request id of its log lines and errors, and
// the counts its access log line and metrics carry. Plugins and modules keep state of their own elsewhere (in
// WeakMaps keyed by this scope: reads.ts, response-cache.ts), so this stays what logs and metrics need.
import { AsyncLocalStorage } from "node:async_hooks";

/** What every log line, error and metric of one request carries: nothing else. */
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
  /** Of those, the ones a read replica answered (platform/replicas.ts). */
  replicaStatements: number;
  /** Round trips to the cache (Redis) while serving the request. */
  cacheRoundTrips: number;
  /** Cached entity parts found and not found. */
  cacheHits: number;
  cacheMisses: number;
}

/** A fresh scope for one request. */
export function createRequestScope(requestId: string): RequestScope {
  return {
    requestId,
    startedAt: performance.now(),
    sqlStatements: 0,
    replicaStatements: 0,
    cacheRoundTrips: 0,
    cacheHits: 0,
    cacheMisses: 0,
  };
}

/**
 * The request being served. Set by the function entry around each invocation, so logs written anywhere
 * below it (resolvers, loaders, the cache) carry the request id without threading it through calls.
 */
export const requestScope = new AsyncLocalStorage<RequestScope>();
