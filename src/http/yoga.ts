import { randomUUID } from "node:crypto";
import { PothosValidationError } from "@pothos/core";
import { type ExecutionResult, GraphQLError } from "graphql";
import { createYoga, type Plugin, type YogaServerInstance, maskError as yogaMaskError } from "graphql-yoga";
import type { Context } from "../../schema/builder.ts";
import { printedSchema, schema } from "../../schema/index.ts";
import { clientAddress, createContext, type ServerContext } from "../context.ts";
import { jwks } from "../domain/auth.ts";
import { ErrorCode, RequestErrorCode } from "../errors.ts";
import { announce } from "../events/stream.ts";
import { config } from "../platform/config.ts";
import { createRequestScope, logger, type RequestScope, requestScope } from "../platform/logger.ts";
import { useHttpCaching } from "./plugins/use-http-caching.ts";
import { usePersistedDocuments } from "./plugins/use-persisted-documents.ts";
import { useStreamGuard } from "./plugins/use-stream-guard.ts";
import { CLIENT_HEADERS, securityPlugins, useBodyLimit } from "./security.ts";
import { handleOpsWebhook } from "./webhook.ts";

export type ShutterYoga = YogaServerInstance<ServerContext, Context>;

export const INTERNAL_ERROR_MESSAGE =
  "Something went wrong on our side. Try again; if it keeps happening, tell us the request id.";

/**
 * Hides unexpected errors (a bug, a database outage) behind a generic message and logs the real one with the
 * request id; typed errors (ShutterError and other GraphQL errors) pass through unchanged.
 */
export function maskError(error: unknown, message: string): Error {
  const original = error instanceof GraphQLError && error.originalError ? error.originalError : error;
  // Pothos reports malformed client input (a global id that isn't one) with this class: the client's fault.
  if (original instanceof PothosValidationError) {
    return new GraphQLError(original.message, {
      nodes: error instanceof GraphQLError ? error.nodes : undefined,
      path: error instanceof GraphQLError ? error.path : undefined,
      extensions: { code: ErrorCode.BAD_USER_INPUT },
    });
  }
  const masked = yogaMaskError(error, message, false);
  if (masked !== error) {
    logger().error({ err: original, path: error instanceof GraphQLError ? error.path : undefined }, "unexpected error");
  }
  return masked;
}

/**
 * Stamps every error with the request id (also sent as the `x-request-id` header and present in every log line
 * of the request), reports SQL statements per operation in dev, and writes one access log line per request.
 */
function useRequestScope(): Plugin {
  return {
    onParams({ params }) {
      const scope = requestScope.getStore();
      if (scope) scope.operationName = params.operationName ?? undefined;
    },
    onResultProcess({ result, setResult }) {
      const scope = requestScope.getStore();
      if (!scope || isAsyncIterable(result)) return;
      const stamp = (single: ExecutionResult) => ({
        ...single,
        errors: single.errors?.map((error) => normalizeError(error, scope.requestId, !("data" in single))),
        extensions: config().production
          ? single.extensions
          : {
              ...single.extensions,
              requestId: scope.requestId,
              sqlStatements: scope.sqlStatements,
              cache: { roundTrips: scope.cacheRoundTrips, hits: scope.cacheHits, misses: scope.cacheMisses },
            },
      });
      setResult(Array.isArray(result) ? result.map(stamp) : stamp(result as ExecutionResult));
    },
    onResponse({ response, request, setResponse, fetchAPI }) {
      const scope = requestScope.getStore();
      if (!scope) return;
      // Yoga answers some refusals (415) with an empty body: give every error response a GraphQL error.
      if (response.status >= 400 && !response.headers.get("content-type")) {
        const code = STATUS_CODES[response.status] ?? RequestErrorCode.BAD_REQUEST;
        const message =
          response.status === 415
            ? "Send the operation as application/json (or application/graphql-response+json), or use GET."
            : "The request was refused.";
        response = new fetchAPI.Response(
          JSON.stringify({ errors: [{ message, extensions: { code, requestId: scope.requestId } }] }),
          {
            status: response.status,
            headers: { ...Object.fromEntries(response.headers), "content-type": "application/json" },
          },
        );
        setResponse(response);
      }
      response.headers.set("x-request-id", scope.requestId);
      logger().info(
        {
          method: request.method,
          path: new URL(request.url).pathname,
          status: response.status,
          operationName: scope.operationName,
          sqlStatements: scope.sqlStatements,
          cacheRoundTrips: scope.cacheRoundTrips,
          cacheHits: scope.cacheHits,
          cacheMisses: scope.cacheMisses,
          durationMs: Math.round(performance.now() - scope.startedAt),
        },
        "request",
      );
    },
  };
}

const isAsyncIterable = (value: unknown): value is AsyncIterable<unknown> =>
  typeof value === "object" && value !== null && Symbol.asyncIterator in value;

/** Codes of refusals that come with an HTTP status but no code of their own. */
const STATUS_CODES: Record<number, string> = {
  400: RequestErrorCode.BAD_REQUEST,
  401: ErrorCode.UNAUTHENTICATED,
  403: ErrorCode.FORBIDDEN,
  405: RequestErrorCode.METHOD_NOT_ALLOWED,
  413: RequestErrorCode.PAYLOAD_TOO_LARGE,
  415: RequestErrorCode.UNSUPPORTED_MEDIA_TYPE,
  429: ErrorCode.RATE_LIMITED,
};

/**
 * Every error leaves with a stable `extensions.code` and the request id, and without internals: Yoga attaches
 * the underlying exception as `originalError` to some HTTP-level errors (a JSON parse error quotes the body).
 */
function normalizeError(error: GraphQLError, requestId: string, beforeExecution: boolean): GraphQLError {
  if (!(error instanceof GraphQLError)) return error;
  const { originalError: _internal, ...extensions } = error.extensions as Record<string, unknown>;
  const { message } = error;
  const status = (extensions.http as { status?: number } | undefined)?.status;
  // A refusal before execution is a request error (HTTP 400 with application/graphql-response+json), also
  // when it comes from a validation rule that set no status (GraphQL Armor's).
  if (beforeExecution && !status) extensions.http = { spec: true, status: 400 };
  // These statuses say precisely what was wrong; Yoga labels them all BAD_REQUEST.
  if ((status === 405 || status === 413 || status === 415) && extensions.code === RequestErrorCode.BAD_REQUEST) {
    extensions.code = STATUS_CODES[status];
  }
  // A malformed HTTP request (bad JSON, wrong parameter types: no place in a document to point at) is a 400
  // whatever media type was asked for, as the GraphQL-over-HTTP audit expects.
  const http = extensions.http as { spec?: boolean; status?: number } | undefined;
  if (http?.spec && extensions.code === RequestErrorCode.BAD_REQUEST && !error.locations?.length) {
    extensions.http = { ...http, spec: false };
  }
  if (!extensions.code) {
    // Without a status these are Armor's limits (depth, aliases, tokens, directives), found while validating.
    extensions.code = (status && STATUS_CODES[status]) ?? RequestErrorCode.GRAPHQL_VALIDATION_FAILED;
  }
  return new GraphQLError(message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    extensions: { ...extensions, requestId },
  });
}

/**
 * A Lambda invocation answers once: a subscription's stream would hold it open until it times out (29 s behind
 * API Gateway) and then fail. On Lambda, subscriptions are refused at once with a code that says why.
 */
function useNoSubscriptionsOnLambda(): Plugin {
  return {
    onSubscribe({ args, setResultAndStopExecution }) {
      if (!(args.contextValue as ServerContext).event) return;
      setResultAndStopExecution({
        errors: [
          new GraphQLError(
            "Subscriptions stream over Server-Sent Events, which this deployment (AWS Lambda) cannot hold open: poll `viewer { unreadNotificationCount }` instead, or subscribe through the container deployment.",
            { extensions: { code: RequestErrorCode.SUBSCRIPTIONS_UNAVAILABLE, http: { status: 400 } } },
          ),
        ],
      });
    },
  };
}

const isUrl = (value: string) => /^https?:\/\//.test(value);

/** Routes served next to GraphQL: the operations webhook (POST /webhooks/ops/<source>), the JWKS (and OpenID
 * discovery) for API gateway JWT authorizers and, outside production, the SDL.
 * (Yoga itself answers `GET /health` with an empty 200.) */
function useRoutes(): Plugin {
  return {
    async onRequest({ request, url, endResponse, fetchAPI, serverContext }) {
      const webhook = /\/webhooks\/ops\/([^/]+)$/.exec(url.pathname);
      if (webhook && request.method === "POST") {
        const scope = requestScope.getStore();
        const address = clientAddress(request, serverContext as ServerContext);
        endResponse(await handleOpsWebhook(request, webhook[1] as string, address, scope?.requestId ?? ""));
        return;
      }
      if (request.method !== "GET") return;
      const json = (body: unknown, headers: Record<string, string> = {}) =>
        new fetchAPI.Response(JSON.stringify(body), { headers: { "content-type": "application/json", ...headers } });
      if (url.pathname.endsWith("/.well-known/jwks.json")) {
        endResponse(json(await jwks(), { "cache-control": "public, max-age=300" }));
      } else if (url.pathname.endsWith("/.well-known/openid-configuration") && isUrl(config().auth.issuer)) {
        // What an API gateway's JWT authorizer reads to find the keys of an issuer given as a URL (JWT_ISSUER).
        const { issuer } = config().auth;
        endResponse(
          json(
            {
              issuer,
              jwks_uri: `${issuer.replace(/\/$/, "")}/.well-known/jwks.json`,
              id_token_signing_alg_values_supported: ["ES256"],
            },
            { "cache-control": "public, max-age=300" },
          ),
        );
      } else if (url.pathname.endsWith("/schema.graphql") && !config().production) {
        endResponse(
          new fetchAPI.Response(printedSchema(), { headers: { "content-type": "text/plain; charset=utf-8" } }),
        );
      }
    },
  };
}

/** Shutter's Yoga instance. Built once per process (module scope of the function) and reused. */
export function createShutterYoga(): ShutterYoga {
  const { graphiql, corsOrigins } = config();
  return createYoga({
    schema,
    context: createContext,
    // /graphql/public is the same endpoint under a second route, for deployments that put a JWT authorizer on
    // /graphql: anonymous screens (sign-up, log-in, explore) go there, past no authorizer (see infra/).
    graphqlEndpoint: "/graphql{/public}?",
    // Trusted documents are requested by id (GraphQL "trusted documents" convention), over POST and GET.
    extraParamNames: ["documentId"],
    landingPage: false,
    // Browsers may call from the configured origins only; apps and servers are not affected by CORS.
    cors: corsOrigins.length
      ? {
          origin: corsOrigins.includes("*") ? "*" : corsOrigins,
          methods: ["GET", "POST", "OPTIONS"],
          allowedHeaders: ["content-type", "authorization", "x-request-id", ...CLIENT_HEADERS],
          exposedHeaders: ["x-request-id", "retry-after", "etag"],
          credentials: false,
          maxAge: 600,
        }
      : false,
    maskedErrors: { maskError, errorMessage: INTERNAL_ERROR_MESSAGE },
    graphiql: graphiql ? { title: "Shutter", defaultQuery: GRAPHIQL_DEFAULT_QUERY } : false,
    // GraphiQL's assets are served from the package, never a CDN; loaded only when someone opens it.
    renderGraphiQL: async (options) => (await import("@graphql-yoga/render-graphiql")).renderGraphiQL(options),
    logging: {
      debug: (...args) => logger().debug(args.map(String).join(" ")),
      info: (...args) => logger().info(args.map(String).join(" ")),
      warn: (...args) => logger().warn(args.map(String).join(" ")),
      // Yoga reports each unexpected error here too; maskError already logged it, with the request id and
      // the field's path, so this copy is only for debugging.
      error: (...args) => logger().debug(args.map(String).join(" ")),
    },
    plugins: [
      useBodyLimit(),
      useRoutes(),
      useHttpCaching(),
      useRequestScope(),
      usePersistedDocuments(),
      ...securityPlugins(),
      useNoSubscriptionsOnLambda(),
      useStreamGuard(),
    ],
  });
}

const GRAPHIQL_DEFAULT_QUERY = `# Welcome to Shutter. Sign in with a seeded account (see the README), then send
# the access token as an "Authorization: Bearer <token>" header to see your feed.

query Explore {
  explore(first: 5) {
    edges {
      node {
        id
        caption
        likeCount
        author { handle displayName }
        photos { url width height }
      }
    }
  }
}
`;

// HTTP API request ids are base64 ("JKJaXmPLvHcESHA="), REST API ones UUIDs.
const REQUEST_ID = /^[\w.+/=-]{1,128}$/;

/**
 * The id this request is known by: the caller's `x-request-id` (so a client can find its request in our logs,
 * as the README promises), else the platform's (API Gateway's), else a new one.
 */
export function requestIdFor(request: Request, platformRequestId?: string): string {
  const given = [request.headers.get("x-request-id"), platformRequestId].find((id) => id && REQUEST_ID.test(id));
  return given ?? randomUUID();
}

/** Serves one request within its own scope (request id, SQL statement count) on the given Yoga instance. */
export function handleRequest(
  yoga: ShutterYoga,
  request: Request,
  serverContext: ServerContext = {},
  platformRequestId?: string,
): Promise<Response> {
  const scope: RequestScope = createRequestScope(requestIdFor(request, platformRequestId));
  return requestScope.run(scope, async () => {
    let response: Response;
    try {
      response = await yoga.fetch(request, serverContext);
    } catch (error) {
      // Yoga answers what goes wrong inside GraphQL; a throw before it (a route, a plugin's onRequest) would
      // reach the server adapter, which answers with the stack. It gets the generic answer instead.
      logger().error({ err: error }, "unexpected error");
      response = Response.json(
        {
          errors: [
            {
              message: INTERNAL_ERROR_MESSAGE,
              extensions: { code: "INTERNAL_SERVER_ERROR", requestId: scope.requestId },
            },
          ],
        },
        { status: 500, headers: { "x-request-id": scope.requestId, "cache-control": "no-store" } },
      );
    }
    // Events the operation committed are announced to the events runner before the function may freeze.
    await announce(scope.events);
    return response;
  });
}
