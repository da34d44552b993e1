import type { Plugin } from "graphql-yoga";
import { undeclaredChanges } from "../../caching/changes.ts";
import { config } from "../../platform/config.ts";
import { logger } from "../../platform/logger.ts";
import { requestScope } from "../../platform/request-scope.ts";
import { responseCacheOutcome } from "./use-response-cache.ts";

/**
 * Outside production, every answer reports what it cost the backend (`extensions`: the request id, SQL
 * statements, cache round trips, hits and misses, what the response cache did) and any write to a cached entity
 * that no service declared (see caching/changes.ts): `extensions.undeclaredChanges`, and an error in the log.
 * The tests assert on these counts, and fail on any undeclared write (test/kit/instances.ts).
 */
export function useDevReport(): Plugin {
  return {
    onResultProcess({ request, result, setResult }) {
      const scope = requestScope.getStore();
      if (config().production || !scope || Symbol.asyncIterator in result) return;
      const undeclared = undeclaredChanges(scope);
      if (undeclared.length) {
        logger().error({ tables: undeclared }, "a write changed cached entities without declaring them");
      }
      const cacheOutcome = responseCacheOutcome(request);
      const report = <R extends { extensions?: Record<string, unknown> }>(single: R): R => ({
        ...single,
        extensions: {
          ...single.extensions,
          requestId: scope.requestId,
          sqlStatements: scope.sqlStatements,
          ...(scope.replicaStatements ? { replicaStatements: scope.replicaStatements } : {}),
          cache: { roundTrips: scope.cacheRoundTrips, hits: scope.cacheHits, misses: scope.cacheMisses },
          ...(cacheOutcome ? { responseCache: cacheOutcome } : {}),
          ...(undeclared.length ? { undeclaredChanges: undeclared } : {}),
        },
      });
      setResult(
        Array.isArray(result) ? result.map(report) : report(result as { extensions?: Record<string, unknown> }),
      );
    },
  };
}
