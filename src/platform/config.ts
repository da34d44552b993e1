import * as z from "zod/mini";
import { parseTrustedProxies, type TrustedProxies } from "./trusted-proxies.ts";

/** Operations sources (OPS_WEBHOOK_SECRETS) at most: people subscribe to each by name (domain/validation.ts). */
export const MAX_OPS_SOURCES = 50;

/**
 * Shutter's configuration, read from environment variables once per process (module scope, reused by warm
 * invocations) and validated as a whole so a bad deploy fails at start with every problem listed.
 * docs/configuration.md documents each variable.
 */
export type Config = ReturnType<typeof parseConfig>;

// zod/mini: the same validation as zod's chained API in a twentieth of the code every cold start loads. It
// has no built-in messages, so every rule states its own.
const bool = z.pipe(
  z.enum(["true", "false", "1", "0", "yes", "no", "on", "off"], { error: "must be true or false" }),
  z.transform((v) => ["true", "1", "yes", "on"].includes(v)),
);

const int = (min: number, max: number) =>
  z.coerce
    .number({ error: "must be a number" })
    .check(
      z.refine(Number.isInteger, { error: "must be a whole number" }),
      z.gte(min, { error: `must be at least ${min}` }),
      z.lte(max, { error: `must be at most ${max}` }),
    );

const url = (protocols: string[]) =>
  z.url({ error: `must be a URL (${protocols.join(", ")})`, abort: true }).check(
    z.refine((value) => protocols.some((p) => value.startsWith(`${p}//`)), {
      error: `must start with ${protocols.map((p) => `${p}//`).join(" or ")}`,
    }),
  );

const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `must be one of ${values.join(", ")}` });
const text = (min = 1) => z.string().check(z.minLength(min, { error: `must be at least ${min} characters` }));

const EnvSchema = z.object({
  NODE_ENV: z._default(oneOf(["production", "development", "test"]), "development"),
  DATABASE_URL: url(["postgres:", "postgresql:"]),
  DATABASE_POOL_MAX: z._default(int(1, 100), 5),
  DATABASE_IDLE_TIMEOUT_SECONDS: z._default(int(1, 3600), 30),
  DATABASE_PREPARED_STATEMENTS: z._default(bool, false),
  DATABASE_REPLICA_URLS: z._default(z.string(), ""),
  REDIS_URL: z.optional(url(["redis:", "rediss:"])),
  REDIS_CLUSTER: z._default(bool, false),
  REDIS_CLUSTER_NODES: z._default(z.string(), ""),
  REDIS_WAIT_REPLICAS: z._default(int(0, 5), 0),
  REDIS_KEY_PREFIX: z._default(
    z.string().check(z.regex(/^[\w.-]{1,40}$/, { error: "must be 1-40 letters, digits, dots, dashes or underscores" })),
    "shutter",
  ),
  S3_BUCKET: z.optional(text(3)),
  S3_REGION: z._default(text(), "us-east-1"),
  S3_ENDPOINT: z.optional(url(["http:", "https:"])),
  S3_FORCE_PATH_STYLE: z._default(bool, false),
  S3_PUBLIC_BASE_URL: z.optional(url(["http:", "https:"])),
  S3_ACCESS_KEY_ID: z.optional(z.string()),
  S3_SECRET_ACCESS_KEY: z.optional(z.string()),
  JWT_PRIVATE_KEY: z.optional(
    z.string().check(
      z.refine((v) => v.includes("BEGIN PRIVATE KEY"), {
        error: "must be a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----)",
      }),
    ),
  ),
  JWT_ISSUER: z._default(text(), "shutter"),
  JWT_AUDIENCE: z._default(text(), "shutter-api"),
  ACCESS_TOKEN_TTL_SECONDS: z._default(int(60, 3600), 900),
  REFRESH_TOKEN_TTL_DAYS: z._default(int(1, 365), 30),
  AUTH_TRUST_GATEWAY: z._default(bool, false),
  OIDC_ISSUER: z.optional(url(["https:", "http:"])),
  OIDC_AUDIENCE: z.optional(text()),
  OIDC_JWKS_URI: z.optional(url(["https:", "http:"])),
  TRUSTED_PROXIES: z._default(
    z.string().check(
      z.refine((value) => parseTrustedProxies(value) !== null, {
        error: "must be a number of proxies (0-99) or address ranges: CIDRs, loopback, private (comma-separated)",
      }),
    ),
    "0",
  ),
  TRUST_PROXY_HEADERS: z.optional(
    z.string().check(
      z.refine(() => false, {
        error:
          "is replaced by TRUSTED_PROXIES (how many proxies, or which addresses, are in front): it trusted the left-most X-Forwarded-For hop, which clients write",
      }),
    ),
  ),
  INTROSPECTION: z.optional(bool),
  INTROSPECTION_COST: z._default(int(0, 1_000_000), 1000),
  CORS_ORIGINS: z.optional(z.string()),
  MAX_DEPTH: z._default(int(2, 50), 12),
  MAX_ALIASES: z._default(int(0, 200), 15),
  MAX_TOKENS: z._default(int(100, 100_000), 3000),
  MAX_DIRECTIVES: z._default(int(0, 200), 10),
  MAX_COMPLEXITY: z._default(int(10, 10_000_000), 5000),
  MAX_BODY_BYTES: z._default(int(1024, 10_000_000), 102_400),
  SUBSCRIPTIONS_PER_VIEWER: z._default(int(1, 1000), 5),
  RATE_LIMIT_POINTS: z._default(int(1, 1_000_000_000), 60_000),
  RATE_LIMIT_ANONYMOUS_POINTS: z._default(int(1, 1_000_000_000), 20_000),
  RATE_LIMIT_WINDOW_SECONDS: z._default(int(1, 86_400), 60),
  LOGIN_MAX_FAILURES_PER_ACCOUNT: z._default(int(1, 1000), 5),
  LOGIN_MAX_FAILURES_PER_ADDRESS: z._default(int(1, 100_000), 30),
  LOGIN_MAX_FAILURES_PER_ACCOUNT_FROM_NEW_ADDRESSES: z._default(int(1, 100_000), 50),
  SIGNUP_MAX_PER_ADDRESS: z._default(int(1, 100_000), 10),
  APQ_REGISTRATION_BYTES_PER_HOUR: z._default(int(1024, 100_000_000), 262_144),
  LOGIN_FAILURE_WINDOW_SECONDS: z._default(int(1, 86_400), 900),
  RATE_LIMIT_IPV6_PREFIX: z._default(int(32, 128), 64),
  IDEMPOTENCY_ANSWER_BYTES_PER_HOUR: z._default(int(1024, 1_000_000_000), 1_048_576),
  LOG_LEVEL: z._default(oneOf(["fatal", "error", "warn", "info", "debug", "trace", "silent"]), "info"),
  LOG_FORMAT: z.optional(oneOf(["json", "pretty"])),
  GRAPHIQL: z.optional(bool),
  MAX_PAGE_SIZE: z._default(int(1, 500), 50),
  CACHE_LOCAL_ENTRIES: z._default(int(0, 1_000_000), 20_000),
  FEED_TIMELINES: z._default(bool, false),
  FEED_CELEBRITY_FOLLOWERS: z._default(int(0, 100_000_000), 10_000),
  UPLOAD_MAX_BYTES: z._default(int(1024, 200 * 1024 * 1024), 15 * 1024 * 1024),
  UPLOAD_MAX_PENDING: z._default(int(1, 1000), 20),
  UPLOAD_URL_TTL_SECONDS: z._default(int(1, 3600), 300),
  UPLOAD_ORPHAN_AGE_MINUTES: z._default(int(1, 7 * 24 * 60), 60),
  UPLOAD_UNUSED_RETENTION_HOURS: z._default(int(1, 24 * 365), 24),
  IMAGE_ORIGINALS: z._default(oneOf(["keep", "delete"]), "keep"),
  IDEMPOTENCY_RETENTION_HOURS: z._default(int(1, 24 * 30), 24),
  IMAGE_MAX_ATTEMPTS: z._default(int(1, 20), 3),
  IMAGE_LEASE_SECONDS: z._default(int(10, 3600), 120),
  PERSISTED_QUERIES: z.optional(
    z.enum(["persisted-only", "apq", "open"], { error: "must be persisted-only, apq or open" }),
  ),
  PERSISTED_QUERY_MAX_BYTES: z._default(int(256, 1_000_000), 16_384),
  PUBLIC_MAX_AGE_SECONDS: z._default(int(0, 86_400), 30),
  PUBLIC_STALE_WHILE_REVALIDATE_SECONDS: z._default(int(0, 86_400), 60),
  RESPONSE_CACHE: z._default(bool, true),
  // At most an hour: a presigned photo URL in a cached response has at least an hour of life left (storage.ts).
  RESPONSE_CACHE_TTL_SECONDS: z._default(int(1, 3600), 300),
  CDN_PURGE_URL: z.optional(url(["https:", "http:"])),
  CDN_PURGE_TOKEN: z.optional(text()),
  OPS_WEBHOOK_SECRETS: z.optional(
    z.string().check(
      z.regex(/^\s*[a-z0-9][a-z0-9_.-]{0,39}=[^,\s]{16,}\s*(,\s*[a-z0-9][a-z0-9_.-]{0,39}=[^,\s]{16,}\s*)*$/, {
        error: "must be source=secret pairs separated by commas (sources: lowercase, 1-40 characters; secrets: 16+)",
      }),
    ),
  ),
  OPS_WEBHOOK_TOLERANCE_SECONDS: z._default(int(10, 3600), 300),
  OPS_WEBHOOK_MAX_BYTES: z._default(int(256, 1_000_000), 16_384),
  OPS_WEBHOOK_EVENTS_PER_MINUTE: z._default(int(1, 100_000), 60),
  EVENTS_RUNNER: z._default(bool, false),
  EVENTS_QUEUE_URL: z.optional(url(["https:", "http:"])),
  EVENTS_MAX_DELIVERIES: z._default(int(1, 100), 5),
  EVENTS_CLAIM_IDLE_MS: z._default(int(50, 3_600_000), 30_000),
  NOTIFY_HOOK_URL: z.optional(url(["http:", "https:"])),
  NOTIFY_HOOK_SECRET: z.optional(text(16)),
  NOTIFY_HOOK_MAX_ATTEMPTS: z._default(int(1, 50), 6),
  NOTIFY_HOOK_BACKOFF_MS: z._default(int(10, 3_600_000), 2_000),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.optional(url(["http:", "https:"])),
  OTEL_TRACES_SAMPLER_ARG: z._default(
    z.coerce
      .number({ error: "must be a number" })
      .check(z.gte(0, { error: "must be at least 0" }), z.lte(1, { error: "must be at most 1" })),
    1,
  ),
  OTEL_TRACES_TRUST_PARENT: z._default(bool, false),
  OTEL_SERVICE_NAME: z._default(text(), "shutter"),
  OTEL_METRIC_EXPORT_INTERVAL: z._default(int(100, 3_600_000), 60_000),
});

/** Every setting read from the environment (docs/configuration.md lists them). */
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
    throw new ConfigError(`Invalid configuration:\n${lines.join("\n")}\nSee docs/configuration.md.`);
  }
  const e = result.data;
  const production = e.NODE_ENV === "production";
  if (e.UPLOAD_ORPHAN_AGE_MINUTES * 60 <= e.UPLOAD_URL_TTL_SECONDS) {
    throw new ConfigError(
      "Invalid configuration:\n  - UPLOAD_ORPHAN_AGE_MINUTES: must be longer than UPLOAD_URL_TTL_SECONDS (an upload in progress would be deleted)",
    );
  }
  if ((e.OPS_WEBHOOK_SECRETS ?? "").split(",").filter((pair) => pair.trim()).length > MAX_OPS_SOURCES) {
    throw new ConfigError(
      `Invalid configuration:\n  - OPS_WEBHOOK_SECRETS: at most ${MAX_OPS_SOURCES} sources (people subscribe to each by name)`,
    );
  }
  const replicaUrls = e.DATABASE_REPLICA_URLS.split(",")
    .map((value) => value.trim())
    .filter(Boolean);
  for (const replicaUrl of replicaUrls) {
    if (!/^postgres(ql)?:\/\/[^\s]+$/.test(replicaUrl)) {
      throw new ConfigError(
        "Invalid configuration:\n  - DATABASE_REPLICA_URLS: must be PostgreSQL URLs (postgresql://…), separated by commas",
      );
    }
  }
  if (replicaUrls.length && !e.REDIS_URL) {
    throw new ConfigError(
      "Invalid configuration:\n  - DATABASE_REPLICA_URLS: needs REDIS_URL too (what a client has seen is tracked in the shared cache's versions)",
    );
  }
  const clusterNodes = e.REDIS_CLUSTER_NODES.split(",")
    .map((value) => value.trim())
    .filter(Boolean);
  if (clusterNodes.some((node) => !/^[\w.-]+:\d{1,5}$/.test(node)) || (clusterNodes.length && !e.REDIS_CLUSTER)) {
    throw new ConfigError(
      "Invalid configuration:\n  - REDIS_CLUSTER_NODES: more nodes of the cluster as host:port, separated by commas (with REDIS_CLUSTER=true)",
    );
  }
  if (e.REDIS_CLUSTER && !e.REDIS_URL) {
    throw new ConfigError(
      "Invalid configuration:\n  - REDIS_CLUSTER: set REDIS_URL to a node of the cluster (or its configuration endpoint) too",
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
      replicaUrls,
    },
    redisUrl: e.REDIS_URL,
    redis: e.REDIS_URL
      ? { url: e.REDIS_URL, cluster: e.REDIS_CLUSTER, clusterNodes, waitReplicas: e.REDIS_WAIT_REPLICAS }
      : undefined,
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
    /** Entity parts each instance keeps parsed in front of Redis (caching/local.ts); 0 turns it off. */
    cache: { localEntries: e.CACHE_LOCAL_ENTRIES },
    /** Home timelines fanned out on write (with Redis: caching/timelines.ts), and whose posts are merged instead. */
    feed: { timelines: e.FEED_TIMELINES, celebrityFollowers: e.FEED_CELEBRITY_FOLLOWERS },
    uploads: {
      maxBytes: e.UPLOAD_MAX_BYTES,
      maxPending: e.UPLOAD_MAX_PENDING,
      urlTtlSeconds: e.UPLOAD_URL_TTL_SECONDS,
      orphanAgeMinutes: e.UPLOAD_ORPHAN_AGE_MINUTES,
      unusedRetentionHours: e.UPLOAD_UNUSED_RETENTION_HOURS,
    },
    /** How long a mutation's Idempotency-Key replays its first answer. */
    idempotencyRetentionHours: e.IDEMPOTENCY_RETENTION_HOURS,
    images: {
      /** After the variants are made: keep the original (private, its owner's) or delete it. */
      originals: e.IMAGE_ORIGINALS,
      maxAttempts: e.IMAGE_MAX_ATTEMPTS,
      /** How long a claim on a photo holds: a function that died mid-photo leaves it to another after this. */
      leaseSeconds: e.IMAGE_LEASE_SECONDS,
    },
    persistedQueries: {
      // Open by default: APQ registration is open to anyone, so requiring hashes (`apq`) protects nothing and
      // refuses clients' defaults (urql sends mutations whole); `persisted-only` is the restrictive policy.
      policy: e.PERSISTED_QUERIES ?? "open",
      maxDocumentBytes: e.PERSISTED_QUERY_MAX_BYTES,
    },
    httpCache: {
      maxAgeSeconds: e.PUBLIC_MAX_AGE_SECONDS,
      staleWhileRevalidateSeconds: e.PUBLIC_STALE_WHILE_REVALIDATE_SECONDS,
    },
    responseCache: {
      enabled: e.RESPONSE_CACHE,
      ttlSeconds: e.RESPONSE_CACHE_TTL_SECONDS,
      cdnPurge: e.CDN_PURGE_URL ? { url: e.CDN_PURGE_URL, token: e.CDN_PURGE_TOKEN } : undefined,
    },
    trustedProxies: parseTrustedProxies(e.TRUSTED_PROXIES) as TrustedProxies,
    opsWebhook: {
      /** Per-source signing secrets; a source without one does not exist. */
      secrets: new Map<string, string>(
        (e.OPS_WEBHOOK_SECRETS ?? "")
          .split(",")
          .map((pair) => pair.trim())
          .filter(Boolean)
          .map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]),
      ),
      toleranceSeconds: e.OPS_WEBHOOK_TOLERANCE_SECONDS,
      maxBytes: e.OPS_WEBHOOK_MAX_BYTES,
    },
    telemetry: {
      /** Where traces (and, outside Lambda, metrics) go over OTLP/HTTP; unset, telemetry is off. */
      otlpEndpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT,
      /** The share of traces started here that are kept (a caller's sampling decision is followed). */
      sampleRatio: e.OTEL_TRACES_SAMPLER_ARG,
      trustParent: e.OTEL_TRACES_TRUST_PARENT,
      serviceName: e.OTEL_SERVICE_NAME,
      metricsIntervalMs: e.OTEL_METRIC_EXPORT_INTERVAL,
    },
    events: {
      /** Whether the container entry also runs the events runner (functions/server.ts). */
      runner: e.EVENTS_RUNNER,
      /** An SQS queue to announce events on instead of the Redis stream (the AWS deployment). */
      queueUrl: e.EVENTS_QUEUE_URL,
      maxDeliveries: e.EVENTS_MAX_DELIVERIES,
      claimIdleMs: e.EVENTS_CLAIM_IDLE_MS,
    },
    notifyHook: e.NOTIFY_HOOK_URL
      ? {
          url: e.NOTIFY_HOOK_URL,
          secret: e.NOTIFY_HOOK_SECRET,
          maxAttempts: e.NOTIFY_HOOK_MAX_ATTEMPTS,
          backoffMs: e.NOTIFY_HOOK_BACKOFF_MS,
        }
      : undefined,
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
      introspectionCost: e.INTROSPECTION_COST,
      bodyBytes: e.MAX_BODY_BYTES,
      subscriptionsPerViewer: e.SUBSCRIPTIONS_PER_VIEWER,
    },
    rateLimit: {
      viewerPoints: e.RATE_LIMIT_POINTS,
      anonymousPoints: e.RATE_LIMIT_ANONYMOUS_POINTS,
      windowSeconds: e.RATE_LIMIT_WINDOW_SECONDS,
      loginFailuresPerAccount: e.LOGIN_MAX_FAILURES_PER_ACCOUNT,
      loginFailuresPerAddress: e.LOGIN_MAX_FAILURES_PER_ADDRESS,
      loginFailuresPerAccountFromNewAddresses: e.LOGIN_MAX_FAILURES_PER_ACCOUNT_FROM_NEW_ADDRESSES,
      signUpsPerAddress: e.SIGNUP_MAX_PER_ADDRESS,
      registrationBytesPerHour: e.APQ_REGISTRATION_BYTES_PER_HOUR,
      opsEventsPerMinute: e.OPS_WEBHOOK_EVENTS_PER_MINUTE,
      loginWindowSeconds: e.LOGIN_FAILURE_WINDOW_SECONDS,
      ipv6Prefix: e.RATE_LIMIT_IPV6_PREFIX,
      idempotencyAnswerBytesPerHour: e.IDEMPOTENCY_ANSWER_BYTES_PER_HOUR,
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
