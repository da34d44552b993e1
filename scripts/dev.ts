// `npm run dev`: serves the GraphQL function on http://localhost:4000/graphql with GraphiQL.
// `npm run gateway` (`--gateway`): serves the bundled function through the local API Gateway emulator instead
// (scripts/gateway.ts): one process per function instance, cold and warm starts, Lambda's report lines;
// `npm run gateway -- --streaming` as a REST API's streaming integration (the streaming handler).
// Whatever is not configured runs embedded: PostgreSQL (a real server, scripts/embedded-postgres.ts, its data
// kept between runs in .shutter/postgres, migrated and seeded on start), object storage (s3rver on disk in
// .shutter/s3) and the cache (in-process). Set DATABASE_URL, REDIS_URL or S3_BUCKET (and S3_*) to use real services
// instead. Each checkout has its own embedded database (in its own folder), so several checkouts can run side by
// side; without PORT, a busy 4000 gives way to the next free port.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createServerAdapter } from "@whatwg-node/server";
import pg from "pg";
import { photoBucketCorsRule } from "../infra/bucket-cors.ts";

const root = new URL("..", import.meta.url);
const say = (message: string) => console.log(`[dev] ${message}`);

/** Why `npm run dev` stopped, in one line, and where the details are (never a screen of library code). */
class DevError extends Error {}

/** Runs a tooling script to completion, its output shown as it goes. */
function step(label: string, script: string, args: string[]): Promise<void> {
  say(`${label}…`);
  // Asynchronous on purpose: this process serves the embedded S3 meanwhile (the seed uploads photos to it).
  const child = spawn(process.execPath, [new URL(script, root).pathname, ...args], {
    cwd: root.pathname,
    env: process.env,
    stdio: ["ignore", "inherit", "inherit"],
  });
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) =>
      code === 0 ? resolve() : reject(new DevError(`${label} failed (exit code ${code}), as printed above`)),
    );
  });
}

/** What was started, stopped in reverse order on the way out (a failed start included). */
const closers: (() => Promise<unknown>)[] = [];
async function closeAll() {
  for (const close of closers.splice(0).reverse()) await close().catch(() => {});
}

async function embeddedDatabase(): Promise<number> {
  const { EmbeddedPostgresError, isAlive, runningServer, startEmbeddedPostgres, stopServer } = await import(
    "./embedded-postgres.ts"
  );
  const dataDir = new URL(".shutter/postgres", root).pathname;
  // Which `npm run dev` uses this checkout's database: a second one must not start (or stop) it.
  const owner = new URL(".shutter/dev.pid", root).pathname;
  const server = runningServer(dataDir);
  if (server) {
    const pid = existsSync(owner) ? Number(readFileSync(owner, "utf8")) : 0;
    if (pid && isAlive(pid)) throw new DevError(alreadyRunning(pid));
    say(`stopping the embedded PostgreSQL that an ended \`npm run dev\` left running (process ${server})`);
    await stopServer(server);
  }
  mkdirSync(new URL(".shutter/", root), { recursive: true });
  writeFileSync(owner, String(process.pid));
  closers.push(async () => rmSync(owner, { force: true }));
  const db = await startEmbeddedPostgres({ dataDir, detached: true, progress: say }).catch((error: Error) => {
    // Two starts at the same moment: the second finds the first's lock file.
    if (/postmaster\.pid/.test(error.message)) throw new DevError(alreadyRunning());
    throw error instanceof EmbeddedPostgresError ? new DevError(error.message) : error;
  });
  closers.push(() => db.stop());
  // The app's own database in the cluster (`postgres` stays the maintenance database).
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  const { rowCount } = await admin.query("SELECT 1 FROM pg_database WHERE datname = 'shutter'");
  if (!rowCount) await admin.query("CREATE DATABASE shutter");
  await admin.end();
  process.env.DATABASE_URL = Object.assign(new URL(db.url), { pathname: "/shutter" }).href;
  return db.version;
}

const alreadyRunning = (pid?: number) =>
  `this checkout's embedded PostgreSQL (.shutter/postgres) is in use by another \`npm run dev\`${pid ? ` (process ${pid})` : ""}: stop it, or set DATABASE_URL to use another database.`;

async function embeddedStorage() {
  const { default: S3rver } = await import("s3rver");
  const directory = new URL(".shutter/s3", root).pathname;
  mkdirSync(directory, { recursive: true });
  const bucket = "shutter-dev";
  const server = new S3rver({
    port: 0,
    address: "127.0.0.1",
    silent: true,
    directory,
    configureBuckets: [{ name: bucket }],
  });
  const { port: s3Port } = (await server.run()) as { port: number };
  Object.assign(process.env, {
    S3_BUCKET: bucket,
    S3_ENDPOINT: `http://127.0.0.1:${s3Port}`,
    S3_FORCE_PATH_STYLE: "true",
    S3_ACCESS_KEY_ID: "S3RVER",
    S3_SECRET_ACCESS_KEY: "S3RVER",
  });
  // Browser apps upload straight to the bucket: the same CORS rule as the AWS stack's, for any origin.
  const { S3Client, PutBucketCorsCommand } = await import("@aws-sdk/client-s3");
  const client = new S3Client({
    region: "us-east-1",
    endpoint: process.env.S3_ENDPOINT,
    forcePathStyle: true,
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
  });
  await client.send(
    new PutBucketCorsCommand({ Bucket: bucket, CORSConfiguration: { CORSRules: [photoBucketCorsRule([])] } }),
  );
  client.destroy();
  return server;
}

async function main() {
  // A bad setting is reported before anything starts (what the embedded services will provide stands in).
  const { loadConfig } = await import("../src/platform/config.ts");
  try {
    loadConfig({ DATABASE_URL: "postgresql://embedded", ...process.env });
  } catch (error) {
    throw new DevError((error as Error).message);
  }
  const backends: string[] = [];

  if (process.env.DATABASE_URL) backends.push("PostgreSQL: DATABASE_URL");
  else {
    const version = await embeddedDatabase();
    backends.push(`PostgreSQL: embedded (PostgreSQL ${version}, data in .shutter/postgres, kept between runs)`);
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

  if (process.argv.includes("--gateway")) return serveThroughGateway(backends);

  // Imported only now: the function reads its configuration (set above) at module scope.
  const { fetch } = await import("../functions/graphql.ts").catch((error: Error) => {
    throw new DevError(error.message);
  });
  // Notifications come from the events runner: in development it runs in this process.
  const { runEvents } = await import("../functions/events.ts");
  const events = new AbortController();
  const runner = runEvents(events.signal);
  const server = createServer(
    createServerAdapter<{ req: { socket: { remoteAddress?: string } } }>((request, { req }) =>
      fetch(request, { remoteAddress: req.socket.remoteAddress }),
    ),
  );
  const port = await listen(server);
  for (const backend of backends) say(backend);
  say(`GraphiQL: http://localhost:${port}/graphql`);
  say("sign in with any seeded handle (e.g. from explore) and the password shutter-demo");

  const shutdown = async () => {
    say("shutting down");
    server.close();
    events.abort();
    await runner;
    const { disconnectDb } = await import("../src/platform/db.ts");
    await disconnectDb();
    await closeAll();
    process.exit(0);
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}

/**
 * Listens on PORT, or on 4000 when it is not set and, if another process holds 4000 (another checkout's dev
 * server), on the next free port. @returns the port.
 */
async function listen(server: Server): Promise<number> {
  const wanted = process.env.PORT ? Number(process.env.PORT) : undefined;
  for (let port = wanted ?? 4000; ; port++) {
    const error = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      server.once("error", resolve);
      server.listen(port, () => {
        server.off("error", resolve);
        resolve(undefined);
      });
    });
    if (!error) {
      if (port !== (wanted ?? 4000)) say(`port ${wanted ?? 4000} is in use (another checkout?): using ${port}`);
      return (server.address() as AddressInfo).port;
    }
    if (error.code !== "EADDRINUSE") throw error;
    if (wanted !== undefined || port >= 4010) {
      throw new DevError(`port ${port} is in use: set PORT to a free one (PORT=4001 npm run dev)`);
    }
  }
}

async function serveThroughGateway(backends: string[]) {
  await step("bundling", "scripts/build.ts", []);
  const { startGateway } = await import("./gateway.ts");
  const maxInstances = Number(process.env.GATEWAY_MAX_INSTANCES ?? 10);
  // `--streaming`: as the REST API's streaming integration invokes the streaming handler (docs/deploy.md).
  const streaming = process.argv.includes("--streaming");
  const gateway = await startGateway({
    module: new URL("../dist/functions/graphql.mjs", import.meta.url).pathname,
    ...(streaming ? { handler: "streamingHandler", streaming, payloadFormat: "1.0" as const } : {}),
    port: Number(process.env.PORT ?? 4000),
    maxInstances,
    idleTimeoutMs: Number(process.env.GATEWAY_IDLE_TIMEOUT_MS ?? 300_000),
    timeoutMs: Number(process.env.GATEWAY_TIMEOUT_MS ?? 29_000),
    env: { ...process.env, LOG_FORMAT: process.env.LOG_FORMAT ?? "json" },
  });
  for (const backend of backends) say(backend);
  say(
    `API Gateway emulator${streaming ? ", streaming" : ""}: ${gateway.url}/graphql (at most ${maxInstances} instances)`,
  );
  // On AWS a queue and a schedule run the events function; here, `npm run events` does its job.
  say("notifications: run `npm run events` alongside to turn events into notifications");
  const shutdown = async () => {
    await gateway.close();
    await closeAll();
    process.exit(0);
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}

await main().catch(async (error: Error) => {
  await closeAll();
  // Expected failures say what to do; anything else is summed up in a line, its details kept in a file.
  if (error instanceof DevError) say(`cannot start: ${error.message}`);
  else {
    const log = new URL(".shutter/dev-error.log", root).pathname;
    mkdirSync(new URL(".shutter/", root), { recursive: true });
    writeFileSync(log, `${new Date().toISOString()}\n${error.stack ?? error}\n`);
    say(`cannot start: ${error.message.split("\n")[0]} (details in ${log})`);
  }
  process.exit(1);
});
