// Container entry (Knative, Cloud Run, any Kubernetes, a VM): the same function over Node's HTTP server.
// GET /health answers while the process lives; GET /ready only while it can serve (database reachable, not
// shutting down). On SIGTERM it reports not ready, waits SHUTDOWN_DELAY_MS for load balancers to notice
// (plain Kubernetes needs a few seconds; Knative and Cloud Run drain before the signal), stops accepting
// connections, lets requests in flight finish (up to SHUTDOWN_DRAIN_MS), then closes its pools. Under more load than
// it can serve it refuses the excess quickly (MAX_CONCURRENT_REQUESTS, MAX_QUEUED_REQUESTS, MAX_QUEUE_WAIT_MS).
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServerAdapter } from "@whatwg-node/server";
import { closeCache } from "../src/caching/store.ts";
import { closePubSub } from "../src/events/pubsub.ts";
import { closePublisher } from "../src/events/stream.ts";
import { createShedder, overloaded } from "../src/http/load-shedding.ts";
import { config } from "../src/platform/config.ts";
import { db, disconnectDb } from "../src/platform/db.ts";
import { logger, logStartupFailure } from "../src/platform/logger.ts";
import { shutdownTelemetry } from "../src/platform/telemetry.ts";

// The function's module scope validates the configuration and reads secrets: a failure there is one clear
// log line and exit code 1, not an uncaught exception printing a minified line of the bundle.
const { fetch } = await import("./graphql.ts").catch((error: unknown) => {
  logStartupFailure(error);
  process.exit(1);
});

const port = Number(process.env.PORT ?? 8080);
const delayMs = Number(process.env.SHUTDOWN_DELAY_MS ?? 0);
const drainMs = Number(process.env.SHUTDOWN_DRAIN_MS ?? 20_000);
let shuttingDown = false;

async function ready(): Promise<Response> {
  if (shuttingDown) return Response.json({ status: "shutting down" }, { status: 503 });
  try {
    await db().$queryRaw`SELECT 1`;
    return Response.json({ status: "ready" });
  } catch {
    return Response.json({ status: "database unreachable" }, { status: 503 });
  }
}

// Bounded concurrency with a short queue (src/http/load-shedding.ts): the excess is refused at once with 503.
// Every request that does work is admitted this way, whatever it accepts (Yoga serves queries and mutations over
// Server-Sent Events too); only health and readiness are never queued. A request that may answer with a stream
// (`text/event-stream`, `multipart/mixed`) also needs one of MAX_OPEN_STREAMS places, which it holds until the
// stream ends: its request slot is given back once the response has started, as it waits for events rather than
// working.
const shedder = createShedder({
  concurrency: Number(process.env.MAX_CONCURRENT_REQUESTS ?? 64),
  queue: Number(process.env.MAX_QUEUED_REQUESTS ?? 64),
  waitMs: Number(process.env.MAX_QUEUE_WAIT_MS ?? 1_000),
});
const streams = createShedder({ concurrency: Number(process.env.MAX_OPEN_STREAMS ?? 1_000), queue: 0, waitMs: 0 });
const STREAMING = /text\/event-stream|multipart\/mixed/i;

const adapter = createServerAdapter<{ req: IncomingMessage; res: ServerResponse }>(async (request, { req, res }) => {
  const path = new URL(request.url).pathname;
  if (path === "/ready") return ready();
  const serve = () => fetch(request, { remoteAddress: req.socket.remoteAddress });
  if (path === "/health") return serve();
  const refuse = (what: "request" | "stream") => {
    logger().warn(
      { running: shedder.running, waiting: shedder.waiting, streams: streams.running },
      `server: overloaded, ${what} refused`,
    );
    return overloaded();
  };
  const stream = STREAMING.test(request.headers.get("accept") ?? "") ? await streams.admit() : undefined;
  if (stream === null) return refuse("stream");
  const release = await shedder.admit();
  if (!release) {
    stream?.();
    return refuse("request");
  }
  // The stream's place is held until its response is over: sent to the end, or its client gone.
  if (stream) res.once("close", stream);
  try {
    return await serve();
  } finally {
    release();
  }
});
const server = createServer(adapter);
server.keepAliveTimeout = 65_000; // longer than the usual load balancer idle timeout (60 s)

server.once("error", (error: NodeJS.ErrnoException) => {
  logStartupFailure(error.code === "EADDRINUSE" ? new Error(`port ${port} is in use: set PORT to a free one`) : error);
  process.exit(1);
});
server.listen(port, () => {
  const address = server.address();
  logger().info({ port: typeof address === "object" ? address?.port : port }, "server: listening");
});

// A long-running process can also turn events into notifications (EVENTS_RUNNER=true): one member of the
// consumer group per replica. Function deployments use functions/events.ts instead.
const events = new AbortController();
const runner = config().events.runner
  ? import("../src/workers/runner.ts").then(({ runEvents }) => runEvents(events.signal))
  : Promise.resolve();

async function shutdown(signal: string) {
  if (shuttingDown) return;
  shuttingDown = true;
  logger().info({ signal, delayMs }, "server: shutting down");
  if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
  logger().info("server: draining");
  const forced = setTimeout(() => server.closeAllConnections(), drainMs);
  forced.unref();
  // Keep-alive connections become idle as their last request finishes: close each as soon as it does.
  const idle = setInterval(() => server.closeIdleConnections(), 50);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  clearInterval(idle);
  events.abort();
  await runner;
  closePubSub();
  await Promise.allSettled([disconnectDb(), closeCache(), closePublisher(), shutdownTelemetry()]);
  logger().info("server: stopped");
  process.exit(0);
}

process.once("SIGTERM", () => void shutdown("SIGTERM"));
process.once("SIGINT", () => void shutdown("SIGINT"));
