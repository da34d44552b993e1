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
  });
  expect(config.s3).toMatchObject({ bucket: "photos", region: "us-east-1", forcePathStyle: false });
  expect(config.redisUrl).toBeUndefined();
  expect(config.redisKeyPrefix).toBe("shutter");
  expect(config.persistedQueries.policy).toBe("open");
  expect(config.maxPageSize).toBe(50);
});
