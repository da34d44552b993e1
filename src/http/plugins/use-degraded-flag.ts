import type { Plugin } from "graphql-yoga";
import { databaseDown } from "../../platform/outage.ts";

type SingleResult = { data?: unknown; extensions?: Record<string, unknown> };

/**
 * While this instance cannot reach the database, what it still answers comes from the caches (the response cache,
 * the entity cache) and may be a little behind: such answers say so in `extensions.degraded`, so an app can show
 * "you may be seeing older content" instead of pretending all is well. The flag goes as soon as a statement
 * succeeds again.
 */
export function useDegradedFlag(): Plugin {
  return {
    onResultProcess({ result, setResult }) {
      const since = databaseDown();
      if (since === null || (typeof result === "object" && result !== null && Symbol.asyncIterator in result)) return;
      const degraded = {
        services: ["database"],
        since: new Date(since).toISOString(),
        message: "Served from cache while our database is unreachable: it may be slightly out of date.",
      };
      const flag = (single: SingleResult): SingleResult =>
        single.data ? { ...single, extensions: { ...single.extensions, degraded } } : single;
      setResult(Array.isArray(result) ? result.map(flag) : flag(result as SingleResult));
    },
  };
}
