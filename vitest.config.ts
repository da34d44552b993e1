import { existsSync } from "node:fs";
import { defineConfig, type TestProjectInlineConfiguration } from "vitest/config";

// One suite, several targets. Every file runs against the source (`source`); the end-to-end files (through
// HTTP or API Gateway events only) run again against the bundle as it deploys, in production configuration:
// behind the API Gateway emulator with HTTP API (payload 2.0) and REST API (payload 1.0) events, and as the
// container entry over HTTP. Select targets with `npm test -- --project <name>`; SHUTTER_TARGET tells a file
// which one it runs against (test/kit/instances.ts).
const EVERYWHERE = [
  "apollo",
  "auth",
  "authorization",
  "cache-peers",
  "clients",
  "corpus",
  "defer.browser",
  "engagement",
  "explore",
  "follows",
  "graphiql",
  "idempotency",
  "incremental",
  "masking",
  "notifications",
  "outages",
  "persisted",
  "persisted-deploy.redis",
  "photos",
  "posts",
  "redis-trouble.redis",
  "response-cache",
  "security",
  "smoke",
  "telemetry",
  "two-instances",
  "two-instances.redis",
  "upload.browser",
  "uploads",
  "uploads.s3",
  "users",
  "webhook",
];
/** API Gateway events: the Lambda handler's own concerns (payload shapes, authorizer claims). */
const LAMBDA_ONLY = ["lambda"];
/**
 * The Lambda handler with response streaming (`streamingHandler`): behind a REST API's streaming integration
 * (`lambda-stream`, payload 1.0) and a function URL in RESPONSE_STREAM mode (`lambda-url`, payload 2.0). What
 * streams, and what every client meets first; the rest of the suite is the buffered handler's, which shares it all.
 */
const STREAMING = [
  "incremental",
  "defer.browser",
  "lambda-subscriptions",
  "lambda-subscriptions.redis",
  "smoke",
  "clients",
  "apollo",
  "persisted",
  "masking",
  "security",
  // Subscriptions on Lambda need Redis (each invocation may be another instance): without it they are refused.
  ...(process.env.REDIS_URL ? ["subscriptions", "subscriptions.redis"] : []),
];
/**
 * Long-lived connections (Server-Sent Events) and the events runner: not on Lambda, which answers once per
 * invocation (its images function is tested everywhere: photos).
 */
const LONG_RUNNING_ONLY = ["photos-runner", "subscriptions", "subscriptions.redis"];
/**
 * What touches Redis in every way the app uses it (entity and response caches, rate limits, persisted queries,
 * pub/sub, locks, the events stream), run again on a Redis Cluster when scripts/redis-cluster.sh started one (REDIS_CLUSTER_URL):
 * the source target runs these; the bundled targets the files about instances sharing Redis.
 */
const ON_CLUSTER = [
  "auth",
  "cache",
  "changes",
  "engagement",
  "explore",
  "follows",
  "idempotency",
  "incremental",
  "notifications",
  "persisted",
  "persisted-deploy.redis",
  "photos-runner",
  "posts",
  "response-cache",
  "subscriptions",
  "subscriptions.redis",
  "timelines.redis",
  "two-instances",
  "two-instances.redis",
];
const ON_CLUSTER_BUNDLED = ["persisted-deploy.redis", "response-cache", "two-instances.redis"];
const CLUSTER_ENV = {
  REDIS_URL: process.env.REDIS_CLUSTER_URL ?? "",
  REDIS_CLUSTER: "true",
  REDIS_CLUSTER_NODES: process.env.REDIS_CLUSTER_OTHER_NODES ?? "",
  REDIS_WAIT_REPLICAS: "1",
};

// Test files are grouped by feature (test/<feature>/); a name is unique across them.
const files = (names: string[]) => names.map((name) => `test/*/${name}.test.ts`);

/** Each file of the projects below gets its own database and environment before it is imported. */
const setupFiles = ["test/kit/setup.ts"];

const bundled = (name: string, only: string[]): TestProjectInlineConfiguration => ({
  extends: true,
  test: { name, include: files([...EVERYWHERE, ...only]), setupFiles, env: { SHUTTER_TARGET: name } },
});

/**
 * On the cluster: the target's share of ON_CLUSTER, and (after everything else, one file at a time: it kills a
 * master) the failover under load.
 */
const onCluster = (target: string, names: string[], order: number): TestProjectInlineConfiguration[] => [
  {
    extends: true,
    test: {
      name: `cluster-${target}`,
      include: files(names),
      setupFiles,
      env: { SHUTTER_TARGET: target, ...CLUSTER_ENV },
    },
  },
  {
    extends: true,
    test: {
      name: `failover-${target}`,
      include: ["test/**/*.cluster.test.ts"],
      setupFiles,
      env: { SHUTTER_TARGET: target, ...CLUSTER_ENV },
      fileParallelism: false,
      // One target's failover at a time, after every other group.
      sequence: { groupOrder: order },
    },
  },
];

/**
 * On a primary with a streaming standby (scripts/pg-replica.sh: REPLICA_PRIMARY_URL), reads going to the replica:
 * these files again, and (after everything else, one at a time: they pause and stop the standby) the replica's own.
 */
const ON_REPLICAS = ["cache", "engagement", "follows", "posts", "response-cache", "two-instances", "users"];
const onReplicas = (): TestProjectInlineConfiguration[] => [
  {
    extends: true,
    test: {
      name: "replicas-source",
      include: files(ON_REPLICAS),
      setupFiles,
      env: { SHUTTER_TARGET: "source", SHUTTER_ON_REPLICAS: "true" },
    },
  },
  {
    extends: true,
    test: {
      name: "replica-lag",
      include: ["test/**/*.replica.test.ts"],
      setupFiles,
      env: { SHUTTER_TARGET: "source", SHUTTER_ON_REPLICAS: "true" },
      fileParallelism: false,
      sequence: { groupOrder: 5 },
    },
  },
];

const resolve = {
  // graphql 16 ships CJS (`main`) and ESM (`module`): Node loads the CJS one for our dependencies, Vite would
  // give our code the ESM one, and two copies of graphql refuse each other's schema objects.
  alias: [{ find: /^graphql$/, replacement: "graphql/index.js" }],
};

export default defineConfig({
  resolve,
  test: {
    // Tests of what needs a service run when it is there (CI starts them all); the runner lists what it left out.
    exclude: [
      // Redis itself (two instances sharing it, Redis outages): whenever REDIS_URL is set.
      ...(process.env.REDIS_URL ? [] : ["test/**/*.redis.test.ts"]),
      // What a real S3 enforces on presigned URLs needs one that checks signatures: scripts/ceph-s3.sh starts
      // Ceph's RADOS Gateway and sets S3_ENFORCES_SIGNATURES.
      ...(process.env.S3_ENFORCES_SIGNATURES === "true" ? [] : ["test/**/*.s3.test.ts"]),
      // Tests behind a transaction-mode pooler need one: scripts/pgbouncer.sh starts PgBouncer.
      ...(process.env.PGBOUNCER_URL ? [] : ["test/**/*.pgbouncer.test.ts"]),
      // The benchmark's smoke run creates a database on a real server and measures against a real Redis.
      ...(process.env.DATABASE_URL && process.env.REDIS_URL ? [] : ["test/**/*.measured.test.ts"]),
      // A real browser: Debian's Chromium (CI installs it; CHROMIUM_PATH elsewhere), driven by playwright-core.
      ...(existsSync(process.env.CHROMIUM_PATH ?? "/usr/bin/chromium") ? [] : ["test/**/*.browser.test.ts"]),
    ],
    globalSetup: ["test/kit/global-setup.ts"],
    // One process per test file: each gets its own database, environment and module-scope init.
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      // The fast layer: rules that need nothing running (no database, no function instance, no set-up), in
      // seconds: `npm run test:unit` while changing them (the global set-up sees it is alone and does nothing).
      {
        resolve,
        test: { name: "unit", include: ["test/**/*.unit.test.ts"] },
      },
      {
        extends: true,
        test: {
          name: "source",
          include: ["test/**/*.test.ts"],
          setupFiles,
          exclude: [
            "test/**/*.measured.test.ts",
            "test/**/*.unit.test.ts",
            "test/**/*.cluster.test.ts",
            "test/**/*.replica.test.ts",
            // The Lambda streaming handler's own, on its targets (lambda-stream, lambda-url).
            "test/**/lambda-subscriptions*.test.ts",
          ],
        },
      },
      // The benchmark's and the soak's smoke runs measure the machine (throughput, latency under faults): they run
      // on the source target after everything else, one at a time, with the machine to themselves.
      {
        extends: true,
        test: {
          name: "measured",
          include: ["test/**/*.measured.test.ts"],
          setupFiles,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
      bundled("lambda", LAMBDA_ONLY),
      bundled("lambda-v1", LAMBDA_ONLY),
      bundled("container", LONG_RUNNING_ONLY),
      ...["lambda-stream", "lambda-url"].map(
        (name): TestProjectInlineConfiguration => ({
          extends: true,
          test: { name, include: files(STREAMING), setupFiles, env: { SHUTTER_TARGET: name } },
        }),
      ),
      ...(process.env.REDIS_CLUSTER_URL
        ? [
            ...onCluster("source", ON_CLUSTER, 2),
            ...onCluster("lambda", ON_CLUSTER_BUNDLED, 3),
            // The events runner in the container reads the events stream (`{events}`) on the cluster.
            ...onCluster("container", [...ON_CLUSTER_BUNDLED, "photos-runner"], 4),
          ]
        : []),
      ...(process.env.REPLICA_PRIMARY_URL ? onReplicas() : []),
    ],
  },
});
