import type { Plugin } from "graphql-yoga";
import type { Budget } from "../../domain/rate-limit.ts";
import { cachePolicyOf } from "./use-http-caching.ts";

/** What an operation cost and what its caller has left, by request (noted where it is charged). */
const charged = new WeakMap<Request, Budget & { cost: number }>();

/** Notes the charge of the request's operation (the gate's, or the response cache's for a cached answer). */
export function noteCharge(request: Request, cost: number, budget: Budget): void {
  charged.set(request, { cost, ...budget });
}

/**
 * Tells the client what each answer cost and what its budget holds, as public APIs do, so an app can slow down
 * before it is refused rather than after:
 * - `extensions.cost`: `{ requestedQueryCost, throttleStatus: { maximumAvailable, currentlyAvailable,
 *   windowSeconds, resetSeconds } }` (the shape of Shopify's GraphQL API, on a fixed window);
 * - the IETF headers `RateLimit-Policy: "points";q=<limit>;w=<window>` and `RateLimit: "points";r=<left>;t=<reset>`.
 * Not on answers shared caches may keep (public GET answers): one client's budget is nobody else's business, and
 * a CDN would hand it to everyone.
 */
export function useBudgetReport(): Plugin {
  const shared = (request: Request) => request.method === "GET" && cachePolicyOf(request) === "public";
  return {
    onResultProcess({ request, result }) {
      const budget = charged.get(request);
      if (!budget || shared(request) || (typeof result === "object" && result && Symbol.asyncIterator in result)) {
        return;
      }
      const cost = {
        requestedQueryCost: budget.cost,
        throttleStatus: {
          maximumAvailable: budget.limit,
          currentlyAvailable: budget.remaining,
          windowSeconds: budget.windowSeconds,
          resetSeconds: budget.resetSeconds,
        },
      };
      // In place: an answer from the response cache is written out by its own `stringify`, which a copy would lose.
      for (const single of (Array.isArray(result) ? result : [result]) as { extensions?: Record<string, unknown> }[]) {
        single.extensions = { ...single.extensions, cost };
      }
    },
    onResponse({ request, response }) {
      const budget = charged.get(request);
      if (!budget || shared(request)) return;
      response.headers.set("ratelimit-policy", `"points";q=${budget.limit};w=${budget.windowSeconds}`);
      response.headers.set("ratelimit", `"points";r=${budget.remaining};t=${budget.resetSeconds}`);
    },
  };
}
