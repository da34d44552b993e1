import type {
  APIGatewayProxyEvent,
  APIGatewayProxyEventV2,
  APIGatewayProxyResult,
  APIGatewayProxyStructuredResultV2,
} from "aws-lambda";

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

const TEXT = /^(text\/|application\/(json|graphql-response\+json|javascript|xml)|image\/svg)/;

/** Turns a Fetch `Response` into the result shape of the event's payload version. */
export async function toResult(response: Response, event: GatewayEvent): Promise<GatewayResult> {
  const text = TEXT.test(response.headers.get("content-type") ?? "text/plain");
  const bytes = Buffer.from(await response.arrayBuffer());
  const body = text ? bytes.toString("utf8") : bytes.toString("base64");
  const cookies = response.headers.getSetCookie();
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    if (name !== "set-cookie") headers[name] = value;
  });
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
