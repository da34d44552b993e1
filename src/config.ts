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
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  LOG_FORMAT: z.enum(["json", "pretty"]).optional(),
  GRAPHIQL: bool.optional(),
  MAX_PAGE_SIZE: int(1, 500).default(50),
});

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
    database: { url: e.DATABASE_URL, poolMax: e.DATABASE_POOL_MAX },
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
    },
    log: { level: e.LOG_LEVEL, pretty: (e.LOG_FORMAT ?? (production ? "json" : "pretty")) === "pretty" },
    graphiql: e.GRAPHIQL ?? !production,
    maxPageSize: e.MAX_PAGE_SIZE,
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
