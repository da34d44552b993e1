// Traces and metrics with OpenTelemetry, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set. Off, nothing of the SDK
// is loaded and every helper below is a plain call of the function it wraps (a boolean test): no cost at all.
// On, each function instance sets the SDK up once (`initTelemetry`, module scope, part of its init): spans go out
// over OTLP/HTTP in batches, and the Lambda handlers flush them before they return (`flushTelemetry`) — a frozen
// instance sends nothing, so what is not flushed by then would be lost. Metrics: on Lambda, the request log line
// is itself a CloudWatch Embedded Metric Format record (http/plugins/use-access-log.ts: no agent, no extra
// line); elsewhere they are OTLP metrics (`recordRequest`).
import type { Attributes, Context, Counter, Histogram, Span } from "@opentelemetry/api";
import { config } from "./config.ts";

type Api = typeof import("@opentelemetry/api");

interface Instruments {
  requests: Counter;
  errors: Counter;
  duration: Histogram;
  statements: Histogram;
  cacheHits: Counter;
  cacheMisses: Counter;
  coldStarts: Counter;
}

/** The OpenTelemetry API, loaded with the SDK (even the API is not loaded while telemetry is off). */
let api: Api | undefined;
let enabled = false;
let flush: (() => Promise<void>) | undefined;
let shutdown: (() => Promise<void>) | undefined;
let instruments: Instruments | undefined;
/** This module's own tracer: its provider's, not whichever provider registered globally first in the process. */
let ownTracer: ReturnType<Api["trace"]["getTracer"]> | undefined;

/** Whether traces are being recorded in this process. */
export const tracing = (): boolean => enabled;

/** On Lambda (the runtime sets this): metrics go as Embedded Metric Format log lines. */
export const onLambda = (): boolean => Boolean(process.env.AWS_LAMBDA_FUNCTION_NAME);

/**
 * Sets up tracing (and OTLP metrics outside Lambda) when OTEL_EXPORTER_OTLP_ENDPOINT is set; once per process.
 * The SDK is imported here, only then: an instance without telemetry never loads it.
 */
export async function initTelemetry(): Promise<void> {
  const { otlpEndpoint, sampleRatio, serviceName, trustParent } = config().telemetry;
  if (!otlpEndpoint || enabled) return;
  const [
    otel,
    base,
    { OTLPTraceExporter },
    { resourceFromAttributes },
    core,
    { AsyncLocalStorageContextManager },
    xray,
  ] = await Promise.all([
    import("@opentelemetry/api"),
    import("@opentelemetry/sdk-trace"),
    import("@opentelemetry/exporter-trace-otlp-http"),
    import("@opentelemetry/resources"),
    import("@opentelemetry/core"),
    import("@opentelemetry/context-async-hooks"),
    import("@opentelemetry/propagator-aws-xray"),
  ]);
  const endpoint = otlpEndpoint.replace(/\/$/, "");
  const resource = resourceFromAttributes({
    "service.name": serviceName,
    ...(onLambda()
      ? { "cloud.provider": "aws", "faas.name": process.env.AWS_LAMBDA_FUNCTION_NAME }
      : { "service.instance.id": `${process.pid}` }),
  });
  const provider = new base.TracerProvider({
    resource,
    // Traces are kept at the configured ratio, also those a caller continues: its traceparent's sampled flag is
    // its wish, and any client could ask for every request to be traced (and exported, and paid for). Callers
    // that may decide (OTEL_TRACES_TRUST_PARENT: services of one's own behind the gateway) are followed. The ratio
    // goes by the trace id, so every service sampling by it keeps the same traces.
    sampler: new base.ParentBasedSampler({
      root: new base.TraceIdRatioBasedSampler(sampleRatio),
      ...(trustParent
        ? {}
        : {
            remoteParentSampled: new base.TraceIdRatioBasedSampler(sampleRatio),
            remoteParentNotSampled: new base.TraceIdRatioBasedSampler(sampleRatio),
          }),
    }),
    spanProcessors: [
      new base.BatchSpanProcessor({
        exporter: new OTLPTraceExporter({ url: `${endpoint}/v1/traces` }),
        scheduledDelayMillis: 1_000,
        maxQueueSize: 8_192,
      }),
    ],
  });
  otel.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  otel.trace.setGlobalTracerProvider(provider);
  ownTracer = provider.getTracer("shutter");
  // W3C traceparent from callers, X-Ray's header from API Gateway and the Lambda runtime.
  otel.propagation.setGlobalPropagator(
    new core.CompositePropagator({
      propagators: [new core.W3CTraceContextPropagator(), new xray.AWSXRayPropagator()],
    }),
  );
  flush = () => provider.forceFlush();
  const stops = [() => provider.shutdown()];
  if (!onLambda()) {
    const [{ MeterProvider, PeriodicExportingMetricReader }, { OTLPMetricExporter }] = await Promise.all([
      import("@opentelemetry/sdk-metrics"),
      import("@opentelemetry/exporter-metrics-otlp-http"),
    ]);
    const meters = new MeterProvider({
      resource,
      readers: [
        new PeriodicExportingMetricReader({
          exporter: new OTLPMetricExporter({ url: `${endpoint}/v1/metrics` }),
          exportIntervalMillis: config().telemetry.metricsIntervalMs,
        }),
      ],
    });
    const meter = meters.getMeter("shutter");
    instruments = {
      requests: meter.createCounter("shutter.requests", { description: "Requests served" }),
      errors: meter.createCounter("shutter.errors", { description: "GraphQL errors answered, by code" }),
      duration: meter.createHistogram("shutter.request.duration", { unit: "ms", description: "Request latency" }),
      statements: meter.createHistogram("shutter.sql.statements", { description: "SQL statements per request" }),
      cacheHits: meter.createCounter("shutter.cache.hits", { description: "Entity cache parts found" }),
      cacheMisses: meter.createCounter("shutter.cache.misses", { description: "Entity cache parts not found" }),
      coldStarts: meter.createCounter("shutter.cold_starts", { description: "Instances that served a request" }),
    };
    const flushTraces = flush;
    flush = async () => {
      await Promise.all([flushTraces(), meters.forceFlush()]);
    };
    stops.push(() => meters.shutdown());
  }
  shutdown = async () => {
    await Promise.allSettled(stops.map((stop) => stop()));
  };
  api = otel;
  enabled = true;
}

/** Sends what is buffered; a Lambda handler awaits this before it returns (the instance may freeze next). */
export async function flushTelemetry(): Promise<void> {
  await flush?.().catch(() => undefined);
}

export async function shutdownTelemetry(): Promise<void> {
  await shutdown?.();
}

const tracer = () => ownTracer ?? (api as Api).trace.getTracer("shutter");

/**
 * Runs `fn` in a span (a child of the active one), ended when it settles; errors are recorded on it. Off, it is
 * `fn()`.
 */
export function inSpan<T>(
  name: string,
  attributes: Attributes,
  fn: (span?: Span) => Promise<T>,
  kind: "internal" | "client" = "internal",
): Promise<T> {
  if (!api) return fn();
  const { SpanKind, SpanStatusCode } = api;
  return tracer().startActiveSpan(
    name,
    { kind: SpanKind[kind === "client" ? "CLIENT" : "INTERNAL"], attributes },
    async (span) => {
      try {
        return await fn(span);
      } catch (error) {
        span.recordException(error as Error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message });
        throw error;
      } finally {
        span.end();
      }
    },
  );
}

/** The same for synchronous work (GraphQL's parse and validate). */
export function inSpanSync<T>(name: string, attributes: Attributes, fn: () => T): T {
  if (!api) return fn();
  const { SpanStatusCode } = api;
  return tracer().startActiveSpan(name, { attributes }, (span) => {
    try {
      return fn();
    } catch (error) {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw error;
    } finally {
      span.end();
    }
  });
}

/**
 * The request's span, a child of the caller's trace (`traceparent`, or X-Ray's `X-Amzn-Trace-Id`; on Lambda also
 * the runtime's `_X_AMZN_TRACE_ID`), with the instance's cold start as a span of its own on its first request:
 * from the process's start to the end of its init (the `shutter:init:done` mark).
 */
export function inRequestSpan<T>(
  request: Request,
  scope: { requestId: string; coldStart?: boolean },
  fn: (span?: Span) => Promise<T>,
): Promise<T> {
  if (!api) return fn();
  const { context, propagation, SpanKind } = api;
  const carrier: Record<string, string> = {};
  request.headers.forEach((value, name) => {
    carrier[name] = value;
  });
  if (!carrier["x-amzn-trace-id"] && process.env._X_AMZN_TRACE_ID) {
    carrier["x-amzn-trace-id"] = process.env._X_AMZN_TRACE_ID;
  }
  const parent: Context = propagation.extract(context.active(), carrier);
  const url = new URL(request.url);
  const coldStart = Boolean(scope.coldStart);
  return context.with(parent, () =>
    tracer().startActiveSpan(
      `${request.method} ${url.pathname}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          "http.request.method": request.method,
          "url.path": url.pathname,
          "shutter.request_id": scope.requestId,
          "faas.coldstart": coldStart,
        },
      },
      async (span) => {
        if (coldStart) {
          // Wall-clock times: the process started performance.now() ms before now.
          const origin = performance.timeOrigin;
          tracer()
            .startSpan("cold start", { startTime: origin, attributes: { "faas.coldstart": true } })
            .end(origin + initEnd());
        }
        try {
          return await fn(span);
        } finally {
          span.end();
        }
      },
    ),
  );
}

/** When the instance's init ended (functions/graphql.ts marks it), in performance.now() time. */
const initEnd = () => performance.getEntriesByName("shutter:init:done").at(-1)?.startTime ?? performance.now();

/** The active span's trace id (for log lines), when tracing. */
export function activeTraceId(): string | undefined {
  if (!api) return undefined;
  const spanContext = api.trace.getActiveSpan()?.spanContext();
  return spanContext && spanContext.traceId !== "00000000000000000000000000000000" ? spanContext.traceId : undefined;
}

/** OTLP metrics of one request (outside Lambda, when telemetry is on). */
export function recordRequest(request: {
  operation: string;
  status: number;
  durationMs: number;
  sqlStatements: number;
  cacheHits: number;
  cacheMisses: number;
  errorCodes: string[];
  coldStart: boolean;
}): void {
  if (!instruments) return;
  if (request.coldStart) instruments.coldStarts.add(1);
  const operation = { "graphql.operation.name": request.operation };
  instruments.requests.add(1, { ...operation, "http.response.status_code": request.status });
  instruments.duration.record(request.durationMs, operation);
  instruments.statements.record(request.sqlStatements, operation);
  instruments.cacheHits.add(request.cacheHits, operation);
  instruments.cacheMisses.add(request.cacheMisses, operation);
  for (const code of request.errorCodes) instruments.errors.add(1, { ...operation, "error.code": code });
}
