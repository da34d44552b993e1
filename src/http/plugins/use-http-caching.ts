import { createHash } from "node:crypto";
import { type DocumentNode, type GraphQLSchema, getOperationAST, TypeInfo, visit, visitWithTypeInfo } from "graphql";
import { isAsyncIterable, type Plugin } from "graphql-yoga";
import { config } from "../../platform/config.ts";
import type { Context } from "../context.ts";

/**
 * Whether an operation selects anything whose answer depends on who asks: fields and types marked
 * `extensions: { personal: true }` in the schema (the viewer, the feed, `viewerHasLiked`, `node`, ...).
 */
export function selectsPersonalData(schema: GraphQLSchema, document: DocumentNode): boolean {
  // Parsed documents are cached by Yoga (one object per document text): each is visited once.
  let personal = personalDocuments.get(document);
  if (personal === undefined) {
    personal = visitForPersonalData(schema, document);
    personalDocuments.set(document, personal);
  }
  return personal;
}

const personalDocuments = new WeakMap<DocumentNode, boolean>();

function visitForPersonalData(schema: GraphQLSchema, document: DocumentNode): boolean {
  const typeInfo = new TypeInfo(schema);
  let personal = false;
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      Field() {
        if (typeInfo.getFieldDef()?.extensions?.personal || typeInfo.getParentType()?.extensions?.personal) {
          personal = true;
        }
      },
    }),
  );
  return personal;
}

/** How each answer may be cached, by request: decided here, or by the response cache for an answer it kept. */
const policies = new WeakMap<Request, "public" | "private">();
/** The ETag of an answer known before its body is written (an answer from the response cache), by request. */
const knownEtags = new WeakMap<Request, string>();

/** Sets how a request's answer may be cached ("public": by anyone; "private": by the viewer), and its ETag if known. */
export function setCachePolicy(request: Request, policy: "public" | "private", etag?: string): void {
  policies.set(request, policy);
  if (etag) knownEtags.set(request, etag);
}

/** How a request's answer may be cached, once decided. */
export const cachePolicyOf = (request: Request) => policies.get(request);

/** A strong ETag over an answer's data (the JSON of `data`): the extensions differ on every response. */
export const etagOf = (dataJson: string) =>
  `"${createHash("sha256").update(dataJson).digest("base64url").slice(0, 32)}"`;

/**
 * HTTP caching of GET responses (persisted queries over GET can be cached by CDNs and clients):
 * - `public, max-age, stale-while-revalidate` only when nothing in the answer depends on a viewer: signed out,
 *   a query, and no personal field selected (explore, a public profile, a post without viewer fields);
 * - `private, no-cache` for everything else that succeeded (the app's own cache may keep it and revalidate);
 * - `no-store` for errors of any kind, and for every POST;
 * - a strong `ETag` over the data, answered with 304 Not Modified when `If-None-Match` names it (never for `*`);
 * - `Vary: Accept, Authorization`: the media type and the viewer change the response.
 */
export function useHttpCaching(): Plugin {
  return {
    onExecute({ args }) {
      const context = args.contextValue as unknown as Context;
      const operation = getOperationAST(args.document, args.operationName);
      const isPublic =
        operation?.operation === "query" &&
        !context.viewer &&
        !context.request.headers.has("authorization") &&
        !selectsPersonalData(args.schema, args.document);
      policies.set(context.request, isPublic ? "public" : "private");
      if (context.request.method !== "GET") return;
      return {
        // The ETag from the result as executed: the response's body need not be read back and parsed for it.
        onExecuteDone({ result }) {
          if (isAsyncIterable(result) || result.errors?.length) return;
          if (!knownEtags.has(context.request)) knownEtags.set(context.request, etagOf(JSON.stringify(result.data)));
        },
      };
    },
    async onResponse({ request, response, setResponse, fetchAPI }) {
      if (request.method !== "GET") {
        if (!response.headers.has("cache-control")) response.headers.set("cache-control", "no-store");
        return;
      }
      response.headers.set("vary", "Accept, Authorization");
      const policy = policies.get(request);
      if (response.status !== 200 || !(response.headers.get("content-type") ?? "").includes("json") || !policy) {
        response.headers.set("cache-control", "no-store");
        return;
      }
      const { maxAgeSeconds, staleWhileRevalidateSeconds } = config().httpCache;
      const cacheControl =
        policy === "public"
          ? `public, max-age=${maxAgeSeconds}, stale-while-revalidate=${staleWhileRevalidateSeconds}`
          : "private, no-cache";
      const conditional = (etag: string, headers: Headers): Response | undefined => {
        headers.set("cache-control", cacheControl);
        headers.set("etag", etag);
        // Only the answer's own tag: `*` ("any representation") would tell a client that never saw this answer —
        // or a cache in between — that it already holds it.
        const ifNoneMatch = request.headers.get("if-none-match") ?? "";
        if (!ifNoneMatch.split(",").some((tag) => tag.trim().replace(/^W\//, "") === etag)) return;
        headers.delete("content-type");
        headers.delete("content-length");
        return new fetchAPI.Response(null, { status: 304, headers });
      };
      // An answer from the response cache, or one executed here without errors, comes with its ETag.
      const known = knownEtags.get(request);
      if (known) {
        const notModified = conditional(known, response.headers);
        if (notModified) setResponse(notModified);
        return;
      }
      const body = await response.text();
      const { data, errors } = JSON.parse(body) as { data?: unknown; errors?: unknown[] };
      const headers = new fetchAPI.Headers(response.headers);
      if (errors?.length) {
        headers.set("cache-control", "no-store");
        setResponse(new fetchAPI.Response(body, { status: 200, headers }));
        return;
      }
      setResponse(
        conditional(etagOf(JSON.stringify(data)), headers) ?? new fetchAPI.Response(body, { status: 200, headers }),
      );
    },
  };
}
