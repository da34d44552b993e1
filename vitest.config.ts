import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // graphql 16 ships CJS (`main`) and ESM (`module`): Node loads the CJS one for our dependencies, Vite would
    // give our code the ESM one, and two copies of graphql refuse each other's schema objects.
    alias: [{ find: /^graphql$/, replacement: "graphql/index.js" }],
  },
  test: {
    // Tests about Redis itself (two instances sharing it, Redis outages) need a Redis server: they run
    // whenever REDIS_URL is set (always in CI). Everything else runs with or without services.
    include: ["test/**/*.test.ts"],
    // Tests of what a real S3 enforces on presigned URLs (test/*.s3.test.ts) need one that checks signatures:
    // scripts/ceph-s3.sh starts Ceph's RADOS Gateway and sets S3_ENFORCES_SIGNATURES (CI does).
    exclude: [
      ...(process.env.REDIS_URL ? [] : ["test/**/*.redis.test.ts"]),
      ...(process.env.S3_ENFORCES_SIGNATURES === "true" ? [] : ["test/**/*.s3.test.ts"]),
      // Tests behind a transaction-mode pooler need one: scripts/pgbouncer.sh starts PgBouncer (CI does).
      ...(process.env.PGBOUNCER_URL ? [] : ["test/**/*.pgbouncer.test.ts"]),
      // The benchmark's smoke run creates a database on a real server and measures against a real Redis.
      ...(process.env.DATABASE_URL && process.env.REDIS_URL ? [] : ["test/**/*.services.test.ts"]),
    ],
    globalSetup: ["test/global-setup.ts"],
    setupFiles: ["test/setup.ts"],
    // One process per test file: each gets its own database, environment and module-scope init.
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
