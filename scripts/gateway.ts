// A local API Gateway in front of the bundled function, behaving like the platform:
// - each HTTP request becomes an API Gateway event (HTTP API payload 2.0 by default, or REST API payload 1.0),
//   invoked on a pool of function instances (child processes
//   running dist/functions/graphql.mjs); an instance handles one invocation at a time;
// - a request with no idle instance starts a new one (cold start: its init runs first), up to `maxInstances`;
//   beyond that, requests wait for an instance to free up;
// - idle instances are reused (warm) and reaped after `idleTimeoutMs`;
// - an invocation over `timeoutMs` is answered 504 and its instance discarded, as Lambda discards a timed-out
//   sandbox; requests over 10 MB are refused (413), responses over 6 MB fail (502), the platform's limits;
// - every invocation logs START/END/REPORT lines like Lambda's, with Init Duration on cold starts;
// - in streaming mode (`streaming`), as a REST API's streaming integration or a function URL in RESPONSE_STREAM
//   mode: the handler gets a response stream, and what it writes reaches the client as it is written.
// `npm run gateway` serves it on :4000 (embedded services as for `npm run dev` when nothing is configured).
import { type ChildProcess, fork } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";

export interface GatewayOptions {
  /** The bundled handler module (npm run build). */
  module: string;
  handler?: string;
  port?: number;
  maxInstances?: number;
  idleTimeoutMs?: number;
  timeoutMs?: number;
  memorySizeMb?: number;
  /** Start instances with the V8 flags Lambda's runtime gives Node.js for `memorySizeMb` (heap sizes, --expose-gc). */
  lambdaNodeFlags?: boolean;
  /** Environment of the instances (the function's configuration). */
  env?: Record<string, string | undefined>;
  /** The event shape: HTTP API (payload format 2.0, the default) or REST API (1.0). */
  payloadFormat?: "2.0" | "1.0";
  /**
   * Response streaming (a REST API's `response-streaming-invocations` integration with payload 1.0, or a function
   * URL in RESPONSE_STREAM mode with 2.0): the function is invoked with a response stream and what it writes is sent
   * as it comes — a metadata prelude (status, headers, cookies) and 8 NUL bytes, then the body.
   */
  streaming?: boolean;
  log?: (line: string) => void;
  /** Receives what the instances write to stdout and stderr, line by line (default: this process's output). */
  output?: (line: string) => void;
}

interface Instance {
  id: number;
  child: ChildProcess;
  busy: boolean;
  lastUsed: number;
  initMs: number;
  invocations: number;
  dead: boolean;
}

export interface Invocation {
  requestId: string;
  instance: number;
  cold: boolean;
  initMs?: number;
  durationMs: number;
  status: number;
}

const REQUEST_LIMIT = 10 * 1024 * 1024;
const RESPONSE_LIMIT = 6 * 1024 * 1024;
const runtime = new URL("./lambda-runtime.ts", import.meta.url).pathname;

export async function startGateway(options: GatewayOptions) {
  const {
    module,
    handler = "handler",
    maxInstances = 10,
    idleTimeoutMs = 60_000,
    timeoutMs = 29_000,
    memorySizeMb = 1024,
    payloadFormat = "2.0",
    log = (line: string) => console.log(line),
    output,
  } = options;
  const instances: Instance[] = [];
  const waiting: ((instance: Instance) => void)[] = [];
  const invocations: Invocation[] = [];
  let nextId = 1;

  function discard(instance: Instance, why: string) {
    if (instance.dead) return;
    instance.dead = true;
    instance.child.kill("SIGKILL");
    instances.splice(instances.indexOf(instance), 1);
    log(`[gateway] instance ${instance.id} ${why} after ${instance.invocations} invocations`);
  }

  function startInstance(): Promise<Instance> {
    const child = fork(runtime, [], {
      env: {
        ...process.env,
        ...options.env,
        // As Lambda's runtime sets them (the function knows it runs on Lambda: metrics as EMF log lines).
        AWS_LAMBDA_FUNCTION_NAME: "shutter-graphql",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memorySizeMb),
      } as NodeJS.ProcessEnv,
      execArgv: [
        "--enable-source-maps",
        // Node.js as Lambda's runtime starts it (its bootstrap), when asked: the young generation a tenth of the
        // memory size, the old generation the rest, GC exposed.
        ...(options.lambdaNodeFlags
          ? [
              "--expose-gc",
              "--max-http-header-size=81920",
              `--max-semi-space-size=${Math.floor(memorySizeMb / 20)}`,
              `--max-old-space-size=${memorySizeMb - Math.floor(memorySizeMb / 10)}`,
            ]
          : []),
      ],
      stdio: ["ignore", output ? "pipe" : "inherit", output ? "pipe" : "inherit", "ipc"],
    });
    if (output) {
      for (const stream of [child.stdout, child.stderr])
        if (stream) createInterface({ input: stream }).on("line", output);
    }
    const instance: Instance = {
      id: nextId++,
      child,
      busy: true,
      lastUsed: Date.now(),
      initMs: 0,
      invocations: 0,
      dead: false,
    };
    instances.push(instance);
    child.on("exit", () => {
      if (!instance.dead) discard(instance, "exited");
    });
    return new Promise((resolve, reject) => {
      child.once("message", (message: { type: string; initMs?: number; message?: string }) => {
        if (message.type === "ready") {
          instance.initMs = message.initMs ?? 0;
          resolve(instance);
        } else {
          discard(instance, "failed to initialise");
          reject(new Error(message.message));
        }
      });
      child.send({ type: "init", module, handler });
    });
  }

  /** An idle instance (warm), a new one (cold), or the next one to free up. */
  async function acquire(): Promise<{ instance: Instance; cold: boolean }> {
    const idle = instances.find((i) => !i.busy && !i.dead);
    if (idle) {
      idle.busy = true;
      return { instance: idle, cold: false };
    }
    if (instances.length < maxInstances) return { instance: await startInstance(), cold: true };
    return { instance: await new Promise<Instance>((resolve) => waiting.push(resolve)), cold: false };
  }

  function release(instance: Instance) {
    instance.lastUsed = Date.now();
    const next = waiting.shift();
    if (next) next(instance);
    else instance.busy = false;
  }

  function invoke(instance: Instance, event: unknown, requestId: string, onStream?: (message: StreamMessage) => void) {
    return new Promise<{ result?: unknown; error?: string; durationMs: number; rss?: number; timedOut?: boolean }>(
      (resolve) => {
        const timer = setTimeout(() => {
          instance.child.off("message", onMessage);
          resolve({ timedOut: true, durationMs: timeoutMs });
        }, timeoutMs);
        const onMessage = (message: {
          type: string;
          id: string;
          result?: unknown;
          message?: string;
          durationMs: number;
          rss?: number;
        }) => {
          if (message.id !== requestId) return;
          if (message.type === "stream-start" || message.type === "chunk") {
            onStream?.(message as unknown as StreamMessage);
            return;
          }
          clearTimeout(timer);
          instance.child.off("message", onMessage);
          resolve({
            result: message.result,
            error: message.type === "error" ? message.message : undefined,
            durationMs: message.durationMs,
            rss: message.rss,
          });
        };
        instance.child.on("message", onMessage);
        instance.child.send({ type: "invoke", id: requestId, event, deadline: Date.now() + timeoutMs });
      },
    );
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += chunk.length;
      if (size > REQUEST_LIMIT) return reply(res, 413, { message: "Request Entity Too Large" });
      chunks.push(chunk);
    }
    const requestId = randomUUID();
    const body = Buffer.concat(chunks);
    const event = payloadFormat === "1.0" ? toEventV1(req, body, requestId) : toEvent(req, body, requestId);
    const { instance, cold } = await acquire().catch((error: Error) => {
      log(`[gateway] init failed: ${error.message}`);
      return { instance: undefined, cold: true };
    });
    if (!instance) return reply(res, 502, { message: "Internal Server Error" });
    log(`START RequestId: ${requestId} Version: $LATEST (${cold ? "cold" : "warm"}, instance ${instance.id})`);
    const streamed = options.streaming ? streamTo(res) : undefined;
    // A client that goes away closes the function's response stream (its next write fails), as on Lambda.
    if (streamed) {
      res.on("close", () => {
        if (!res.writableFinished && !instance.dead) instance.child.send({ type: "abort", id: requestId });
      });
    }
    const outcome = await invoke(instance, event, requestId, streamed?.take);
    instance.invocations++;
    const billed = Math.ceil(outcome.durationMs);
    const report =
      `REPORT RequestId: ${requestId}\tDuration: ${outcome.durationMs.toFixed(2)} ms\tBilled Duration: ${billed} ms\t` +
      `Memory Size: ${memorySizeMb} MB\tMax Memory Used: ${Math.round((outcome.rss ?? 0) / 1048576)} MB` +
      (cold ? `\tInit Duration: ${instance.initMs.toFixed(2)} ms` : "");
    let status: number;
    if (streamed?.started()) {
      // Sent as it came; a function that ran out of time or failed mid-stream has its stream cut.
      if (outcome.timedOut) {
        log(`${new Date().toISOString()} ${requestId} Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`);
        discard(instance, "timed out");
      } else release(instance);
      if (outcome.error) log(`${requestId} ERROR ${outcome.error}`);
      status = streamed.end(!outcome.timedOut && !outcome.error);
    } else if (streamed && !outcome.timedOut && !outcome.error) {
      // InvokeWithResponseStream of a function that returned instead of streaming: not the integration's format.
      log(`${requestId} ERROR the function returned a result instead of streaming one (awslambda.streamifyResponse)`);
      release(instance);
      status = reply(res, 502, { message: "Internal Server Error" });
    } else if (outcome.timedOut) {
      log(`${new Date().toISOString()} ${requestId} Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`);
      discard(instance, "timed out");
      status = reply(res, 504, { message: "Endpoint request timed out" });
    } else if (outcome.error) {
      log(`${requestId} ERROR ${outcome.error}`);
      release(instance);
      status = reply(res, 502, { message: "Internal Server Error" });
    } else {
      release(instance);
      const result = outcome.result as {
        statusCode: number;
        headers?: Record<string, string>;
        multiValueHeaders?: Record<string, string[]>;
        cookies?: string[];
        body?: string;
        isBase64Encoded?: boolean;
      };
      const body =
        result.body === undefined
          ? Buffer.alloc(0)
          : Buffer.from(result.body, result.isBase64Encoded ? "base64" : "utf8");
      if (body.length > RESPONSE_LIMIT) {
        log(`${requestId} ERROR response payload of ${body.length} bytes exceeds the 6 MB limit`);
        status = reply(res, 502, { message: "Internal Server Error" });
      } else {
        res.writeHead(result.statusCode, {
          ...result.headers,
          ...result.multiValueHeaders,
          ...(result.cookies?.length ? { "set-cookie": result.cookies } : {}),
        });
        res.end(body);
        status = result.statusCode;
      }
    }
    log(`END RequestId: ${requestId}`);
    log(report);
    invocations.push({
      requestId,
      instance: instance.id,
      cold,
      initMs: cold ? instance.initMs : undefined,
      durationMs: outcome.durationMs,
      status,
    });
  }

  const reaper = setInterval(
    () => {
      for (const instance of [...instances]) {
        if (!instance.busy && Date.now() - instance.lastUsed > idleTimeoutMs) discard(instance, "reaped (idle)");
      }
    },
    Math.min(1000, idleTimeoutMs),
  );
  reaper.unref();

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      log(`[gateway] ${String(error?.stack ?? error)}`);
      if (!res.headersSent) reply(res, 500, { message: "Internal Server Error" });
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    invocations,
    /** Invokes the function with an event as given (what a test shapes itself: an authorizer's claims, a
     * stage): the handler's result, as the platform would receive it. */
    async invoke(event: unknown): Promise<unknown> {
      const { instance } = await acquire();
      // A streaming function's stream, read whole: its prelude and body as a result would carry them.
      let contentType: string | undefined;
      const chunks: Buffer[] = [];
      const outcome = await invoke(instance, event, randomUUID(), (message) => {
        if (message.type === "stream-start") contentType = message.contentType;
        else chunks.push(Buffer.from(message.data, "base64"));
      });
      instance.invocations++;
      if (outcome.timedOut) discard(instance, "timed out");
      else release(instance);
      if (outcome.error || outcome.timedOut) throw new Error(outcome.error ?? "the invocation timed out");
      if (contentType === undefined) return outcome.result;
      const bytes = Buffer.concat(chunks);
      const end = contentType === PRELUDE ? bytes.indexOf(Buffer.alloc(8)) : -8;
      const metadata = end >= 0 ? JSON.parse(bytes.subarray(0, end).toString("utf8")) : { statusCode: 200 };
      return { ...metadata, body: bytes.subarray(end + 8).toString("utf8"), isBase64Encoded: false };
    },
    /** Process ids of the live instances (tests freeze and thaw them). */
    instancePids: () => instances.map((i) => i.child.pid as number),
    async close() {
      clearInterval(reaper);
      for (const instance of [...instances]) discard(instance, "stopped");
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

type StreamMessage = { type: "stream-start"; contentType: string } | { type: "chunk"; data: string };

const PRELUDE = "application/vnd.awslambda.http-integration-response";

/**
 * A streaming invocation's bytes to the client as they arrive: with the integration's content type, the metadata
 * prelude up to its 8 NUL bytes becomes the status line and headers, and the rest the body.
 */
function streamTo(res: ServerResponse) {
  let prelude: Buffer | undefined;
  let status = 200;
  return {
    take(message: StreamMessage) {
      if (message.type === "stream-start") {
        if (message.contentType === PRELUDE) prelude = Buffer.alloc(0);
        else res.writeHead(200, { "content-type": message.contentType });
        return;
      }
      let data: Buffer = Buffer.from(message.data, "base64");
      if (prelude) {
        prelude = Buffer.concat([prelude, data]);
        const end = prelude.indexOf(Buffer.alloc(8));
        if (end < 0) return;
        const metadata = JSON.parse(prelude.subarray(0, end).toString("utf8")) as {
          statusCode?: number;
          headers?: Record<string, string>;
          multiValueHeaders?: Record<string, string[]>;
          cookies?: string[];
        };
        status = metadata.statusCode ?? 200;
        res.writeHead(status, {
          ...metadata.headers,
          ...metadata.multiValueHeaders,
          ...(metadata.cookies?.length ? { "set-cookie": metadata.cookies } : {}),
        });
        data = prelude.subarray(end + 8);
        prelude = undefined;
      }
      if (data.length) res.write(data);
    },
    started: () => res.headersSent || prelude !== undefined,
    end(complete: boolean): number {
      if (!res.headersSent) {
        // The stream ended before its prelude was whole.
        return reply(res, 502, { message: "Internal Server Error" });
      }
      if (complete) res.end();
      else res.destroy();
      return status;
    },
  };
}

function reply(res: ServerResponse, status: number, body: unknown): number {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
  return status;
}

const TEXT = /^(text\/|application\/(json|graphql-response\+json|x-www-form-urlencoded|graphql))/;

/** The API Gateway REST API (payload 1.0) proxy event of a request: multi-value headers and query strings. */
export function toEventV1(req: IncomingMessage, body: Buffer, requestId: string) {
  const url = new URL(req.url ?? "/", "http://localhost");
  const multiValueHeaders: Record<string, string[]> = {};
  const add = (values: Record<string, string[]>, name: string, value: string) => {
    values[name] = [...(values[name] ?? []), value];
  };
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    add(multiValueHeaders, req.rawHeaders[i] as string, req.rawHeaders[i + 1] as string);
  }
  const multiValueQueryStringParameters: Record<string, string[]> = {};
  for (const [name, value] of url.searchParams) add(multiValueQueryStringParameters, name, value);
  const text = TEXT.test(req.headers["content-type"] ?? "text/plain");
  const last = (values: Record<string, string[]>) =>
    Object.fromEntries(Object.entries(values).map(([name, all]) => [name, all.at(-1) as string]));
  return {
    resource: "/{proxy+}",
    path: url.pathname,
    httpMethod: req.method ?? "GET",
    headers: last(multiValueHeaders),
    multiValueHeaders,
    queryStringParameters: url.search ? last(multiValueQueryStringParameters) : null,
    multiValueQueryStringParameters: url.search ? multiValueQueryStringParameters : null,
    pathParameters: { proxy: url.pathname.slice(1) },
    stageVariables: null,
    requestContext: {
      accountId: "000000000000",
      apiId: "local",
      domainName: req.headers.host ?? "localhost",
      httpMethod: req.method ?? "GET",
      identity: { sourceIp: req.socket.remoteAddress ?? "127.0.0.1", userAgent: req.headers["user-agent"] ?? "" },
      path: url.pathname,
      protocol: `HTTP/${req.httpVersion}`,
      requestId,
      requestTimeEpoch: Date.now(),
      resourcePath: "/{proxy+}",
      stage: "$default",
    },
    body: body.length ? body.toString(text ? "utf8" : "base64") : null,
    isBase64Encoded: body.length > 0 && !text,
  };
}

/** The API Gateway HTTP API (payload 2.0) event of a request. */
export function toEvent(req: IncomingMessage, body: Buffer, requestId: string) {
  const url = new URL(req.url ?? "/", "http://localhost");
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (name === "cookie" || value === undefined) continue;
    headers[name] = Array.isArray(value) ? value.join(",") : value;
  }
  const text = TEXT.test(headers["content-type"] ?? "text/plain");
  const now = new Date();
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    cookies: req.headers.cookie ? req.headers.cookie.split(/;\s*/) : undefined,
    headers,
    queryStringParameters: url.search ? Object.fromEntries(url.searchParams) : undefined,
    requestContext: {
      accountId: "000000000000",
      apiId: "local",
      domainName: headers.host ?? "localhost",
      domainPrefix: "local",
      http: {
        method: req.method ?? "GET",
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? "127.0.0.1",
        userAgent: headers["user-agent"] ?? "",
      },
      requestId,
      routeKey: "$default",
      stage: "$default",
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    body: body.length ? body.toString(text ? "utf8" : "base64") : undefined,
    isBase64Encoded: body.length > 0 && !text,
  };
}
