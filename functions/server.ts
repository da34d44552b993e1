// Container entry (Knative, Cloud Run, any Kubernetes, a VM): the same function over Node's HTTP server.
// GET /health answers while the process lives; GET /ready only while it can serve (database reachable, not
// shutting down). On SIGTERM it stops taking requests, lets those in flight finish, then closes its pools.
import { createServer } from "node:http";
import { createServerAdapter } from "@whatwg-node/server";
import { closeCache } from "../src/cache.ts";
import { db, disconnectDb } from "../src/db.ts";
import { logger } from "../src/logger.ts";
import { fetch } from "./graphql.ts";

const port = Number(process.env.PORT ?? 8080);
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

const adapter = createServerAdapter<{ req: { socket: { remoteAddress?: string } } }>((request, { req }) =>
  new URL(request.url).pathname === "/ready" ? ready() : fetch(request, { remoteAddress: req.socket.remoteAddress }),
);
const server = createServer(adapter);
server.keepAliveTimeout = 65_000; // longer than the usual load balancer idle timeout (60 s)

server.listen(port, () => logger().info({ port }, "server: listening"));

async function shutdown(signal: string) {
  if (shuttingDown) return;
  shuttingDown = true;
  logger().info({ signal }, "server: draining");
  const forced = setTimeout(() => server.closeAllConnections(), drainMs);
  forced.unref();
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
  await Promise.allSettled([disconnectDb(), closeCache()]);
  logger().info("server: stopped");
  process.exit(0);
}

process.once("SIGTERM", () => void shutdown("SIGTERM"));
process.once("SIGINT", () => void shutdown("SIGINT"));
