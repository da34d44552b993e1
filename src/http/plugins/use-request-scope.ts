import { GraphQLError, getOperationAST } from "graphql";
import type { Plugin } from "graphql-yoga";
import { ErrorCode, RequestErrorCode } from "../../errors.ts";
import { undeclaredChanges } from "../../platform/changes.ts";
import { config } from "../../platform/config.ts";
import { logger } from "../../platform/logger.ts";
import { requestScope } from "../../platform/request-scope.ts";
import { onLambda, recordRequest } from "../../platform/telemetry.ts";
import { metricOperationName } from "../persisted-documents.ts";
import { responseCacheOutcome } from "./use-response-cache.ts";

/**
 * Stamps every error with the request id (also sent as the `x-request-id` header and present in every log line
 * of the request), reports SQL statements per operation in dev, and writes one access log line per request.
 * Outside production it also reports writes to cached entities that no service declared (see
 * platform/changes.ts): `extensions.undeclaredChanges`, and an error in the log.
 */
export function useRequestScope(): Plugin {
  return {
    onParams({ params }) {
      const scope = requestScope.getStore();
      if (scope) scope.operationName = params.operationName ?? undefined;
    },
    onExecute({ args }) {
      // A document with one named operation needs no operationName: its name is the one it runs.
      const scope = requestScope.getStore();
      if (scope && !scope.operationName) scope.operationName = getOperationAST(args.document)?.name?.value;
    },
    onResultProcess({ request, result, setResult }) {
      const scope = requestScope.getStore();
      if (!scope || isAsyncIterable(result)) return;
      const cacheOutcome = responseCacheOutcome(request);
      const undeclared = config().production ? [] : undeclaredChanges(scope);
      if (undeclared.length) {
        logger().error({ tables: undeclared }, "a write changed cached entities without declaring them");
      }
      // Generic over the result type: Yoga's, or graphql-js's (which some packages augment).
      // In production a result without errors leaves as it is (no copy: a cached answer is never parsed).
      // The codes answered, for the request's metrics.
      for (const single of Array.isArray(result) ? result : [result as SingleResult]) {
        for (const error of single.errors ?? []) {
          const code = (error.extensions as { code?: unknown } | undefined)?.code;
          scope.errorCodes ??= [];
          scope.errorCodes.push(typeof code === "string" ? code : ErrorCode.INTERNAL_SERVER_ERROR);
        }
      }
      const stamp = <R extends SingleResult>(single: R): R =>
        config().production && !single.errors?.length
          ? single
          : {
              ...single,
              errors: single.errors?.map((error) => normalizeError(error, scope.requestId, !("data" in single))),
              extensions: config().production
                ? single.extensions
                : {
                    ...single.extensions,
                    requestId: scope.requestId,
                    sqlStatements: scope.sqlStatements,
                    cache: { roundTrips: scope.cacheRoundTrips, hits: scope.cacheHits, misses: scope.cacheMisses },
                    ...(cacheOutcome ? { responseCache: cacheOutcome } : {}),
                    ...(undeclared.length ? { undeclaredChanges: undeclared } : {}),
                  },
            };
      setResult(Array.isArray(result) ? result.map(stamp) : stamp(result as SingleResult));
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
      const cacheOutcome = responseCacheOutcome(request);
      const durationMs = Math.round(performance.now() - scope.startedAt);
      const errorCodes = scope.errorCodes ?? [];
      logger().info(
        {
          method: request.method,
          path: new URL(request.url).pathname,
          status: response.status,
          // Whatever the client sent, at most 100 characters of it (a name longer than that names nothing real).
          operationName: scope.operationName?.slice(0, 100),
          sqlStatements: scope.sqlStatements,
          cacheRoundTrips: scope.cacheRoundTrips,
          cacheHits: scope.cacheHits,
          cacheMisses: scope.cacheMisses,
          responseCache: cacheOutcome === "hit" || cacheOutcome === "kept" ? cacheOutcome : undefined,
          durationMs,
          ...(errorCodes.length ? { errorCodes } : {}),
          // On Lambda this line is also the request's metrics (CloudWatch Embedded Metric Format).
          ...(onLambda()
            ? embeddedMetrics(metricOperationName(scope.operationName), errorCodes, Boolean(scope.coldStart))
            : {}),
        },
        "request",
      );
      recordRequest({
        operation: metricOperationName(scope.operationName),
        status: response.status,
        durationMs,
        sqlStatements: scope.sqlStatements,
        cacheHits: scope.cacheHits,
        cacheMisses: scope.cacheMisses,
        errorCodes,
        coldStart: Boolean(scope.coldStart),
      });
    },
  };
}

/**
 * The request's metrics as CloudWatch Embedded Metric Format fields of its log line: CloudWatch turns the line
 * into metrics, no agent or API call needed. Per operation: requests, latency (the line's `durationMs`), SQL
 * statements, entity cache hits and misses (their ratio is a metric-math expression), errors, cold starts; and
 * errors by code. See docs/observability.md.
 */
function embeddedMetrics(operation: string, errorCodes: string[], coldStart: boolean) {
  const perOperation = [
    { Name: "requests", Unit: "Count" },
    { Name: "durationMs", Unit: "Milliseconds" },
    { Name: "sqlStatements", Unit: "Count" },
    { Name: "cacheHits", Unit: "Count" },
    { Name: "cacheMisses", Unit: "Count" },
    { Name: "errors", Unit: "Count" },
    { Name: "coldStarts", Unit: "Count" },
  ];
  return {
    _aws: {
      Timestamp: Date.now(),
      CloudWatchMetrics: [
        { Namespace: "Shutter", Dimensions: [["operation"], []], Metrics: perOperation },
        ...(errorCodes.length
          ? [{ Namespace: "Shutter", Dimensions: [["errorCode"]], Metrics: [{ Name: "errors", Unit: "Count" }] }]
          : []),
      ],
    },
    operation,
    requests: 1,
    errors: errorCodes.length,
    coldStarts: coldStart ? 1 : 0,
    ...(errorCodes.length ? { errorCode: errorCodes[0] } : {}),
  };
}

/** One execution result, as much of it as the stamp reads. */
type SingleResult = { errors?: readonly GraphQLError[]; extensions?: Record<string, unknown> };

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
