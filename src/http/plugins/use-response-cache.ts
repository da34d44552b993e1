import { type ExecutionResult, getOperationAST } from "graphql";
import type { Plugin } from "graphql-yoga";
import { clientAddress, type ServerContext } from "../../context.ts";
import { chargeOperation } from "../../domain/rate-limit.ts";
import { RateLimitedError } from "../../errors.ts";
import { config } from "../../platform/config.ts";
import { requestScope } from "../../platform/logger.ts";
import { findResponse, isCurrent, keepResponse, responseKey, surrogateKeys } from "../../platform/response-cache.ts";
import { introspects } from "../cost.ts";
import { noteCharge } from "./use-budget-report.ts";
import { etagOf } from "./use-http-caching.ts";

/**
 * The response cache at the edge (platform/response-cache.ts does the caching). A query from someone signed out
 * is looked up by its document and variables before anything parses it; a hit answers at once, charged to the
 * caller's rate-limit budget like the operation it answers (the same points), and nothing else runs: a cached
 * answer exists only for a document and variables that passed every check before (the key holds them exactly).
 * A miss runs as usual and its answer is kept if it is a query's and read nothing no version covers. Signed
 * out, every caller is the same "nobody" to the resolvers (they see only the viewer, null here): so even fields
 * marked personal (`viewerHasLiked`: false) answer the same for all, and one kept answer serves them all. The
 * signed-in are never served from it. `X-Cache` says which (HIT, MISS), and `Age` how old
 * a hit is; public GET answers carry their entity parts in `Surrogate-Key` when a CDN purge hook is configured.
 */
export function useResponseCache(): Plugin {
  return {
    async onParams({ params, request, context, setResult }) {
      const scope = requestScope.getStore();
      if (!scope || !config().responseCache.enabled || typeof params.query !== "string") return;
      if (!signedOut(request, context as ServerContext)) return;
      // A document registering itself (APQ) runs through the gate, which stores it.
      if (scope.registration) return;
      const key = responseKey(params.query, params.operationName, params.variables);
      scope.responseCache = { key };
      const entry = await findResponse(key);
      if (!entry) return;
      // Charged while the versions are checked (one round trip for both): if the answer turns out outdated,
      // the operation runs and the gate charges only what is still due (nothing: the cost is the same).
      const [current, charged] = await Promise.all([
        isCurrent(key, entry),
        chargeOperation(entry.cost, null, clientAddress(request, context as ServerContext)).then(
          (budget) => {
            noteCharge(request, entry.cost, budget);
            return true;
          },
          (error: unknown) => {
            if (error instanceof RateLimitedError) return error;
            throw error;
          },
        ),
      ]);
      if (charged instanceof RateLimitedError) {
        setResult({ errors: [charged] });
        return;
      }
      scope.precharged = entry.cost;
      if (!current) return;
      scope.httpCache = entry.public ? "public" : "private";
      scope.responseCache.hit = entry;
      if (request.method === "GET") scope.etag = entry.etag ??= etagOf(entry.json);
      const { json } = entry;
      setResult({
        // Written as kept, never parsed and serialized again (Yoga uses a result's own `stringify`).
        stringify: (result: ExecutionResult) =>
          result.extensions ? `{"data":${json},"extensions":${JSON.stringify(result.extensions)}}` : `{"data":${json}}`,
        // Parsed only if something reads it (development's stamp copies the result).
        get data() {
          return JSON.parse(json);
        },
      } as ExecutionResult);
    },
    onExecute({ args }) {
      const scope = requestScope.getStore();
      if (!scope?.responseCache) return;
      const { key } = scope.responseCache;
      // Introspection answers the schema, which no version tracks: a deploy that changes it would leave GraphiQL
      // and code generators reading the old one until the TTL.
      scope.reads.shareable =
        getOperationAST(args.document, args.operationName)?.operation === "query" && !introspects(args.document);
      if (!scope.reads.shareable) return;
      return {
        async onExecuteDone({ result }) {
          if (Symbol.asyncIterator in result || result.errors?.length || scope.cost === undefined) return;
          const kept = await keepResponse(key, JSON.stringify(result.data), scope.cost, scope.httpCache === "public");
          if (kept) scope.responseCache = { key, kept };
        },
      };
    },
    onResponse({ request, response }) {
      const scope = requestScope.getStore();
      const cache = scope?.responseCache;
      if (!cache) return;
      const entry = cache.hit ?? cache.kept;
      response.headers.set("x-cache", cache.hit ? "HIT" : "MISS");
      if (!entry || response.status !== 200) return;
      if (cache.hit) response.headers.set("age", String(Math.max(0, Math.floor((Date.now() - entry.storedAt) / 1000))));
      if (request.method === "GET" && config().responseCache.cdnPurge) {
        response.headers.set("surrogate-key", surrogateKeys(entry).join(" "));
      }
    },
  };
}

/** No credentials of any kind: no Authorization header, no claims from a trusted gateway's authorizer. */
function signedOut(request: Request, server: ServerContext): boolean {
  return !request.headers.has("authorization") && !(config().auth.trustGateway && server.gatewayClaims);
}
