// The Lambda entry with API Gateway proxy events, as the platform sends them (HTTP API 2.0 and REST API 1.0).

import { readFileSync } from "node:fs";
import type {
  APIGatewayProxyEvent,
  APIGatewayProxyEventV2,
  APIGatewayProxyResult,
  APIGatewayProxyStructuredResultV2,
} from "aws-lambda";
import { describe, expect } from "vitest";
import { createPost, target, test } from "../kit/helpers.ts";
import { operationBody, operationParams, startInstance } from "../kit/instances.ts";

/** Invokes the file's function instance: the handler in process, or the bundled one on a Lambda instance. */
const handler = async (event: unknown) => (await target()).invoke(event as never);

const QUERY = `query ($id: ID!) { post(id: $id) { caption author { handle } } }`;

function v2Event(overrides: Partial<APIGatewayProxyEventV2> & { method?: string } = {}): APIGatewayProxyEventV2 {
  const { method = "POST", ...rest } = overrides;
  return {
    version: "2.0",
    routeKey: `${method} /graphql`,
    rawPath: "/graphql",
    rawQueryString: "",
    headers: {
      "content-type": "application/json",
      host: "api.example.com",
      accept: "application/graphql-response+json",
    },
    requestContext: {
      accountId: "123456789012",
      apiId: "api",
      domainName: "api.example.com",
      domainPrefix: "api",
      http: { method, path: "/graphql", protocol: "HTTP/1.1", sourceIp: "203.0.113.9", userAgent: "test" },
      requestId: "gw-request-1",
      routeKey: `${method} /graphql`,
      stage: "$default",
      time: "25/Nov/2026:10:00:00 +0000",
      timeEpoch: Date.now(),
    },
    isBase64Encoded: false,
    ...rest,
  } as APIGatewayProxyEventV2;
}

function v1Event(overrides: Partial<APIGatewayProxyEvent> = {}): APIGatewayProxyEvent {
  return {
    resource: "/graphql",
    path: "/graphql",
    httpMethod: "POST",
    headers: { "Content-Type": "application/json", Host: "abc.execute-api.eu-west-1.amazonaws.com" },
    multiValueHeaders: {
      "Content-Type": ["application/json"],
      Host: ["abc.execute-api.eu-west-1.amazonaws.com"],
      Accept: ["application/json"],
    },
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    requestContext: { requestId: "rest-request-1", stage: "prod", path: "/prod/graphql", httpMethod: "POST" } as never,
    body: null,
    isBase64Encoded: false,
    ...overrides,
  };
}

describe("HTTP API (payload 2.0)", () => {
  test("answers a POST, echoing the gateway's request id", async ({ alice }) => {
    const post = await createPost(alice, { caption: "from lambda" });
    const result = (await handler(
      v2Event({ body: JSON.stringify(operationBody(QUERY, { id: post.gid })) }),
    )) as APIGatewayProxyStructuredResultV2;
    expect(result.statusCode).toBe(200);
    expect(result.isBase64Encoded).toBe(false);
    expect(result.headers?.["content-type"]).toContain("application/graphql-response+json");
    expect(result.headers?.["x-request-id"]).toBe("gw-request-1");
    expect(JSON.parse(result.body as string).data).toEqual({
      post: { caption: "from lambda", author: { handle: alice.handle } },
    });
  });

  test("decodes base64 bodies, strips a named stage, and reads GET query strings", async ({ alice }) => {
    const post = await createPost(alice, { caption: "encoded" });
    const body = Buffer.from(JSON.stringify(operationBody(QUERY, { id: post.gid }))).toString("base64");
    const staged = v2Event({ body, isBase64Encoded: true, rawPath: "/live/graphql" });
    staged.requestContext.stage = "live";
    const result = (await handler(staged)) as APIGatewayProxyStructuredResultV2;
    expect(JSON.parse(result.body as string).data.post.caption).toBe("encoded");

    const search = new URLSearchParams(operationParams(QUERY, { id: post.gid }));
    const get = (await handler(
      v2Event({
        method: "GET",
        rawQueryString: search.toString(),
        headers: { host: "api.example.com", accept: "application/json" },
      }),
    )) as APIGatewayProxyStructuredResultV2;
    expect(get.statusCode).toBe(200);
    expect(JSON.parse(get.body as string).data.post.caption).toBe("encoded");
  });

  test("passes cookies and the bearer token through", async ({ alice }) => {
    const result = (await handler(
      v2Event({
        cookies: ["a=1", "b=2"],
        headers: { "content-type": "application/json", host: "h", authorization: `Bearer ${alice.token}` },
        body: JSON.stringify(operationBody("{ viewer { user { handle } } }")),
      }),
    )) as APIGatewayProxyStructuredResultV2;
    expect(JSON.parse(result.body as string).data.viewer.user.handle).toBe(alice.handle);
  });
});

describe("subscriptions", () => {
  const subscribe = (accept: string, token: string) =>
    v2Event({
      headers: { "content-type": "application/json", host: "h", accept, authorization: `Bearer ${token}` },
      body: JSON.stringify(operationBody("subscription { notificationAdded { kind } }")),
    });

  test("are refused at once, saying why: an invocation cannot hold a stream open", async ({ alice }) => {
    // Without the refusal, the stream would hold the invocation until the gateway's timeout.
    const stream = (await handler(subscribe("text/event-stream", alice.token))) as APIGatewayProxyStructuredResultV2;
    expect(stream.body).toContain("SUBSCRIPTIONS_UNAVAILABLE");
    expect(stream.body).toMatch(/event: complete/);
    const json = (await handler(
      subscribe("application/graphql-response+json", alice.token),
    )) as APIGatewayProxyStructuredResultV2;
    expect(json.statusCode).toBe(400);
    expect(JSON.parse(json.body as string).errors[0]).toMatchObject({
      message: expect.stringContaining("unreadNotificationCount"),
      extensions: { code: "SUBSCRIPTIONS_UNAVAILABLE" },
    });
  });
});

describe("REST API (payload 1.0)", () => {
  test("answers with multi-value headers and query strings", async ({ alice }) => {
    const post = await createPost(alice, { caption: "rest" });
    const result = (await handler(
      v1Event({ body: JSON.stringify(operationBody(QUERY, { id: post.gid })) }),
    )) as APIGatewayProxyResult;
    expect(result.statusCode).toBe(200);
    expect(result.headers?.["x-request-id"]).toBe("rest-request-1");
    expect(JSON.parse(result.body).data.post.caption).toBe("rest");

    const get = (await handler(
      v1Event({
        httpMethod: "GET",
        multiValueQueryStringParameters: Object.fromEntries(
          Object.entries(operationParams(QUERY, { id: post.gid })).map(([name, value]) => [name, [value]]),
        ),
      }),
    )) as APIGatewayProxyResult;
    expect(JSON.parse(get.body).data.post.caption).toBe("rest");
  });

  test("a bad request is a 4xx with a GraphQL error, not a crash", async () => {
    const event = v1Event({ body: "{not json" });
    event.multiValueHeaders.Accept = ["application/graphql-response+json"];
    const result = (await handler(event)) as APIGatewayProxyResult;
    expect(result.statusCode).toBe(400);
    const body = JSON.parse(result.body);
    expect(body.errors[0].message).toMatch(/JSON/);
    expect(body.errors[0].extensions.requestId).toBe("rest-request-1");
  });
});

/** Sample events as the platform sends them (after AWS's documented examples), adapted to Shutter's route. */
const sample = <T>(name: string): T =>
  JSON.parse(readFileSync(new URL(`../kit/events/${name}.json`, import.meta.url), "utf8")) as T;

const WITH_COMMENTS = `query PostWithComments($id: ID!, $n: Int!) {
  post(id: $id) { caption comments(first: $n) { edges { node { body } } } } }`;

describe("AWS sample events", () => {
  test("HTTP API 2.0 GET: repeated and comma-bearing query parameters, cookies, multi-value headers", async ({
    alice,
  }) => {
    const post = await createPost(alice, { caption: "sampled" });
    const event = sample<APIGatewayProxyEventV2>("http-api-v2");
    const variables = JSON.stringify({ id: post.gid, n: 2 }); // a comma: the gateway's joined values would break it
    const params = operationParams(WITH_COMMENTS, { id: post.gid, n: 2 });
    event.rawQueryString = new URLSearchParams([...Object.entries(params), ["utm", "a"], ["utm", "b"]]).toString();
    // What the gateway puts next to rawQueryString: repeated values joined with commas.
    event.queryStringParameters = { ...params, variables, utm: "a,b" };
    const result = (await handler(event)) as APIGatewayProxyStructuredResultV2;
    expect(result.statusCode).toBe(200);
    expect(result.headers?.["x-request-id"]).toBe("JKJaXmPLvHcESHA=");
    expect(JSON.parse(result.body as string).data.post).toEqual({ caption: "sampled", comments: { edges: [] } });
  });

  test("HTTP API 2.0 on a named stage, at the public route", async () => {
    const event = sample<APIGatewayProxyEventV2>("http-api-v2");
    event.rawPath = "/live/graphql/public";
    event.requestContext.stage = "live";
    event.rawQueryString = new URLSearchParams(operationParams("{ __typename }")).toString();
    const result = (await handler(event)) as APIGatewayProxyStructuredResultV2;
    expect(result.statusCode).toBe(200);
    expect(JSON.parse(result.body as string).data).toEqual({ __typename: "Query" });
  });

  test("REST API 1.0: base64 body, multi-value headers, the stage outside the path", async ({ alice }) => {
    const post = await createPost(alice, { caption: "rest sample" });
    const event = sample<APIGatewayProxyEvent>("rest-api-v1");
    event.body = Buffer.from(JSON.stringify(operationBody(QUERY, { id: post.gid }))).toString("base64");
    const result = (await handler(event)) as APIGatewayProxyResult;
    expect(result.statusCode).toBe(200);
    expect(result.headers?.["content-type"]).toContain("application/json");
    expect(result.headers?.["x-request-id"]).toBe("77375676-xmpl-4b79-853a-f982474efe18");
    expect(JSON.parse(result.body).data.post).toEqual({ caption: "rest sample", author: { handle: alice.handle } });
  });

  test("HTTP API with payload format 1.0 is read as a REST event", async ({ alice }) => {
    const event = { ...sample<APIGatewayProxyEvent>("rest-api-v1"), version: "1.0" } as APIGatewayProxyEvent;
    event.isBase64Encoded = false;
    event.body = JSON.stringify(operationBody("{ viewer { user { handle } } }"));
    event.multiValueHeaders.Authorization = [`Bearer ${alice.token}`];
    const result = (await handler(event)) as APIGatewayProxyResult;
    expect(JSON.parse(result.body).data.viewer.user.handle).toBe(alice.handle);
  });
});

describe("trust-the-gateway mode", () => {
  const eventWithClaims = (claims: Record<string, string>) => ({
    version: "2.0",
    rawPath: "/graphql",
    rawQueryString: "",
    headers: { "content-type": "application/json", host: "api.example.com" },
    requestContext: {
      http: { method: "POST", sourceIp: "198.51.100.7" },
      requestId: "gw",
      stage: "$default",
      authorizer: { jwt: { claims, scopes: [] } },
    },
    body: JSON.stringify(operationBody("{ viewer { user { handle } } }")),
    isBase64Encoded: false,
  });

  test("reads the authorizer's claims only when enabled", async ({ alice }) => {
    const claims = { iss: "shutter", sub: alice.id, sid: "gateway-session" };
    const trusting = await startInstance({ AUTH_TRUST_GATEWAY: "true" });
    const wary = await startInstance();
    try {
      const trusted = await trusting.invoke(eventWithClaims(claims));
      expect(JSON.parse(trusted.body as string).data.viewer.user.handle).toBe(alice.handle);
      const ignored = await wary.invoke(eventWithClaims(claims));
      expect(JSON.parse(ignored.body as string).data.viewer).toBeNull();
      const foreign = await trusting.invoke(eventWithClaims({ iss: "https://elsewhere", sub: "x" }));
      expect(foreign.statusCode).toBe(401);
    } finally {
      await Promise.all([trusting.close(), wary.close()]);
    }
  });
});
