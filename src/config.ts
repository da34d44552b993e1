import { z } from "zod";

/**
 * Shutter's configuration, read from environment variables once per process (module scope, reused by warm
 * invocations) and validated as a whole so a bad deploy fails at start with every problem listed.
 * The README's configuration table documents each variable.
 */
export type Config = ReturnType<typeof parseConfig>;

const bool = z
  .enum(["true", "false", "1", "0", "yes", "no", "on", "off"], { message: "must be true or false" })
  .transform((v) => ["true", "1", "yes", "on"].includes(v));

const int = (min: number, max: number) =>
  z.coerce
    .number({ message: "must be a number" })
    .int("must be a whole number")
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);

const url = (protocols: string[]) =>
  z
    .url({ message: `must be a URL (${protocols.join(", ")})` })
    .refine(
      (value) => protocols.some((p) => value.startsWith(`${p}//`)),
      `must start with ${protocols.map((p) => `${p}//`).join(" or ")}`,
    );

const EnvSchema = z.object({
  NODE_ENV: z.enum(["production", "development", "test"]).default("development"),
  DATABASE_URL: url(["postgres:", "postgresql:"]),
  DATABASE_POOL_MAX: int(1, 100).default(5),
  DATABASE_IDLE_TIMEOUT_SECONDS: int(1, 3600).default(30),
  DATABASE_PREPARED_STATEMENTS: bool.default(false),
  REDIS_URL: url(["redis:", "rediss:"]).optional(),
  REDIS_KEY_PREFIX: z
    .string()
    .regex(/^[\w.-]{1,40}$/, "must be 1-40 letters, digits, dots, dashes or underscores")
    .default("shutter"),
  S3_BUCKET: z.string().min(3).optional(),
  S3_REGION: z.string().default("us-east-1"),
  S3_ENDPOINT: url(["http:", "https:"]).optional(),
  S3_FORCE_PATH_STYLE: bool.default(false),
  S3_PUBLIC_BASE_URL: url(["http:", "https:"]).optional(),
  S3_ACCESS_KEY_ID: z.string().optional(),
  S3_SECRET_ACCESS_KEY: z.string().optional(),
  JWT_PRIVATE_KEY: z
    .string()
    .refine((v) => v.includes("BEGIN PRIVATE KEY"), "must be a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----)")
    .optional(),
  JWT_ISSUER: z.string().min(1).default("shutter"),
  JWT_AUDIENCE: z.string().min(1).default("shutter-api"),
  ACCESS_TOKEN_TTL_SECONDS: int(60, 3600).default(900),
  REFRESH_TOKEN_TTL_DAYS: int(1, 365).default(30),
  AUTH_TRUST_GATEWAY: bool.default(false),
  OIDC_ISSUER: url(["https:", "http:"]).optional(),
  OIDC_AUDIENCE: z.string().min(1).optional(),
  OIDC_JWKS_URI: url(["https:", "http:"]).optional(),
  TRUST_PROXY_HEADERS: bool.default(false),
  INTROSPECTION: bool.optional(),
  CORS_ORIGINS: z.string().optional(),
  MAX_DEPTH: int(2, 50).default(12),
  MAX_ALIASES: int(0, 200).default(15),
  MAX_TOKENS: int(100, 100_000).default(3000),
  MAX_DIRECTIVES: int(0, 200).default(10),
  MAX_COMPLEXITY: int(10, 10_000_000).default(5000),
  MAX_BODY_BYTES: int(1024, 10_000_000).default(102_400),
  RATE_LIMIT_POINTS: int(1, 1_000_000_000).default(60_000),
  RATE_LIMIT_ANONYMOUS_POINTS: int(1, 1_000_000_000).default(20_000),
  RATE_LIMIT_WINDOW_SECONDS: int(1, 86_400).default(60),
  LOGIN_MAX_FAILURES_PER_ACCOUNT: int(1, 1000).default(5),
  LOGIN_MAX_FAILURES_PER_ADDRESS: int(1, 100_000).default(30),
  LOGIN_FAILURE_WINDOW_SECONDS: int(1, 86_400).default(900),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  LOG_FORMAT: z.enum(["json", "pretty"]).optional(),
  GRAPHIQL: bool.optional(),
  MAX_PAGE_SIZE: int(1, 500).default(50),
  UPLOAD_MAX_BYTES: int(1024, 200 * 1024 * 1024).default(15 * 1024 * 1024),
  UPLOAD_MAX_PENDING: int(1, 1000).default(20),
  UPLOAD_URL_TTL_SECONDS: int(1, 3600).default(300),
  UPLOAD_ORPHAN_AGE_MINUTES: int(1, 7 * 24 * 60).default(60),
  PERSISTED_QUERIES: z
    .enum(["persisted-only", "apq", "open"], { message: "must be persisted-only, apq or open" })
    .optional(),
  PERSISTED_QUERY_MAX_BYTES: int(256, 1_000_000).default(16_384),
  PUBLIC_MAX_AGE_SECONDS: int(0, 86_400).default(30),
  PUBLIC_STALE_WHILE_REVALIDATE_SECONDS: int(0, 86_400).default(60),
});

/** Every setting read from the environment (the README's configuration table lists them). */
export const SETTING_NAMES = Object.keys(EnvSchema.shape);

export class ConfigError extends Error {
  override name = "ConfigError";
}

function parseConfig(env: Record<string, string | undefined>) {
  // Empty strings mean "unset": that is how most deploy tools express an absent value.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const result = EnvSchema.safeParse(cleaned);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const key = issue.path.join(".");
      const message = issue.code === "invalid_type" && cleaned[key] === undefined ? "is required" : issue.message;
      return `  - ${key}: ${message}`;
    });
    throw new ConfigError(`Invalid configuration:\n${lines.join("\n")}\nSee the configuration table in README.md.`);
  }
  const e = result.data;
  const production = e.NODE_ENV === "production";
  if (e.UPLOAD_ORPHAN_AGE_MINUTES * 60 <= e.UPLOAD_URL_TTL_SECONDS) {
    throw new ConfigError(
      "Invalid configuration:\n  - UPLOAD_ORPHAN_AGE_MINUTES: must be longer than UPLOAD_URL_TTL_SECONDS (an upload in progress would be deleted)",
    );
  }
  if (Boolean(e.OIDC_ISSUER) !== Boolean(e.OIDC_AUDIENCE)) {
    throw new ConfigError(
      "Invalid configuration:\n  - OIDC_ISSUER and OIDC_AUDIENCE: set both to accept an external issuer's tokens, or neither",
    );
  }
  const missing = [
    production && !e.JWT_PRIVATE_KEY
      ? "  - JWT_PRIVATE_KEY: is required in production (tokens must survive restarts and be verifiable by every instance)"
      : "",
    production && !e.S3_BUCKET ? "  - S3_BUCKET: is required in production (where photos are stored)" : "",
  ].filter(Boolean);
  if (missing.length) throw new ConfigError(`Invalid configuration:\n${missing.join("\n")}`);
  return {
    env: e.NODE_ENV,
    production,
    database: {
      url: e.DATABASE_URL,
      poolMax: e.DATABASE_POOL_MAX,
      idleTimeoutSeconds: e.DATABASE_IDLE_TIMEOUT_SECONDS,
      preparedStatements: e.DATABASE_PREPARED_STATEMENTS,
    },
    redisUrl: e.REDIS_URL,
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    s3: e.S3_BUCKET
      ? {
          bucket: e.S3_BUCKET,
          region: e.S3_REGION,
          endpoint: e.S3_ENDPOINT,
          forcePathStyle: e.S3_FORCE_PATH_STYLE,
          publicBaseUrl: e.S3_PUBLIC_BASE_URL,
          credentials:
            e.S3_ACCESS_KEY_ID && e.S3_SECRET_ACCESS_KEY
              ? { accessKeyId: e.S3_ACCESS_KEY_ID, secretAccessKey: e.S3_SECRET_ACCESS_KEY }
              : undefined,
        }
      : undefined,
    auth: {
      privateKeyPem: e.JWT_PRIVATE_KEY,
      issuer: e.JWT_ISSUER,
      audience: e.JWT_AUDIENCE,
      accessTokenTtlSeconds: e.ACCESS_TOKEN_TTL_SECONDS,
      refreshTokenTtlDays: e.REFRESH_TOKEN_TTL_DAYS,
      trustGateway: e.AUTH_TRUST_GATEWAY,
      oidc: e.OIDC_ISSUER
        ? {
            issuer: e.OIDC_ISSUER,
            audience: e.OIDC_AUDIENCE as string,
            jwksUri: e.OIDC_JWKS_URI ?? `${e.OIDC_ISSUER.replace(/\/$/, "")}/.well-known/jwks.json`,
          }
        : undefined,
    },
    log: { level: e.LOG_LEVEL, pretty: (e.LOG_FORMAT ?? (production ? "json" : "pretty")) === "pretty" },
    graphiql: e.GRAPHIQL ?? !production,
    introspection: e.INTROSPECTION ?? !production,
    maxPageSize: e.MAX_PAGE_SIZE,
    uploads: {
      maxBytes: e.UPLOAD_MAX_BYTES,
      maxPending: e.UPLOAD_MAX_PENDING,
      urlTtlSeconds: e.UPLOAD_URL_TTL_SECONDS,
      orphanAgeMinutes: e.UPLOAD_ORPHAN_AGE_MINUTES,
    },
    persistedQueries: {
      policy: e.PERSISTED_QUERIES ?? (production ? "apq" : "open"),
      maxDocumentBytes: e.PERSISTED_QUERY_MAX_BYTES,
    },
    httpCache: {
      maxAgeSeconds: e.PUBLIC_MAX_AGE_SECONDS,
      staleWhileRevalidateSeconds: e.PUBLIC_STALE_WHILE_REVALIDATE_SECONDS,
    },
    trustProxyHeaders: e.TRUST_PROXY_HEADERS,
    /** Browser origins allowed by CORS: everything in development, none in production unless listed. */
    corsOrigins: e.CORS_ORIGINS
      ? e.CORS_ORIGINS.split(",")
          .map((o) => o.trim())
          .filter(Boolean)
      : production
        ? []
        : ["*"],
    limits: {
      depth: e.MAX_DEPTH,
      aliases: e.MAX_ALIASES,
      tokens: e.MAX_TOKENS,
      directives: e.MAX_DIRECTIVES,
      complexity: e.MAX_COMPLEXITY,
      bodyBytes: e.MAX_BODY_BYTES,
    },
    rateLimit: {
      viewerPoints: e.RATE_LIMIT_POINTS,
      anonymousPoints: e.RATE_LIMIT_ANONYMOUS_POINTS,
      windowSeconds: e.RATE_LIMIT_WINDOW_SECONDS,
      loginFailuresPerAccount: e.LOGIN_MAX_FAILURES_PER_ACCOUNT,
      loginFailuresPerAddress: e.LOGIN_MAX_FAILURES_PER_ADDRESS,
      loginWindowSeconds: e.LOGIN_FAILURE_WINDOW_SECONDS,
    },
  };
}

/** Parses configuration from the given environment. @throws ConfigError listing every invalid or missing value. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  return parseConfig(env);
}

let current: Config | undefined;

/** The process configuration, parsed on first use. @throws ConfigError */
export function config(): Config {
  current ??= loadConfig();
  return current;
}
