import type { S3Client } from "@aws-sdk/client-s3";
import { type Config, config } from "./config.ts";
import { inSpan, tracing } from "./telemetry.ts";

// The AWS SDK is loaded on first use: most requests never touch storage (photo URLs come from a CDN base URL in
// production), and the SDK would be a sixth of the code every cold start loads.
export const awsS3 = () => import("@aws-sdk/client-s3");
export const awsPresigner = () => import("@aws-sdk/s3-request-presigner");

type StorageConfig = NonNullable<Config["s3"]>;

let client: S3Client | undefined;

/** Object storage settings. @throws Error when S3_BUCKET is not configured. */
export function storageConfig(): StorageConfig {
  const s3 = config().s3;
  if (!s3) throw new Error("Object storage is not configured: set S3_BUCKET (and S3_ENDPOINT for non-AWS storage).");
  return s3;
}

/**
 * The process's S3 client (any S3-compatible endpoint). Credentials come from S3_ACCESS_KEY_ID/SECRET when
 * set, otherwise from the AWS default provider chain (the Lambda role in production).
 */
export async function s3(): Promise<S3Client> {
  const { S3Client } = await awsS3();
  if (!client) {
    const { region, endpoint, forcePathStyle, credentials } = storageConfig();
    client = new S3Client({
      region,
      endpoint,
      forcePathStyle,
      credentials,
      // Checksums only where the S3 API requires them: S3-compatible stores (Ceph, MinIO, R2, older
      // versions) reject or ignore the newer default checksum headers, and they leak into presigned URLs.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      // Without them a request on a connection that died silently (a NAT or proxy that dropped it without a reset)
      // waits forever — and with it the request, or the images worker, which takes one photo at a time. (The
      // request timeout is for a socket with nothing moving, not for a whole transfer.)
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 10_000 },
    });
    // A span per S3 call (its retries included) when tracing.
    if (tracing()) {
      client.middlewareStack.add(
        (next, context) => (args) =>
          inSpan(
            `s3 ${context.commandName ?? "command"}`,
            { "rpc.system": "aws-api", "rpc.service": "S3" },
            () => next(args),
            "client",
          ),
        { step: "initialize", name: "shutterTracing" },
      );
    }
  }
  return client;
}

/** How long a presigned photo URL stays identical: responses and caches can hold it for a whole window. */
export const URL_WINDOW_SECONDS = 3600;

/**
 * The URL a client loads a photo's variant from (keys under v/): under the public CDN base URL when one is
 * configured, otherwise a presigned GET. Presigned URLs are signed as of the start of the current hour and valid
 * for two, so the same URL comes back all hour (cacheable by clients and the entity cache) and always has at least
 * an hour of life left. Signing is local (no request to storage): a feed page's URLs cost no round trip.
 */
export async function photoUrl(storageKey: string, now = Date.now()): Promise<string> {
  const { publicBaseUrl } = storageConfig();
  if (publicBaseUrl) return `${publicBaseUrl.replace(/\/$/, "")}/${storageKey}`;
  return presignedGet(storageKey, now);
}

/** A presigned GET, whatever the CDN: for what must stay private (an original, for its owner alone). */
export async function presignedGet(storageKey: string, now = Date.now()): Promise<string> {
  const { bucket } = storageConfig();
  const windowStart = Math.floor(now / 1000 / URL_WINDOW_SECONDS) * URL_WINDOW_SECONDS;
  const [{ GetObjectCommand }, { getSignedUrl }] = await Promise.all([awsS3(), awsPresigner()]);
  return getSignedUrl(await s3(), new GetObjectCommand({ Bucket: bucket, Key: storageKey }), {
    signingDate: new Date(windowStart * 1000),
    expiresIn: 2 * URL_WINDOW_SECONDS,
  });
}

/** Deletes objects (at most 1000 per request, as S3 allows). No-op for an empty list. */
export async function deleteObjects(keys: string[]): Promise<void> {
  if (keys.length === 0) return;
  const { bucket } = storageConfig();
  const { DeleteObjectsCommand } = await awsS3();
  for (let i = 0; i < keys.length; i += 1000) {
    await (await s3()).send(
      new DeleteObjectsCommand({
        Bucket: bucket,
        Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true },
      }),
    );
  }
}
