// Function instances, as the target under test serves them. One suite, several targets (SHUTTER_TARGET, one
// vitest project each; see vitest.config.ts):
// - `source`: the function's module imported in this process (each instance after vi.resetModules(), so it runs
//   the module scope again: its own configuration, Yoga, Prisma and Redis clients);
// - `lambda` / `lambda-v1`: the bundle as deployed (dist/functions/graphql.mjs) behind the local API Gateway
//   emulator, which turns each HTTP request into an HTTP API (payload 2.0) or REST API (payload 1.0) event and
//   invokes it on instances that are processes of their own;
// - `lambda-stream` / `lambda-url`: the bundle's streaming handler behind the emulator in streaming mode, as a REST
//   API's streaming integration (payload 1.0) and a function URL in RESPONSE_STREAM mode (2.0) invoke it;
// - `container`: the bundled container entry (server.mjs) in a process of its own, over HTTP.
// Bundled targets run in production configuration (NODE_ENV=production and its defaults), as deployed.
import { type ChildProcess, spawn } from "node:child_process";
import { createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import { createServerAdapter } from "@whatwg-node/server";
import { inject, vi } from "vitest";
import type { GatewayEvent, GatewayResult } from "../../src/http/lambda.ts";

export type TargetName = "source" | "lambda" | "lambda-v1" | "lambda-stream" | "lambda-url" | "container";
export const TARGET = (process.env.SHUTTER_TARGET ?? "source") as TargetName;
/** Whether the target streams Lambda responses (the streaming handler behind a streaming integration). */
export const STREAMING = TARGET === "lambda-stream" || TARGET === "lambda-url";
/** Whether the target's responses stream (a deferred query's parts): all but the buffered Lambda handler's. */
export const RESPONSES_STREAM = TARGET !== "lambda" && TARGET !== "lambda-v1";
/** Whether requests reach the bundle as deployed (in production configuration). */
export const BUNDLED = TARGET !== "source";

export interface GraphQLResult {
  data?: any;
  errors?: any[];
  extensions?: any;
  /** The request id the function answered with (`x-request-id`). */
  requestId: string;
}

/**
 * A request's options, and the client address it comes from: another loopback address (127.0.0.2, …) stands
 * for another client, seen as such by every target (the socket's peer, the gateway's `sourceIp`).
 */
export type RequestOptions = RequestInit & { from?: string };

export interface Instance {
  /** Sends a request to this instance; only the path and query of its URL matter. */
  fetch(input: string | Request, init?: RequestOptions): Promise<Response>;
  /** POSTs an operation, as a web client does. */
  query(query: string, variables?: Record<string, unknown>, token?: string): Promise<GraphQLResult>;
  /** Invokes the Lambda handler with an API Gateway event as given (source and Lambda targets). */
  invoke(event: GatewayEvent | Record<string, unknown>): Promise<GatewayResult>;
  /** The GraphQL endpoint over real HTTP, for real clients and browsers. */
  url(): Promise<string>;
  /** The log records the instance wrote (on the source target, only when started with a LOG_LEVEL). */
  readonly logs: Record<string, any>[];
  close(): Promise<void>;
}

const open = new Set<Instance>();

/** Closes every instance a test file left open (test/kit/setup.ts calls it after the file). */
export async function closeInstances(): Promise<void> {
  stopFunctions();
  await Promise.all([...open].map((instance) => instance.close()));
}

/** Starts a function instance of the current target with these settings on top of the test environment. */
export async function startInstance(
  env: Record<string, string> = {},
  /** On the Lambda targets: the function's timeout (the gateway emulator's; 29 s otherwise). */
  lambda: { timeoutMs?: number } = {},
): Promise<Instance> {
  const instance =
    TARGET === "source"
      ? await startSource(env)
      : TARGET === "container"
        ? await startContainer(env)
        : await startLambda(env, TARGET === "lambda-v1" || TARGET === "lambda-stream" ? "1.0" : "2.0", lambda);
  open.add(instance);
  const close = instance.close.bind(instance);
  instance.close = async () => {
    open.delete(instance);
    await close();
  };
  return instance;
}

/** The body a web client sends. */
export function operationBody(query: string, variables: Record<string, unknown> = {}) {
  return { query, variables };
}

/** The same as GET query parameters (`query`, `variables`). */
export function operationParams(query: string, variables?: Record<string, unknown>): Record<string, string> {
  return { query, ...(variables ? { variables: JSON.stringify(variables) } : {}) };
}

export function queryThrough(fetch: Instance["fetch"]): Instance["query"] {
  return async (query, variables = {}, token) => {
    const response = await fetch("/graphql", {
      method: "POST",
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(operationBody(query, variables)),
    });
    const result = (await response.json()) as GraphQLResult;
    assertChangesDeclared(result);
    return Object.assign(result, { requestId: response.headers.get("x-request-id") ?? "" });
  };
}

/**
 * Fails the test when the function reports that a write changed a cached entity no service declared (outside
 * production every response says so: see caching/changes.ts). Every operation the tests send is checked.
 */
export function assertChangesDeclared(body: { extensions?: Record<string, unknown> }): void {
  const undeclared = body.extensions?.undeclaredChanges;
  if (Array.isArray(undeclared) && undeclared.length) {
    throw new Error(
      `A write changed rows of ${undeclared.join(", ")} without declaring it (w.changed in services/write.ts).`,
    );
  }
}

export interface OperationStats {
  sqlStatements: number;
  /** Of those, the ones a read replica answered. */
  replicaStatements: number;
  cache: { roundTrips: number; hits: number; misses: number };
  /** What the response cache did: "hit", "kept", or (in development) why not; absent when not consulted. */
  responseCache?: string;
}

/**
 * What serving an operation took: SQL statements and cache round trips, hits and misses. Development responses
 * carry them as extensions; in production they are only in the request's log line (the instance must log at
 * `info`, as bundled instances do).
 */
export async function statsOf(instance: Instance, result: GraphQLResult): Promise<OperationStats> {
  if (result.extensions?.sqlStatements !== undefined) {
    return {
      sqlStatements: result.extensions.sqlStatements,
      replicaStatements: result.extensions.replicaStatements ?? 0,
      cache: result.extensions.cache,
      responseCache: result.extensions.responseCache,
    };
  }
  for (let waited = 0; waited < 3000; waited += 20) {
    const line = instance.logs.find((l) => l.msg === "request" && l.requestId === result.requestId);
    if (line) {
      return {
        sqlStatements: line.sqlStatements,
        replicaStatements: line.replicaStatements ?? 0,
        cache: { roundTrips: line.cacheRoundTrips, hits: line.cacheHits, misses: line.cacheMisses },
        responseCache: line.responseCache,
      };
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no request log line for ${result.requestId}`);
}

const toRequest = (base: string, input: string | Request, init?: RequestOptions) => {
  const request = typeof input === "string" ? new Request(new URL(input, "http://shutter.test"), init) : input;
  const url = new URL(request.url);
  return { url: `${base}${url.pathname}${url.search}`, request };
};

async function startSource(env: Record<string, string>): Promise<Instance> {
  // An instance asked to log writes JSON lines to this process's stdout: keep them as its log records.
  const logs: Record<string, any>[] = [];
  const write = process.stdout.write;
  if (env.LOG_LEVEL && env.LOG_LEVEL !== "silent") {
    const record = collect(logs);
    process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
      const text = String(chunk);
      if (!text.startsWith('{"level"')) return write.call(process.stdout, chunk, ...rest);
      for (const line of text.split("\n")) record(line);
      return true;
    }) as typeof process.stdout.write;
  }
  const saved = { ...process.env };
  Object.assign(process.env, env);
  vi.resetModules();
  let functionModule: typeof import("../../functions/graphql.ts");
  try {
    functionModule = await import("../../functions/graphql.ts");
  } finally {
    // A start that fails (bad configuration) must not leave its environment behind.
    if (!functionModule!) {
      process.env = saved;
      process.stdout.write = write;
    }
  }
  const { fetch: entry, handler } = functionModule;
  const { disconnectDb } = await import("../../src/platform/db.ts");
  const { closeCache, cacheStore } = await import("../../src/caching/store.ts");
  const { closePubSub } = await import("../../src/events/pubsub.ts");
  const { closePublisher } = await import("../../src/events/stream.ts");
  const { config } = await import("../../src/platform/config.ts");
  // Settle what this instance reads from the environment before restoring it.
  config();
  cacheStore();
  process.env = saved;
  let served: ReturnType<typeof serveOverHttp> | undefined;
  const fetch: Instance["fetch"] = (input, init) => {
    const { url, request } = toRequest("http://shutter.test", input, init);
    return entry(new Request(url, request), { remoteAddress: init?.from });
  };
  return {
    fetch,
    query: queryThrough(fetch),
    invoke: (event) => handler(event as GatewayEvent),
    async url() {
      served ??= serveOverHttp(entry);
      return (await served).url;
    },
    logs,
    async close() {
      await (await served)?.close();
      closePubSub();
      await Promise.all([disconnectDb(), closeCache(), closePublisher()]);
      process.stdout.write = write;
    },
  };
}

/** A port nothing listens on now. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Serves a Fetch entry over HTTP on a free port, as the container entry would. */
export async function serveOverHttp(
  fetch: (request: Request, context: { remoteAddress?: string }) => Promise<Response>,
): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer(
    createServerAdapter<{ req: { socket: { remoteAddress?: string } } }>((request, { req }) =>
      fetch(request, { remoteAddress: req.socket.remoteAddress }),
    ),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The environment of a bundled instance: the test file's services, production defaults, and the overrides. */
function bundledEnv(env: Record<string, string>): Record<string, string | undefined> {
  return { ...process.env, NODE_ENV: "production", LOG_LEVEL: "info", LOG_FORMAT: "json", ...env };
}

const bundle = () => {
  const dir = inject("bundleDir");
  if (!dir) throw new Error("no bundle: the global setup builds one when a bundled target is selected");
  return dir;
};

/** Each line a bundled instance writes: JSON log records, or anything else as `{ msg: line }`. */
function collect(logs: Record<string, any>[]) {
  return (line: string) => {
    if (!line.trim()) return;
    try {
      logs.push(JSON.parse(line));
    } catch {
      logs.push({ msg: line });
    }
  };
}

/** An HTTP request from a given local address (fetch cannot choose one). */
function requestFrom(
  localAddress: string,
  url: string,
  method: string,
  headers: Headers,
  body: ArrayBuffer | undefined,
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(url, { method, headers: Object.fromEntries(headers), localAddress }, (incoming) => {
      const chunks: Buffer[] = [];
      incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
      incoming.on("end", () => {
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(incoming.headers)) {
          for (const one of [value].flat()) if (one !== undefined) responseHeaders.append(name, one);
        }
        const status = incoming.statusCode ?? 500;
        resolve(new Response(status === 304 ? null : Buffer.concat(chunks), { status, headers: responseHeaders }));
      });
    });
    outgoing.once("error", reject);
    outgoing.end(body ? Buffer.from(body) : undefined);
  });
}

function httpInstance(base: string, logs: Record<string, any>[], extra: Pick<Instance, "invoke" | "close">): Instance {
  const fetch: Instance["fetch"] = async (input, init) => {
    const { url, request } = toRequest(base, input, init);
    const body = ["GET", "HEAD"].includes(request.method) ? undefined : await request.arrayBuffer();
    const options = { method: request.method, headers: request.headers, body, redirect: "manual" } as const;
    if (!init?.from) return globalThis.fetch(url, options);
    return requestFrom(init.from, url, request.method, request.headers, body);
  };
  return { fetch, query: queryThrough(fetch), url: async () => `${base}/graphql`, logs, ...extra };
}

async function startContainer(env: Record<string, string>): Promise<Instance> {
  const logs: Record<string, any>[] = [];
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, ["server.mjs"], {
    cwd: bundle(),
    env: bundledEnv({ PORT: String(port), ...env }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  // "close": after its output has been read to the end, so a refusal to start is in `logs`.
  const exited = new Promise<number | null>((resolve) => child.once("close", resolve));
  const record = collect(logs);
  for (const stream of [child.stdout, child.stderr]) if (stream) createInterface({ input: stream }).on("line", record);
  // Up when it answers its liveness probe (what an orchestrator waits for), whatever its log level.
  let code: number | null | undefined;
  void exited.then((exitCode) => {
    code = exitCode;
  });
  for (;;) {
    if (code !== undefined) {
      throw new Error(`server.mjs exited with ${code}: ${logs.map((l) => l.msg).join("\n")}`);
    }
    const health = await globalThis.fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined);
    if (health?.ok) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return httpInstance(`http://127.0.0.1:${port}`, logs, {
    invoke: () => Promise.reject(new Error("the container target has no Lambda handler")),
    async close() {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      await exited;
    },
  });
}

async function startLambda(
  env: Record<string, string>,
  payloadFormat: "2.0" | "1.0",
  { timeoutMs }: { timeoutMs?: number },
): Promise<Instance> {
  const { startGateway } = await import("../../scripts/gateway.ts");
  const logs: Record<string, any>[] = [];
  const gateway = await startGateway({
    module: `${bundle()}/graphql.mjs`,
    payloadFormat,
    timeoutMs,
    ...(STREAMING ? { handler: "streamingHandler", streaming: true } : {}),
    maxInstances: 3,
    env: bundledEnv(env),
    log: () => {},
    output: collect(logs),
  });
  const instance = httpInstance(gateway.url, logs, {
    invoke: (event) => gateway.invoke(event) as Promise<GatewayResult>,
    close: () => gateway.close(),
  });
  try {
    // The first instance's init runs now: a configuration it refuses fails the start, as a deploy would.
    await gateway.invoke(healthEvent());
  } catch (error) {
    await gateway.close();
    throw error;
  }
  return instance;
}

function healthEvent() {
  return {
    version: "2.0",
    rawPath: "/health",
    rawQueryString: "",
    headers: { host: "localhost" },
    requestContext: { http: { method: "GET", path: "/health", sourceIp: "127.0.0.1" }, requestId: "warm-up" },
    isBase64Encoded: false,
  };
}

/**
 * Opens a `notificationAdded` stream with a plain fetch (it resolves once the server has answered its headers,
 * that is, started the subscription).
 */
export async function openStream(on: Instance, token: string) {
  const response = await fetch(await on.url(), {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: `subscription { notificationAdded { kind } }` }),
  });
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  return {
    response,
    /** Reads until the server ends the stream; what it sent meanwhile. */
    async untilEnd() {
      let text = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return text;
        text += decoder.decode(value, { stream: true });
      }
    },
    close: () => reader.cancel(),
  };
}

/**
 * Invokes another function's handler once, as the target ships it: on the source target its module in this
 * process; on bundled targets the bundle's `<name>.mjs` in a process of its own, in production configuration with
 * `env` on top, kept warm for the next invocation with the same settings as Lambda keeps an instance (the first
 * invocation is a cold start; one arriving while every instance is busy starts another). @returns what the
 * handler returned, and the logs the instance wrote while handling it.
 */
export async function invokeFunction(
  name: "images" | "events" | "cleanup",
  event: unknown,
  env: Record<string, string> = {},
): Promise<{ result: any; logs: Record<string, any>[] }> {
  if (!BUNDLED) {
    if (Object.keys(env).length === 0) {
      const module = (await import(`../../functions/${name}.ts`)) as { handler(event: unknown): Promise<unknown> };
      return { result: await module.handler(event), logs: [] };
    }
    // Settings of its own: a fresh module scope that reads them (as startSource does), disconnected afterwards.
    const saved = { ...process.env };
    Object.assign(process.env, env);
    vi.resetModules();
    try {
      const module = (await import(`../../functions/${name}.ts`)) as { handler(event: unknown): Promise<unknown> };
      (await import("../../src/platform/config.ts")).config();
      process.env = saved;
      const result = await module.handler(event);
      await (await import("../../src/platform/db.ts")).disconnectDb();
      return { result, logs: [] };
    } finally {
      process.env = saved;
      // Modules configured with these settings must not serve a later invocation that asked for none.
      vi.resetModules();
    }
  }
  const key = JSON.stringify([name, env]);
  const pool = warmFunctions.get(key) ?? [];
  warmFunctions.set(key, pool);
  // An instance that exited (or was killed by a signal: no exit code then) is never reused.
  const alive = (candidate: FunctionInstance) =>
    candidate.child.exitCode === null && candidate.child.signalCode === null;
  let instance = pool.find((candidate) => !candidate.busy && alive(candidate));
  if (!instance) {
    instance = startFunction(name, env);
    pool.push(instance);
  }
  instance.busy = true;
  try {
    return await instance.invoke(event);
  } finally {
    instance.busy = false;
  }
}

interface FunctionInstance {
  child: ChildProcess;
  busy: boolean;
  invoke(event: unknown): Promise<{ result: any; logs: Record<string, any>[] }>;
}

/** Bundled function instances kept warm, by function and settings; stopped after the test file. */
const warmFunctions = new Map<string, FunctionInstance[]>();

function stopFunctions(): void {
  for (const pool of warmFunctions.values()) for (const instance of pool) instance.child.kill();
  warmFunctions.clear();
}

function startFunction(name: string, env: Record<string, string>): FunctionInstance {
  // Lambda's runtime loop, reduced: each event arrives as a message, the handler's result (or error) goes back.
  const script =
    `const { handler } = await import(${JSON.stringify(`${bundle()}/${name}.mjs`)});` +
    `process.on("message", async (event) => { try { process.send({ result: await handler(event) }); }` +
    ` catch (error) { process.send({ error: String(error?.stack ?? error) }); } });` +
    `process.send({ ready: true });`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
    cwd: bundle(),
    env: bundledEnv(env),
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  let logs: Record<string, any>[] = [];
  createInterface({ input: child.stdout as NonNullable<typeof child.stdout> }).on("line", (line) =>
    collect(logs)(line),
  );
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<never>((_, reject) =>
    child.once("exit", (code) => reject(new Error(`${name}.mjs exited (code ${code}):\n${stderr}`))),
  );
  exited.catch(() => undefined);
  const next = () =>
    Promise.race([
      new Promise<{ ready?: true; result?: unknown; error?: string }>((resolve) =>
        child.once("message", resolve as never),
      ),
      exited,
    ]);
  const ready = next();
  return {
    child,
    busy: false,
    async invoke(event) {
      await ready;
      logs = [];
      const reply = next();
      child.send(event as never);
      const { result, error } = await reply;
      if (error) throw new Error(`${name}.mjs failed:\n${error}`);
      return { result, logs };
    },
  };
}
