// `npm run dev`: serves the GraphQL function on http://localhost:4000/graphql with GraphiQL.
// `npm run gateway` (`--gateway`): serves the bundled function through the local API Gateway emulator instead
// (scripts/gateway.ts): one process per function instance, cold and warm starts, Lambda's report lines.
// Whatever is not configured runs embedded: PostgreSQL (@prisma/dev, data kept between runs,
// migrated and seeded on start), object storage (s3rver on disk in .shutter/s3) and the cache (in-process).
// Set DATABASE_URL, REDIS_URL or S3_BUCKET (and S3_*) to use real services instead.
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createServer } from "node:http";
import { createServerAdapter } from "@whatwg-node/server";

const root = new URL("..", import.meta.url);
const port = Number(process.env.PORT ?? 4000);
const say = (message: string) => console.log(`[dev] ${message}`);

/** Runs a tooling script to completion, its output shown as it goes. */
function step(label: string, script: string, args: string[]): Promise<void> {
  say(`${label}…`);
  // Asynchronous on purpose: the embedded database lives in this process and must keep serving meanwhile.
  const child = spawn(process.execPath, [new URL(script, root).pathname, ...args], {
    cwd: root.pathname,
    env: process.env,
    stdio: ["ignore", "inherit", "inherit"],
  });
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${label} failed (exit code ${code})`))));
  });
}

async function embeddedDatabase() {
  const { startPrismaDevServer } = await import("@prisma/dev");
  const server = await startPrismaDevServer({ name: "shutter", persistenceMode: "stateful" });
  process.env.DATABASE_URL = server.database.connectionString;
  // PGlite serves one connection at a time behind a multiplexer: keep the pool small.
  process.env.DATABASE_POOL_MAX ??= "1";
  return server;
}

async function embeddedStorage() {
  const { default: S3rver } = await import("s3rver");
  const directory = new URL(".shutter/s3", root).pathname;
  mkdirSync(directory, { recursive: true });
  const bucket = "shutter-dev";
  const cors = `<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>
    <AllowedMethod>PUT</AllowedMethod><AllowedHeader>*</AllowedHeader></CORSRule></CORSConfiguration>`;
  const server = new S3rver({
    port: 0,
    address: "127.0.0.1",
    silent: true,
    directory,
    configureBuckets: [{ name: bucket, configs: [cors] }],
  });
  const { port: s3Port } = (await server.run()) as { port: number };
  Object.assign(process.env, {
    S3_BUCKET: bucket,
    S3_ENDPOINT: `http://127.0.0.1:${s3Port}`,
    S3_FORCE_PATH_STYLE: "true",
    S3_ACCESS_KEY_ID: "S3RVER",
    S3_SECRET_ACCESS_KEY: "S3RVER",
  });
  return server;
}

async function main() {
  const closers: (() => Promise<unknown>)[] = [];
  const backends: string[] = [];

  const embedded = !process.env.DATABASE_URL;
  if (process.env.DATABASE_URL) backends.push("PostgreSQL: DATABASE_URL");
  else {
    const db = await embeddedDatabase();
    closers.push(() => db.close());
    backends.push(`PostgreSQL: embedded (@prisma/dev "shutter", kept between runs, ${process.env.DATABASE_URL})`);
  }
  if (process.env.S3_BUCKET) backends.push(`object storage: S3 bucket ${process.env.S3_BUCKET}`);
  else {
    const s3 = await embeddedStorage();
    closers.push(() => s3.close());
    backends.push(`object storage: embedded (s3rver, files in .shutter/s3, ${process.env.S3_ENDPOINT})`);
  }
  backends.push(process.env.REDIS_URL ? "cache: Redis (REDIS_URL)" : "cache: in-process (single instance only)");

  await step("migrating", "prisma/engine.mjs", ["migrate", "deploy"]);
  await step("seeding (when empty)", "prisma/seed.ts", ["--if-empty"]);

  if (process.argv.includes("--gateway")) return serveThroughGateway(backends, closers, embedded);

  // Imported only now: the function reads its configuration (set above) at module scope.
  const { fetch } = await import("../functions/graphql.ts");
  // Notifications come from the events runner: in development it runs in this process.
  const { runEvents } = await import("../functions/events.ts");
  const events = new AbortController();
  const runner = runEvents(events.signal);
  const server = createServer(
    createServerAdapter<{ req: { socket: { remoteAddress?: string } } }>((request, { req }) =>
      fetch(request, { remoteAddress: req.socket.remoteAddress }),
    ),
  );
  server.listen(port, () => {
    for (const backend of backends) say(backend);
    say(`GraphiQL: http://localhost:${port}/graphql`);
    say("sign in with any seeded handle (e.g. from explore) and the password shutter-demo");
  });

  const shutdown = async () => {
    say("shutting down");
    server.close();
    events.abort();
    await runner;
    const { disconnectDb } = await import("../src/db.ts");
    await disconnectDb();
    await Promise.allSettled(closers.map((close) => close()));
    process.exit(0);
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}

async function serveThroughGateway(backends: string[], closers: (() => Promise<unknown>)[], embedded: boolean) {
  await step("bundling", "scripts/build.ts", []);
  const { startGateway } = await import("./gateway.ts");
  // The embedded PostgreSQL serves one connection at a time: with it, one instance.
  const maxInstances = embedded ? 1 : Number(process.env.GATEWAY_MAX_INSTANCES ?? 10);
  const gateway = await startGateway({
    module: new URL("../dist/functions/graphql.mjs", import.meta.url).pathname,
    port,
    maxInstances,
    idleTimeoutMs: Number(process.env.GATEWAY_IDLE_TIMEOUT_MS ?? 300_000),
    timeoutMs: Number(process.env.GATEWAY_TIMEOUT_MS ?? 29_000),
    env: { ...process.env, LOG_FORMAT: process.env.LOG_FORMAT ?? "json" },
  });
  for (const backend of backends) say(backend);
  say(`API Gateway emulator: ${gateway.url}/graphql (at most ${maxInstances} instances)`);
  // On AWS a queue and a schedule run the events function; here, `npm run events` does its job.
  say("notifications: run `npm run events` alongside to turn events into notifications");
  const shutdown = async () => {
    await gateway.close();
    await Promise.allSettled(closers.map((close) => close()));
    process.exit(0);
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}

await main();
