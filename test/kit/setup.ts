// Runs in each test file's process before the file is imported: gives the file its own database (a clone of the
// run's template, on the run's server: DATABASE_URL's or the embedded one) and the environment the function reads
// at module scope.
import { afterAll, inject } from "vitest";
import { closeInstances } from "./instances.ts";

// The replica projects' files get theirs on the primary of a pair with a streaming standby, and read through it.
const replicas = process.env.SHUTTER_ON_REPLICAS === "true" ? inject("replicaServers") : null;
if (process.env.SHUTTER_ON_REPLICAS === "true" && !replicas) throw new Error("no replica pair: scripts/pg-replica.sh");
const template = replicas?.template ?? inject("templateDatabase");
const serverUrl = replicas?.primary ?? inject("databaseServer");

Object.assign(process.env, {
  NODE_ENV: "test",
  // Each file's cache entries live under their own prefix in the shared Redis.
  REDIS_KEY_PREFIX: `test-${Math.random().toString(36).slice(2, 10)}`,
  LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
  LOG_FORMAT: "json",
  JWT_PRIVATE_KEY: inject("jwtPrivateKey"),
  ...inject("s3"),
});

{
  const pg = (await import("pg")).default;
  const name = `${template.replace(/_template$/, "")}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new URL(serverUrl);
  admin.pathname = "/postgres";
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  // Two files may clone the template at the same moment; PostgreSQL lets only one copy it at a time.
  for (let attempt = 0; ; attempt++) {
    try {
      await client.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`);
      break;
    } catch (error) {
      if (attempt > 50 || !String(error).includes("is being accessed by other users")) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 200));
    }
  }
  await client.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  process.env.DATABASE_URL = url.toString();
  if (replicas) {
    const standby = new URL(replicas.standby);
    standby.pathname = `/${name}`;
    process.env.DATABASE_REPLICA_URLS = standby.toString();
  }
  afterAll(async () => {
    const { disconnectDb } = await import("../../src/platform/db.ts");
    const { closeCache } = await import("../../src/caching/store.ts");
    await Promise.all([disconnectDb(), closeCache()]);
  });
}

// Registered last, so it runs first: the instances a file started go before its database does.
afterAll(closeInstances);
