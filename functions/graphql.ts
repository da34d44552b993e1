// Shutter's GraphQL function. Module scope runs once per function instance (a Lambda cold start, a
// container start): configuration is validated and the schema and Yoga instance are built here, then
// reused by every warm invocation. Per-request state lives in the GraphQL context only.
import type { ServerContext } from "../src/http/context.ts";
import {
  type GatewayEvent,
  type GatewayResult,
  serverContextOf,
  streamifyResponse,
  streamResult,
  toRequest,
  toResult,
} from "../src/http/lambda.ts";
import { createShutterYoga, handleRequest } from "../src/http/yoga.ts";
import { loadSecrets } from "../src/platform/secrets.ts";
import { flushTelemetry, initTelemetry } from "../src/platform/telemetry.ts";

// Secrets kept in Secrets Manager or SSM (SHUTTER_SECRET_ID, SHUTTER_SSM_PATH) become settings before the
// configuration is read: once per instance, part of its init.
await loadSecrets();
// Traces and metrics when OTEL_EXPORTER_OTLP_ENDPOINT is set (the SDK is not even loaded otherwise).
await initTelemetry();
const yoga = createShutterYoga();
performance.mark("shutter:init:done");

/** Fetch API handler, for runtimes that speak `Request`/`Response` (Deno, Bun, workers, the dev server). */
export function fetch(request: Request, serverContext: ServerContext = {}): Promise<Response> {
  return handleRequest(yoga, request, serverContext);
}

/** AWS Lambda handler behind API Gateway: HTTP API (payload 2.0) and REST API (payload 1.0) proxy events. */
export async function handler(event: GatewayEvent): Promise<GatewayResult> {
  const request = toRequest(event);
  const response = await handleRequest(yoga, request, serverContextOf(event), event.requestContext.requestId);
  const result = await toResult(response, event, request);
  // The instance may be frozen as soon as this returns: spans still buffered would go with it.
  await flushTelemetry();
  return result;
}

/**
 * AWS Lambda handler with response streaming, for API Gateway REST APIs' streaming integration
 * (`response-streaming-invocations`, payload 1.0) and function URLs in RESPONSE_STREAM mode (payload 2.0): the parts
 * of a deferred query leave as each is ready, instead of the whole answer at the end, and subscriptions stream their
 * events until shortly before the invocation's deadline.
 */
export const streamingHandler = streamifyResponse(async (event, responseStream, context) => {
  const request = toRequest(event);
  const deadline = Date.now() + context.getRemainingTimeInMillis();
  const response = await handleRequest(yoga, request, serverContextOf(event, deadline), event.requestContext.requestId);
  await streamResult(response, responseStream);
  await flushTelemetry();
});
