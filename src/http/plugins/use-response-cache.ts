import { type ExecutionResult, getOperationAST } from "graphql";
import type { Plugin } from "graphql-yoga";
import {
  findResponse,
  isCurrent,
  keepResponse,
  type ResponseCacheState,
  responseKey,
  surrogateKeys,
} from "../../caching/response-cache.ts";
import { chargeOperation } from "../../domain/rate-limit.ts";
import { RateLimitedError } from "../../errors.ts";
import { config } from "../../platform/config.ts";
import { requestReads } from "../../platform/reads.ts";
import { requestScope } from "../../platform/request-scope.ts";
import { clientAddress, type ServerContext } from "../context.ts";
import { introspects } from "../cost.ts";
import { registers } from "../persisted-documents.ts";
import { noteCharge } from "./use-budget-report.ts";
import { admittedCost, notePrecharged } from "./use-gate.ts";
import { cachePolicyOf, etagOf, setCachePolicy } from "./use-http-caching.ts";

/**
 * The response cache at the edge (caching/response-cache.ts does the caching). A query from someone signed out
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
      if (registers(request)) return;
      const key = responseKey(params.query, params.operationName, params.variables);
      const state: ResponseCacheState = { key };
      states.set(request, state);
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
      notePrecharged(request, entry.cost);
      if (!current) return;
      state.hit = entry;
      if (request.method === "GET") entry.etag ??= etagOf(entry.json);
      setCachePolicy(request, entry.public ? "public" : "private", request.method === "GET" ? entry.etag : undefined);
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
      const { request } = args.contextValue as { request: Request };
      const state = states.get(request);
      const reads = requestReads(scope);
      if (!scope || !state || !reads) return;
      const { key } = state;
      // Introspection answers the schema, which no version tracks: a deploy that changes it would leave GraphiQL
      // and code generators reading the old one until the TTL.
      reads.shareable =
        getOperationAST(args.document, args.operationName)?.operation === "query" && !introspects(args.document);
      if (!reads.shareable) return;
      return {
        async onExecuteDone({ result }) {
          const cost = admittedCost(request);
          if (Symbol.asyncIterator in result || result.errors?.length || cost === undefined) return;
          const kept = await keepResponse(key, JSON.stringify(result.data), cost, cachePolicyOf(request) === "public");
          if (kept) state.kept = kept;
        },
      };
    },
    onResponse({ request, response }) {
      const cache = states.get(request);
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

/** What the response cache did for each request it looked up (this plugin's own state, as Yoga's plugins keep it). */
const states = new WeakMap<Request, ResponseCacheState>();

/**
 * What the response cache did for a request, for its access log and (in development) its answer: "hit", "kept",
 * why the answer was not kept, or undefined when it was not looked up (signed in, disabled).
 */
export function responseCacheOutcome(request: Request): string | undefined {
  const state = states.get(request);
  if (!state) return undefined;
  if (state.hit) return "hit";
  if (state.kept) return "kept";
  const reads = requestReads();
  if (!reads?.shareable) return "not shareable (not a query, or introspection)";
  return `not kept: ${reads.uncovered ?? "an error"}`;
}

/** No credentials of any kind: no Authorization header, no claims from a trusted gateway's authorizer. */
function signedOut(request: Request, server: ServerContext): boolean {
  return !request.headers.has("authorization") && !(config().auth.trustGateway && server.gatewayClaims);
}
