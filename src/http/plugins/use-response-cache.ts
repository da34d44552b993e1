import { type ExecutionResult, getOperationAST } from "graphql";
import type { Plugin } from "graphql-yoga";
import { LRUCache } from "lru-cache";
import {
  bodyOf,
  type CachedResponse,
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
import { databaseDown } from "../../platform/outage.ts";
import { requestReads } from "../../platform/reads.ts";
import { requestScope } from "../../platform/request-scope.ts";
import { clientAddress, type ServerContext } from "../context.ts";
import { introspects } from "../cost.ts";
import { registers } from "../persisted-documents.ts";
import { noteCharge } from "./use-budget-report.ts";
import { admittedCost, notePrecharged } from "./use-gate.ts";
import { cachePolicyOf, etagOf, setCachePolicy } from "./use-http-caching.ts";
import { sentInParts } from "./use-incremental-delivery.ts";

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
 *
 * A public answer over GET is answered sooner still, before Yoga reads the request's parameters: once a GET was
 * answered from the cache or kept, this instance remembers its exact URL (and Accept) as the answer's, and the
 * same URL again is answered with the answer's stored bytes from `onRequest` — every hook on the response
 * (HTTP caching's ETag and 304, CORS, the access log) still runs. The same URL is the same parameters, so it
 * passed the same checks; what else an answer depends on (no credentials, the caller's budget, current versions)
 * is checked on each request as on the way above.
 */
export function useResponseCache(): Plugin {
  return {
    async onRequest({ request, url, serverContext, endResponse, fetchAPI }) {
      if (request.method !== "GET" || !config().responseCache.enabled || !sentAsKept()) return;
      const known = knownUrls.get(urlKey(url, request));
      const scope = requestScope.getStore();
      if (!known || !scope || !signedOut(request, serverContext as ServerContext)) return;
      const entry = await findResponse(known.key);
      if (!entry?.public) return;
      const state: ResponseCacheState = { key: known.key, early: true };
      states.set(request, state);
      // For the access log: no parameters are read on this way.
      scope.operationName = known.operationName;
      if (!(await answer(request, serverContext as ServerContext, state, entry))) return;
      endResponse(
        new fetchAPI.Response(bodyOf(entry), { status: 200, headers: { "content-type": known.contentType } }),
      );
    },
    async onParams({ params, request, context, setResult }) {
      const scope = requestScope.getStore();
      if (!scope || !config().responseCache.enabled || typeof params.query !== "string") return;
      // Looked up already (above): refused by the budget, or outdated and charged; the operation runs.
      const looked = states.get(request);
      if (looked) {
        if (looked.refused) setResult({ errors: [looked.refused] });
        return;
      }
      if (!signedOut(request, context as ServerContext)) return;
      // A document registering itself (APQ) runs through the gate, which stores it.
      if (registers(request)) return;
      // An answer sent in parts is never kept, nor answered from a whole one kept for JSON clients: what they asked
      // for is the parts.
      if (sentInParts(request, context as ServerContext, params.query)) return;
      const key = responseKey(params.query, params.operationName, params.variables);
      const state: ResponseCacheState = { key };
      states.set(request, state);
      const entry = await findResponse(key);
      if (!entry) return;
      if (!(await answer(request, context as ServerContext, state, entry))) {
        if (state.refused) setResult({ errors: [state.refused] });
        return;
      }
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
      // Its URL answers with its bytes from now on (onRequest), if they are what was sent: a public answer,
      // nothing added to it. (Answered that way already: known.)
      const contentType = response.headers.get("content-type");
      if (!cache.early && request.method === "GET" && entry.public && sentAsKept() && contentType?.includes("json")) {
        const url = new URL(request.url);
        knownUrls.set(urlKey(url, request), {
          key: cache.key,
          contentType,
          operationName: requestScope.getStore()?.operationName,
        });
      }
    },
  };
}

/**
 * Answers a request from a cached answer if it is current, charging the caller's budget for it — while the
 * versions are checked (the charge and the check's round trip go together): if the answer turns out outdated, the
 * operation runs and the gate charges only what is still due (nothing: the cost is the same). @returns whether
 * the answer is the request's; when the budget refused it, `state.refused` says so.
 */
async function answer(
  request: Request,
  server: ServerContext,
  state: ResponseCacheState,
  entry: CachedResponse,
): Promise<boolean> {
  const [current, charged] = await Promise.all([
    isCurrent(state.key, entry),
    chargeOperation(entry.cost, null, clientAddress(request, server)).then(
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
    state.refused = charged;
    return false;
  }
  notePrecharged(request, entry.cost);
  if (!current) return false;
  state.hit = entry;
  if (request.method === "GET") entry.etag ??= etagOf(entry.json);
  setCachePolicy(request, entry.public ? "public" : "private", request.method === "GET" ? entry.etag : undefined);
  return true;
}

/**
 * Whether an answer leaves exactly as kept: in production (elsewhere every answer reports its costs in
 * `extensions`, use-dev-report.ts) and while the database works (else answers say they may be behind,
 * use-degraded-flag.ts). Public answers over GET carry no budget (use-budget-report.ts).
 */
const sentAsKept = () => config().production && databaseDown() === null;

/** The GET URLs (with Accept) this instance answered from a kept answer, by path, query string and Accept. */
const knownUrls = new LRUCache<string, { key: string; contentType: string; operationName?: string }>({
  max: 10_000,
  // A URL is at most what the body limit lets through; most are a persisted document's id and a few variables.
  maxSize: 16 * 1024 * 1024,
  sizeCalculation: (value, key) => key.length + value.key.length + value.contentType.length,
});

const urlKey = (url: URL, request: Request) => `${url.pathname}${url.search}\n${request.headers.get("accept") ?? ""}`;

/** What the response cache did for each request it looked up (this plugin's own state, as Yoga's plugins keep it). */
const states = new WeakMap<Request, ResponseCacheState>();

/**
 * What the response cache did for a request, for its access log and (in development) its answer: "hit", "hit
 * before parsing" (a known GET URL, answered from onRequest), "kept", why the answer was not kept, or undefined
 * when it was not looked up (signed in, disabled).
 */
export function responseCacheOutcome(request: Request): string | undefined {
  const state = states.get(request);
  if (!state) return undefined;
  if (state.hit) return state.early ? "hit before parsing" : "hit";
  if (state.kept) return "kept";
  const reads = requestReads();
  if (!reads?.shareable) return "not shareable (not a query, or introspection)";
  return `not kept: ${reads.uncovered ?? "an error"}`;
}

/** No credentials of any kind: no Authorization header, no claims from a trusted gateway's authorizer. */
function signedOut(request: Request, server: ServerContext): boolean {
  return !request.headers.has("authorization") && !(config().auth.trustGateway && server.gatewayClaims);
}
