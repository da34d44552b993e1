import { getOperationAST } from "graphql";
import type { Plugin } from "graphql-yoga";
import { ErrorCode } from "../../errors.ts";
import { logger } from "../../platform/logger.ts";
import { requestScope } from "../../platform/request-scope.ts";
import { onLambda, recordRequest } from "../../platform/telemetry.ts";
import { metricOperationName } from "../persisted-documents.ts";
import { responseCacheOutcome } from "./use-response-cache.ts";

/**
 * One access log line per request, with its request id (also sent as the `x-request-id` header, so a client can
 * find it), and the request's metrics: on Lambda the line itself is the metrics (CloudWatch Embedded Metric
 * Format), elsewhere OTLP when configured (platform/telemetry.ts). Runs after useErrorShape: the codes it counts
 * are the ones answered.
 */
export function useAccessLog(): Plugin {
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
    onResultProcess({ result }) {
      const scope = requestScope.getStore();
      if (!scope || Symbol.asyncIterator in result) return;
      for (const single of (Array.isArray(result) ? result : [result]) as { errors?: readonly unknown[] }[]) {
        for (const error of single.errors ?? []) {
          const code = (error as { extensions?: { code?: unknown } }).extensions?.code;
          scope.errorCodes ??= [];
          scope.errorCodes.push(typeof code === "string" ? code : ErrorCode.INTERNAL_SERVER_ERROR);
        }
      }
    },
    onResponse({ response, request }) {
      const scope = requestScope.getStore();
      if (!scope) return;
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
          replicaStatements: scope.replicaStatements || undefined,
          cacheRoundTrips: scope.cacheRoundTrips,
          cacheHits: scope.cacheHits,
          cacheMisses: scope.cacheMisses,
          responseCache: cacheOutcome?.startsWith("hit") || cacheOutcome === "kept" ? cacheOutcome : undefined,
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
