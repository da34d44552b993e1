import { randomUUID } from "node:crypto";
import { useDisableIntrospection } from "@graphql-yoga/plugin-disable-introspection";
import type { Span } from "@opentelemetry/api";
import { createYoga, type YogaServerInstance } from "graphql-yoga";
import { schema } from "../../schema/index.ts";
import { config } from "../platform/config.ts";
import { logger } from "../platform/logger.ts";
import { createRequestScope, type RequestScope, requestScope } from "../platform/request-scope.ts";
import { inRequestSpan } from "../platform/telemetry.ts";
import { type Context, createContext, type ServerContext } from "./context.ts";
import { INTERNAL_ERROR_MESSAGE, maskError } from "./mask-error.ts";
import { useAccessLog } from "./plugins/use-access-log.ts";
import { useArmor } from "./plugins/use-armor.ts";
import { useBodyLimit } from "./plugins/use-body-limit.ts";
import { useBudgetReport } from "./plugins/use-budget-report.ts";
import { useDegradedFlag } from "./plugins/use-degraded-flag.ts";
import { useDevReport } from "./plugins/use-dev-report.ts";
import { useErrorShape } from "./plugins/use-error-shape.ts";
import { useGate } from "./plugins/use-gate.ts";
import { useHttpCaching } from "./plugins/use-http-caching.ts";
import { useIdempotency } from "./plugins/use-idempotency.ts";
import { useIncrementalDelivery } from "./plugins/use-incremental-delivery.ts";
import { useJsonPosts } from "./plugins/use-json-posts.ts";
import { useParamsShape } from "./plugins/use-params-shape.ts";
import { usePersistedDocuments } from "./plugins/use-persisted-documents.ts";
import { useResponseCache } from "./plugins/use-response-cache.ts";
import { useRoutes } from "./plugins/use-routes.ts";
import { useStreamGuard } from "./plugins/use-stream-guard.ts";
import { useSubscriptionTransport } from "./plugins/use-subscription-transport.ts";
import { useTracing } from "./plugins/use-tracing.ts";

// The HTTP edge: Yoga and its plugins, one per file (./plugins), each doing one job. This file only wires them.

export type ShutterYoga = YogaServerInstance<ServerContext, Context>;

/** Request headers browser clients may send (CORS lets them through a preflight): Apollo's and Yoga's. */
export const CLIENT_HEADERS = [
  "apollo-require-preflight",
  "x-apollo-operation-name",
  "apollographql-client-name",
  "apollographql-client-version",
  "x-graphql-yoga-csrf",
];

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
          allowedHeaders: ["content-type", "authorization", "x-request-id", "idempotency-key", ...CLIENT_HEADERS],
          exposedHeaders: [
            "x-request-id",
            "retry-after",
            "etag",
            "idempotent-replayed",
            "ratelimit",
            "ratelimit-policy",
          ],
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
    // In order: what every request passes before GraphQL, then what every operation passes (the limits,
    // the gate), then what runs with it. Where one plugin depends on another, it says so here:
    // - useParamsShape comes before every plugin that reads the request's parameters (onParams): they may trust
    //   their types;
    // - useIncrementalDelivery comes before the plugins that shape results (onResultProcess): where an answer made
    //   of parts is sent whole, they see the merged result;
    // - useHttpCaching, then useErrorShape, then useAccessLog: a response is replaced (304, a refusal's body)
    //   before the access log stamps its request id on it and logs its status, and the error codes counted are
    //   the ones answered;
    // - useResponseCache reads what useGate charged and marks its hits for useHttpCaching; useBudgetReport
    //   reports what either charged; useDevReport and useAccessLog read what the response cache did.
    plugins: [
      useBodyLimit(),
      useRoutes(),
      useHttpCaching(),
      useParamsShape(),
      useIncrementalDelivery(),
      useErrorShape(),
      useDevReport(),
      useAccessLog(),
      useDegradedFlag(),
      useTracing(),
      usePersistedDocuments(),
      useArmor(),
      useDisableIntrospection({ isDisabled: () => !config().introspection }),
      useJsonPosts(),
      useResponseCache(),
      useGate(),
      // Reports what the gate (or the response cache) charged.
      useBudgetReport(),
      useIdempotency(),
      useSubscriptionTransport(),
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
 * as docs/observability.md promises), else the platform's (API Gateway's), else a new one.
 */
export function requestIdFor(request: Request, platformRequestId?: string): string {
  const given = [request.headers.get("x-request-id"), platformRequestId].find((id) => id && REQUEST_ID.test(id));
  return given ?? randomUUID();
}

/** Whether this instance has served a request: its first one carries the cold start (traces, metrics). */
let served = false;

/** Serves one request within its own scope (request id, SQL statement count) on the given Yoga instance. */
export function handleRequest(
  yoga: ShutterYoga,
  request: Request,
  serverContext: ServerContext = {},
  platformRequestId?: string,
): Promise<Response> {
  const scope: RequestScope = createRequestScope(requestIdFor(request, platformRequestId));
  scope.coldStart = !served;
  served = true;
  return requestScope.run(scope, () => inRequestSpan(request, scope, (span) => serve(span)));
  async function serve(span?: Span): Promise<Response> {
    let response: Response;
    try {
      response = await yoga.fetch(request, serverContext);
    } catch (error) {
      // Yoga answers what goes wrong inside GraphQL; a throw before it (a route, a plugin's onRequest) would
      // reach the server adapter, which answers with the stack. It gets the generic answer instead — unless the
      // client closed the connection first: then nobody is waiting for an answer, and nothing went wrong here.
      if (request.signal.aborted || (error as Error | undefined)?.name === "AbortError") {
        logger().info("request abandoned by the client");
      } else logger().error({ err: error }, "unexpected error");
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
    span?.setAttributes({
      "http.response.status_code": response.status,
      ...(scope.operationName ? { "graphql.operation.name": scope.operationName.slice(0, 100) } : {}),
    });
    return response;
  }
}
