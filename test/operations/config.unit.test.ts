// Configuration is validated as a whole at start: a bad deploy fails with every problem listed, each in words an
// operator can act on, and good values come out typed, with the documented defaults.
import { expect, test } from "vitest";
import { ConfigError, loadConfig } from "../../src/platform/config.ts";

const base = { DATABASE_URL: "postgresql://postgres@127.0.0.1:5432/shutter" };

test("every invalid setting is listed with what is wrong with it", () => {
  const load = () =>
    loadConfig({
      DATABASE_URL: "mysql://db/shutter",
      DATABASE_POOL_MAX: "1.5",
      DATABASE_IDLE_TIMEOUT_SECONDS: "0",
      MAX_DEPTH: "deep",
      S3_BUCKET: "ab",
      AUTH_TRUST_GATEWAY: "maybe",
      LOG_LEVEL: "loud",
      PERSISTED_QUERIES: "some",
      REDIS_KEY_PREFIX: "has space",
      JWT_PRIVATE_KEY: "secret",
      S3_ENDPOINT: "not a url",
    });
  expect(load).toThrow(ConfigError);
  expect(load).toThrow(
    [
      "Invalid configuration:",
      "  - DATABASE_URL: must start with postgres:// or postgresql://",
      "  - DATABASE_POOL_MAX: must be a whole number",
      "  - DATABASE_IDLE_TIMEOUT_SECONDS: must be at least 1",
      "  - REDIS_KEY_PREFIX: must be 1-40 letters, digits, dots, dashes or underscores",
      "  - S3_BUCKET: must be at least 3 characters",
      "  - S3_ENDPOINT: must be a URL (http:, https:)",
      "  - JWT_PRIVATE_KEY: must be a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----)",
      "  - AUTH_TRUST_GATEWAY: must be true or false",
      "  - MAX_DEPTH: must be a number",
      "  - LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent",
      "  - PERSISTED_QUERIES: must be persisted-only, apq or open",
      "See docs/configuration.md.",
    ].join("\n"),
  );
  expect(() => loadConfig({})).toThrow("  - DATABASE_URL: is required");
  expect(() => loadConfig({ ...base, MAX_PAGE_SIZE: "501" })).toThrow("  - MAX_PAGE_SIZE: must be at most 500");
  expect(() => loadConfig({ ...base, NODE_ENV: "production" })).toThrow(
    "  - JWT_PRIVATE_KEY: is required in production",
  );
});

test("values are typed, defaults apply, and empty strings count as unset", () => {
  const config = loadConfig({
    ...base,
    DATABASE_POOL_MAX: "3",
    DATABASE_PREPARED_STATEMENTS: "yes",
    S3_BUCKET: "photos",
    S3_FORCE_PATH_STYLE: "off",
    REDIS_URL: "",
  });
  expect(config.database).toEqual({
    url: base.DATABASE_URL,
    poolMax: 3,
    idleTimeoutSeconds: 30,
    preparedStatements: true,
    replicaUrls: [],
  });
  expect(config.s3).toMatchObject({ bucket: "photos", region: "us-east-1", forcePathStyle: false });
  expect(config.redisUrl).toBeUndefined();
  expect(config.redis).toBeUndefined();
  expect(config.redisKeyPrefix).toBe("shutter");
  expect(config.persistedQueries.policy).toBe("open");
  expect(config.maxPageSize).toBe(50);
});

test("a Redis Cluster and read replicas: what each needs, said in one line", () => {
  const cluster = loadConfig({ ...base, REDIS_URL: "rediss://clustercfg.example:6379", REDIS_CLUSTER: "true" });
  expect(cluster.redis).toEqual({
    url: "rediss://clustercfg.example:6379",
    cluster: true,
    clusterNodes: [],
    waitReplicas: 0,
  });
  const nodes = {
    ...base,
    REDIS_URL: "redis://10.0.0.1:7000",
    REDIS_CLUSTER_NODES: " 10.0.0.2:7000, node-3.local:7001",
  };
  expect(loadConfig({ ...nodes, REDIS_CLUSTER: "true" }).redis?.clusterNodes).toEqual([
    "10.0.0.2:7000",
    "node-3.local:7001",
  ]);
  for (const wrong of [nodes, { ...nodes, REDIS_CLUSTER: "true", REDIS_CLUSTER_NODES: "10.0.0.2" }]) {
    expect(() => loadConfig(wrong)).toThrow(
      "  - REDIS_CLUSTER_NODES: more nodes of the cluster as host:port, separated by commas (with REDIS_CLUSTER=true)",
    );
  }
  expect(() => loadConfig({ ...base, REDIS_CLUSTER: "true" })).toThrow(
    "  - REDIS_CLUSTER: set REDIS_URL to a node of the cluster (or its configuration endpoint) too",
  );
  expect(() => loadConfig({ ...base, REDIS_URL: "redis://r:6379", REDIS_WAIT_REPLICAS: "9" })).toThrow(
    "  - REDIS_WAIT_REPLICAS: must be at most 5",
  );
  const replicas = loadConfig({
    ...base,
    REDIS_URL: "redis://r:6379",
    DATABASE_REPLICA_URLS: "postgresql://reader-1/app, postgresql://reader-2/app",
  });
  expect(replicas.database.replicaUrls).toEqual(["postgresql://reader-1/app", "postgresql://reader-2/app"]);
  expect(() => loadConfig({ ...base, DATABASE_REPLICA_URLS: "postgresql://reader-1/app" })).toThrow(
    "  - DATABASE_REPLICA_URLS: needs REDIS_URL too",
  );
  expect(() => loadConfig({ ...base, REDIS_URL: "redis://r:6379", DATABASE_REPLICA_URLS: "mysql://x/y" })).toThrow(
    "  - DATABASE_REPLICA_URLS: must be PostgreSQL URLs",
  );
});
