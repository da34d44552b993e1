// Traces and metrics, as an operator receives them: a real OTLP/HTTP receiver in this process (the JSON encoding
// the exporter sends), the function as the target ships it (the bundle's graphql.mjs behind the gateway emulator,
// the container entry) configured with OTEL_EXPORTER_OTLP_ENDPOINT. Asserted: the span tree of a feed request
// (request → graphql.execute → loader batches → SQL), the caller's trace continued, the cold start as a span of
// its own on an instance's first request only, nothing lost at the end of a Lambda invocation (the spans are at the
// receiver when the response is), trace and request ids in each other's records, and the metrics.
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { db } from "../../src/platform/db.ts";
import { coldCache, createPost, test } from "../kit/helpers.ts";
import { BUNDLED, type Instance, startInstance, TARGET } from "../kit/instances.ts";

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes: { key: string; value: Record<string, unknown> }[];
  startTimeUnixNano: string;
  endTimeUnixNano: string;
}

const spans: OtlpSpan[] = [];
const metrics: { name: string; data: any }[] = [];
const receiver = createServer(async (request: IncomingMessage, response) => {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const body = JSON.parse(Buffer.concat(chunks).toString() || "{}");
  if (request.url === "/v1/traces") {
    for (const resource of body.resourceSpans ?? [])
      for (const scope of resource.scopeSpans ?? []) spans.push(...(scope.spans ?? []));
  } else if (request.url === "/v1/metrics") {
    for (const resource of body.resourceMetrics ?? [])
      for (const scope of resource.scopeMetrics ?? [])
        for (const metric of scope.metrics ?? []) metrics.push({ name: metric.name, data: metric });
  }
  response.writeHead(200, { "content-type": "application/json" }).end("{}");
});
let endpoint = "";

beforeAll(async () => {
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => receiver.close(() => resolve())));

const attribute = (span: OtlpSpan | undefined, key: string) => {
  const value = span?.attributes.find((a) => a.key === key)?.value;
  return value ? Object.values(value)[0] : undefined;
};

/** The spans of one trace, once they are all in (Lambda: already; elsewhere after the batch delay). */
async function traceOf(traceId: string, until: (found: OtlpSpan[]) => boolean): Promise<OtlpSpan[]> {
  for (let waited = 0; ; waited += 100) {
    const found = spans.filter((span) => span.traceId === traceId);
    if (until(found) || waited > 5_000) return found;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const FEED = `query Feed { feed(first: 5) { edges { node { id caption author { handle } comments(first: 2) { edges { node { body } } } } } } }`;

async function feed(instance: Instance, token: string, traceId: string) {
  const response = await instance.fetch("/graphql", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: `Bearer ${token}`,
      // The caller's trace (sampled): the request's span continues it.
      traceparent: `00-${traceId}-00f067aa0ba902b7-01`,
    },
    body: JSON.stringify({ query: FEED, operationName: "Feed" }),
  });
  return { response, body: await response.json() };
}

const randomTraceId = () => crypto.randomUUID().replaceAll("-", "");

describe("with OTEL_EXPORTER_OTLP_ENDPOINT set", () => {
  test("a feed request's spans: request → execute → loader batches → SQL, continuing the caller's trace", async ({
    alice,
    bob,
  }) => {
    const instance = await startInstance({
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_METRIC_EXPORT_INTERVAL: "200",
      LOG_LEVEL: "info",
    });
    await createPost(bob, { caption: "traced" });
    await db().follow.create({ data: { followerId: alice.id, followeeId: bob.id } });
    // Creating the post read it back (as the app does), which cached what the feed shows: start cold.
    await coldCache();
    const first = randomTraceId();
    const { response, body } = await feed(instance, alice.token, first);
    expect(body.errors).toBeUndefined();
    expect(body.data.feed.edges[0].node.caption).toBe("traced");
    // On Lambda the invocation flushed before it returned: everything is here already, nothing waited for.
    const tree =
      BUNDLED && TARGET !== "container"
        ? spans.filter((s) => s.traceId === first)
        : await traceOf(first, (found) => found.some((s) => s.name === "POST /graphql"));
    const root = tree.find((s) => s.name === "POST /graphql");
    expect(root, JSON.stringify(tree.map((s) => s.name))).toBeDefined();
    expect(root?.parentSpanId).toBe("00f067aa0ba902b7");
    expect(attribute(root, "http.response.status_code")).toBe(200);
    expect(attribute(root, "graphql.operation.name")).toBe("Feed");
    const requestId = response.headers.get("x-request-id");
    expect(attribute(root, "shutter.request_id")).toBe(requestId);
    const children = (parent: OtlpSpan | undefined) => tree.filter((s) => s.parentSpanId === parent?.spanId);
    const execute = tree.find((s) => s.name === "graphql.execute");
    expect(execute?.parentSpanId).toBe(root?.spanId);
    expect(attribute(execute, "graphql.operation.name")).toBe("Feed");
    // Loader batches under execute, each with its SQL (a cold entity cache: every entity is read once).
    const batches = children(execute).filter((s) => s.name.startsWith("dataloader "));
    expect(batches.map((s) => s.name)).toEqual(expect.arrayContaining(["dataloader firstCommentsByPost"]));
    const sqlUnderBatches = batches.flatMap((batch) =>
      tree.filter((s) => s.name.startsWith("sql ") && isUnder(tree, s, batch)),
    );
    expect(sqlUnderBatches.length).toBeGreaterThan(0);
    expect(attribute(sqlUnderBatches[0], "db.system.name")).toBe("postgresql");
    expect(String(attribute(sqlUnderBatches[0], "db.query.text"))).toMatch(/SELECT/i);
    // The entity cache's round trip too (Redis's MGET; without Redis, the in-process cache's sync with other
    // processes' changes: caching/peers.ts), and every span inside its parent's time.
    const cacheRoundTrip = process.env.REDIS_URL ? "redis MGET" : "cache sync";
    expect(tree.some((s) => s.name === cacheRoundTrip && isUnder(tree, s, execute as OtlpSpan))).toBe(true);
    // (The cold start began before the request it is part of: the process's start.)
    for (const span of tree.filter((s) => s.name !== "cold start")) {
      const parent = tree.find((s) => s.spanId === span.parentSpanId);
      if (!parent) continue;
      expect(BigInt(span.startTimeUnixNano) >= BigInt(parent.startTimeUnixNano), span.name).toBe(true);
    }
    // The cold start: one span, under the first request this instance served (the feed, or the readiness probe
    // of the harness before it), beginning at the process's start.
    for (let waited = 0; !spans.some((s) => s.name === "cold start") && waited < 5_000; waited += 100) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const coldStarts = spans.filter((s) => s.name === "cold start");
    expect(coldStarts).toHaveLength(1);
    const firstRequest = spans.find((s) => s.spanId === coldStarts[0]?.parentSpanId);
    expect(firstRequest?.name).toMatch(/^(GET|POST) \//);
    expect(attribute(firstRequest, "faas.coldstart")).toBe(true);
    expect(BigInt(coldStarts[0]?.startTimeUnixNano ?? 0)).toBeLessThan(BigInt(firstRequest?.startTimeUnixNano ?? 0));
    const second = randomTraceId();
    await feed(instance, alice.token, second);
    const again =
      BUNDLED && TARGET !== "container"
        ? spans.filter((s) => s.traceId === second)
        : await traceOf(second, (found) => found.some((s) => s.name === "POST /graphql"));
    const secondRoot = again.find((s) => s.name === "POST /graphql");
    expect(attribute(secondRoot, "faas.coldstart")).toBe(false);
    expect(again.some((s) => s.name === "cold start")).toBe(false);
    expect(spans.filter((s) => s.name === "cold start")).toHaveLength(1);
    // A trace begun at API Gateway / X-Ray (its header; no traceparent) is continued too.
    await instance.fetch("/graphql", {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${alice.token}`,
        "x-amzn-trace-id": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
      },
      body: JSON.stringify({ query: FEED, operationName: "Feed" }),
    });
    const fromXray = await traceOf("5759e988bd862e3fe1be46a994272793", (found) =>
      found.some((s) => s.name === "POST /graphql"),
    );
    expect(fromXray.find((s) => s.name === "POST /graphql")?.parentSpanId).toBe("53995c3f42cd8ad8");
    // The request's log line carries the trace id; the span carries the request id.
    const logged = instance.logs.find((line) => line.msg === "request" && line.requestId === requestId);
    expect(logged?.traceId).toBe(first);

    // Metrics. On Lambda: the request line is a CloudWatch Embedded Metric Format record (cold start counted once).
    const lines = instance.logs.filter((line) => line.msg === "request" && line.operationName === "Feed");
    if (BUNDLED && TARGET !== "container") {
      expect(lines).toHaveLength(3); // traceparent, traceparent, X-Ray
      const [cold, warm] = lines as [Record<string, any>, Record<string, any>];
      expect(cold._aws.CloudWatchMetrics[0]).toMatchObject({
        Namespace: "Shutter",
        Dimensions: [["operation"], []],
        Metrics: expect.arrayContaining([
          { Name: "requests", Unit: "Count" },
          { Name: "durationMs", Unit: "Milliseconds" },
          { Name: "sqlStatements", Unit: "Count" },
          { Name: "cacheHits", Unit: "Count" },
          { Name: "coldStarts", Unit: "Count" },
        ]),
      });
      expect(cold).toMatchObject({ operation: "Feed", requests: 1, errors: 0 });
      expect(cold.sqlStatements).toBeGreaterThan(0);
      expect(warm).toMatchObject({ operation: "Feed", requests: 1, coldStarts: 0 });
      // The cold start is counted once, on the instance's first request (the harness's probe, or the feed).
      const served = instance.logs.filter((line) => line.msg === "request");
      expect(served[0]?.coldStarts).toBe(1);
      expect(served.reduce((n, line) => n + line.coldStarts, 0)).toBe(1);
      expect(Number.isFinite(cold._aws.Timestamp)).toBe(true);
    } else {
      // Elsewhere: OTLP metrics (sent every OTEL_METRIC_EXPORT_INTERVAL, 200 ms here).
      for (let waited = 0; !metrics.some((m) => m.name === "shutter.cold_starts") && waited < 5_000; waited += 100) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const requests = metrics.filter((m) => m.name === "shutter.requests").at(-1)?.data;
      const point = requests?.sum.dataPoints.find((p: any) =>
        p.attributes.some((a: any) => a.key === "graphql.operation.name" && a.value.stringValue === "Feed"),
      );
      expect(Number(point?.asInt ?? point?.asDouble)).toBeGreaterThanOrEqual(2);
      expect(metrics.some((m) => m.name === "shutter.request.duration")).toBe(true);
      expect(metrics.some((m) => m.name === "shutter.sql.statements")).toBe(true);
      expect(metrics.some((m) => m.name === "shutter.cold_starts")).toBe(true);
      expect(lines[0]?._aws).toBeUndefined();
    }
  });

  test("an error answered is counted by its code", async ({ alice }) => {
    const instance = await startInstance({
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_METRIC_EXPORT_INTERVAL: "200",
      LOG_LEVEL: "info",
    });
    const answer = await instance.query(
      `query Missing($id: ID!) { post(id: $id) { id } }`,
      { id: "not-an-id" },
      alice.token,
    );
    const code = answer.errors?.[0]?.extensions?.code;
    expect(code).toBe("BAD_USER_INPUT");
    const line = instance.logs.find((l) => l.msg === "request" && l.requestId === answer.requestId);
    expect(line?.errorCodes).toEqual([code]);
    if (BUNDLED && TARGET !== "container") {
      expect(line).toMatchObject({ errors: 1, errorCode: code });
      expect(line?._aws.CloudWatchMetrics[1]).toMatchObject({ Namespace: "Shutter", Dimensions: [["errorCode"]] });
    }
  });
});

test('operation names a client makes up are one bounded dimension, "other", also on requests refused', async ({
  alice,
}) => {
  const instance = await startInstance({
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    OTEL_METRIC_EXPORT_INTERVAL: "200",
    LOG_LEVEL: "info",
  });
  const madeUp = Array.from({ length: 5 }, (_, i) => `Probe${i}x${Math.random().toString(36).slice(2, 8)}`);
  for (const [i, name] of madeUp.entries()) {
    // Named by the document alone, or by operationName as well (what Apollo Client and urql send).
    const response = await instance.fetch("/graphql", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${alice.token}` },
      body: JSON.stringify({
        query: `query ${name} { feed(first: 1) { edges { cursor } } }`,
        ...(i % 2 ? { operationName: name } : {}),
      }),
    });
    expect((await response.json()).errors).toBeUndefined();
  }
  // Refused before anything runs (no document), with a name all the same.
  const refused = await instance.fetch("/graphql", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ operationName: "RefusedProbe" }),
  });
  expect(refused.status).toBe(400);
  const names = [...madeUp, "RefusedProbe"];
  if (BUNDLED && TARGET !== "container") {
    // Another process's log lines arrive a moment after its answers.
    let lines: Record<string, any>[] = [];
    for (let waited = 0; lines.length < names.length && waited < 5_000; waited += 100) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      lines = instance.logs.filter((l) => l.msg === "request" && names.includes(l.operationName));
    }
    expect(lines).toHaveLength(names.length);
    expect(new Set(lines.map((l) => l.operation))).toEqual(new Set(["other"]));
  } else {
    let seen: string[] = [];
    for (let waited = 0; waited < 5_000; waited += 100) {
      seen = metrics
        .filter((m) => m.name === "shutter.requests")
        .flatMap((m) => m.data.sum.dataPoints)
        .flatMap((p: any) => p.attributes)
        .filter((a: any) => a.key === "graphql.operation.name")
        .map((a: any) => a.value.stringValue);
      if (seen.includes("other")) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(seen).toContain("other");
    for (const name of names) expect(seen).not.toContain(name);
  }
});

test("a caller cannot have every request traced: its sampled flag is followed only when it is trusted", async ({
  alice,
}) => {
  // Nothing sampled (ratio 0): a client's traceparent asking for its trace is not enough.
  const untrusted = await startInstance({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_TRACES_SAMPLER_ARG: "0" });
  const asked = randomTraceId();
  expect((await feed(untrusted, alice.token, asked)).response.status).toBe(200);
  // A caller of one's own (OTEL_TRACES_TRUST_PARENT) decides for the traces it continues.
  const trusted = await startInstance({
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    OTEL_TRACES_SAMPLER_ARG: "0",
    OTEL_TRACES_TRUST_PARENT: "true",
  });
  const decided = randomTraceId();
  expect((await feed(trusted, alice.token, decided)).response.status).toBe(200);
  const kept = await traceOf(decided, (found) => found.some((s) => s.name === "POST /graphql"));
  expect(kept.some((s) => s.name === "POST /graphql")).toBe(true);
  // By then the untrusted instance's spans would have been exported too (same batch delay): there are none.
  expect(spans.filter((s) => s.traceId === asked)).toEqual([]);
  await Promise.all([untrusted.close(), trusted.close()]);
});

/** Whether `span` descends from `ancestor` in the trace. */
function isUnder(tree: OtlpSpan[], span: OtlpSpan, ancestor: OtlpSpan): boolean {
  for (
    let current: OtlpSpan | undefined = span;
    current;
    current = tree.find((s) => s.spanId === current?.parentSpanId)
  ) {
    if (current.parentSpanId === ancestor.spanId) return true;
  }
  return false;
}
