import type { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { gzipSync } from "node:zlib";
import type {
  APIGatewayProxyEvent,
  APIGatewayProxyEventV2,
  APIGatewayProxyResult,
  APIGatewayProxyStructuredResultV2,
} from "aws-lambda";
import { logger } from "../platform/logger.ts";
import type { ServerContext } from "./context.ts";

export type GatewayEvent = APIGatewayProxyEvent | APIGatewayProxyEventV2;
export type GatewayResult = APIGatewayProxyResult | APIGatewayProxyStructuredResultV2;

const isV2 = (event: GatewayEvent): event is APIGatewayProxyEventV2 =>
  (event as APIGatewayProxyEventV2).version === "2.0";

/**
 * Turns an API Gateway proxy event (HTTP API payload 2.0, or REST API / payload 1.0) into a Fetch `Request`:
 * base64 bodies decoded, cookies and multi-value headers and query strings kept, the stage prefix removed
 * from the path so routes match whatever the stage is called.
 */
export function toRequest(event: GatewayEvent): Request {
  const headers = new Headers();
  const query = new URLSearchParams();
  let method: string;
  let path: string;
  if (isV2(event)) {
    method = event.requestContext.http.method;
    const stage = event.requestContext.stage;
    path =
      stage && stage !== "$default" && event.rawPath.startsWith(`/${stage}/`)
        ? event.rawPath.slice(stage.length + 1)
        : event.rawPath;
    for (const [name, value] of Object.entries(event.headers ?? {})) if (value !== undefined) headers.set(name, value);
    if (event.cookies?.length) headers.set("cookie", event.cookies.join("; "));
    for (const [name, value] of new URLSearchParams(event.rawQueryString ?? "")) query.append(name, value);
  } else {
    method = event.httpMethod;
    path = event.path;
    if (event.multiValueHeaders && Object.keys(event.multiValueHeaders).length) {
      for (const [name, values] of Object.entries(event.multiValueHeaders)) {
        for (const value of values ?? []) headers.append(name, value);
      }
    } else {
      for (const [name, value] of Object.entries(event.headers ?? {}))
        if (value !== undefined) headers.set(name, value);
    }
    if (event.multiValueQueryStringParameters && Object.keys(event.multiValueQueryStringParameters).length) {
      for (const [name, values] of Object.entries(event.multiValueQueryStringParameters)) {
        for (const value of values ?? []) query.append(name, value);
      }
    } else {
      for (const [name, value] of Object.entries(event.queryStringParameters ?? {})) {
        if (value !== undefined) query.append(name, value);
      }
    }
  }
  const host = headers.get("host") ?? event.requestContext.domainName ?? "localhost";
  const search = query.size ? `?${query}` : "";
  const body =
    event.body == null || method === "GET" || method === "HEAD"
      ? undefined
      : event.isBase64Encoded
        ? Buffer.from(event.body, "base64")
        : event.body;
  return new Request(`https://${host}${path}${search}`, { method, headers, body });
}

/**
 * What the rest of Shutter needs to know of an API Gateway event besides the request, as neutral values: the
 * address the gateway saw, the claims its authorizer verified (HTTP API JWT authorizer, REST API Cognito
 * authorizer), and whether the invocation answers once (buffered) or streams its response until a deadline
 * (`streamsUntil`: when the platform ends it).
 */
export function serverContextOf(event: GatewayEvent, streamsUntil?: number): ServerContext {
  const context = event.requestContext as {
    http?: { sourceIp?: string };
    identity?: { sourceIp?: string };
    authorizer?: { jwt?: { claims?: Record<string, unknown> }; claims?: Record<string, unknown> };
  };
  return {
    remoteAddress: context.http?.sourceIp ?? context.identity?.sourceIp,
    gatewayClaims: context.authorizer?.jwt?.claims ?? context.authorizer?.claims,
    ...(streamsUntil === undefined ? { answersOnce: true } : { streamsUntil }),
  };
}

const TEXT = /^(text\/|application\/(json|graphql-response\+json|javascript|xml)|image\/svg)/;

/**
 * Lambda refuses results over 6 MB; GraphiQL's page (its assets inline) is 8.6 MB. Bodies this large go out
 * gzipped to clients that accept it (API Gateway passes the encoding through).
 */
const COMPRESS_ABOVE_BYTES = 1024 * 1024;

/** Turns a Fetch `Response` into the result shape of the event's payload version. */
export async function toResult(response: Response, event: GatewayEvent, request?: Request): Promise<GatewayResult> {
  let text = TEXT.test(response.headers.get("content-type") ?? "text/plain");
  let bytes = Buffer.from(await response.arrayBuffer());
  const headers: Record<string, string> = {};
  // Header names are case-insensitive; API Gateway and most tools expect them lowercase.
  response.headers.forEach((value, name) => {
    if (name.toLowerCase() !== "set-cookie") headers[name.toLowerCase()] = value;
  });
  if (
    bytes.length > COMPRESS_ABOVE_BYTES &&
    !headers["content-encoding"] &&
    /\bgzip\b/.test(request?.headers.get("accept-encoding") ?? "")
  ) {
    bytes = gzipSync(bytes);
    text = false;
    delete headers["content-length"];
    headers["content-encoding"] = "gzip";
    headers.vary = headers.vary ? `${headers.vary}, Accept-Encoding` : "Accept-Encoding";
    // Another encoding of the same data: the validator becomes weak (If-None-Match compares weakly).
    if (headers.etag && !headers.etag.startsWith("W/")) headers.etag = `W/${headers.etag}`;
  }
  const body = text ? bytes.toString("utf8") : bytes.toString("base64");
  const cookies = response.headers.getSetCookie();
  if (isV2(event)) {
    return {
      statusCode: response.status,
      headers,
      body,
      isBase64Encoded: !text,
      ...(cookies.length ? { cookies } : {}),
    };
  }
  return {
    statusCode: response.status,
    headers,
    multiValueHeaders: cookies.length ? { "set-cookie": cookies } : undefined,
    body,
    isBase64Encoded: !text,
  };
}

/** What of Lambda's invocation context the handlers read. */
export type LambdaContext = { getRemainingTimeInMillis(): number };

/** The stream Lambda's runtime gives a streaming handler: a Writable whose content type is set before it is used. */
export type ResponseStream = Writable & { setContentType(type: string): void };

/** Lambda's Node.js runtime provides `awslambda` as a global (as scripts/lambda-runtime.ts does locally). */
declare const awslambda: {
  HttpResponseStream: { from(stream: ResponseStream, prelude: Record<string, unknown>): ResponseStream };
};

/**
 * Marks a handler as streaming its response, as the runtime's `awslambda.streamifyResponse` does (the same mark:
 * the runtime reads it when it loads the handler). The global exists only inside Lambda's runtime, not where the
 * module is imported otherwise (tests, the cold-start bench), so the mark is set here.
 */
export function streamifyResponse<
  H extends (event: GatewayEvent, stream: ResponseStream, context: LambdaContext) => Promise<void>,
>(handler: H): H {
  return Object.assign(handler, { [Symbol.for("aws.lambda.runtime.handler.streaming")]: "response" });
}

/**
 * Sends a Fetch `Response` through a Lambda response stream: its status, headers and cookies as the integration's
 * metadata prelude (API Gateway REST streaming and function URLs read the same one), then its body as it is produced
 * — the parts of a deferred query as each is ready. No Content-Length: the body's length is not known up front.
 */
export async function streamResult(response: Response, responseStream: ResponseStream): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    if (name !== "set-cookie" && name !== "content-length") headers[name] = value;
  });
  const cookies = response.headers.getSetCookie();
  const stream = awslambda.HttpResponseStream.from(responseStream, {
    statusCode: response.status,
    headers,
    ...(cookies.length ? { cookies } : {}),
  });
  if (!response.body) {
    // The prelude goes out with the first write.
    stream.write("");
    stream.end();
    return;
  }
  try {
    // Yoga's body is the Fetch ponyfill's stream (not Node's): read as the async iterable both are.
    await pipeline(response.body as unknown as AsyncIterable<Uint8Array>, stream);
  } catch (error) {
    // The client went away (Lambda closes the stream: the next write fails). The pipeline has stopped the body,
    // which ends what produced it (a subscription gives its place back); nothing went wrong here.
    if (!responseStream.destroyed) throw error;
    logger().info("request abandoned by the client");
  }
}
