// The images function's rules: which photo to work on, what READY means, and what it changes. Called by the
// Lambda handler (functions/images.ts: S3 event notifications through a queue, and a schedule) and by the events
// runner in long-running processes; the pixel work itself is images/transform.ts.
//
// A photo is PROCESSING from its verification until its variants exist. Work on it is claimed (a lease in the
// row, so one worker at a time makes its variants, and one that died leaves it to the next after
// IMAGE_LEASE_SECONDS), and it is finished by a conditional update: redelivered or concurrent work changes
// nothing twice. A file that is not a usable image FAILS at once with a reason its owner can read; anything else
// (storage or database trouble) is retried, IMAGE_MAX_ATTEMPTS times in all.

import { ImageProblem, makeVariants } from "../images/transform.ts";
import { LADDERS, type PhotoFailure, type Variant, variantKey } from "../images/variants.ts";
import { type PhotoRecord, photoEntity, postPhotosEntity } from "../loaders/photos.ts";
import { postEntity } from "../loaders/posts.ts";
import { config } from "../platform/config.ts";
import { db } from "../platform/db.ts";
import { logger } from "../platform/logger.ts";
import { unavailableService } from "../platform/outage.ts";
import { awsS3, deleteObjects, s3, storageConfig } from "../platform/storage.ts";
import { inSpan } from "../platform/telemetry.ts";
import { publishedPost } from "./posts.ts";
import { write } from "./write.ts";

export type ProcessOutcome = "ready" | "failed" | "skipped" | "retry";

/**
 * Makes a PROCESSING photo's variants and marks it READY (publishing its post once every photo of it is READY).
 * Idempotent: a photo that is not PROCESSING, or is claimed by another worker, is skipped.
 * @returns what became of it; "retry" when a transient failure leaves it for a later attempt.
 */
export function processPhoto(mediaId: string): Promise<ProcessOutcome> {
  return inSpan("images.process", { "shutter.media_id": mediaId }, async (span) => {
    const outcome = await processOne(mediaId);
    span?.setAttribute("shutter.outcome", outcome);
    return outcome;
  });
}

async function processOne(mediaId: string): Promise<ProcessOutcome> {
  const { leaseSeconds, maxAttempts } = config().images;
  // The lease is bookkeeping of the images function's own (no cached field changes): one statement each, through
  // the unit of work like every write.
  const [photo] = await write(
    null,
    ({ tx }) => tx.$queryRaw<PhotoRecord[]>`
      UPDATE media SET processing_attempts = processing_attempts + 1, processing_started_at = now()
      WHERE id = ${mediaId}::uuid AND status = 'PROCESSING' AND processing_attempts < ${maxAttempts}
        AND (processing_started_at IS NULL OR processing_started_at < now() - make_interval(secs => ${leaseSeconds}))
      RETURNING id, owner_id AS "ownerId", purpose, storage_key AS "storageKey", post_id AS "postId",
        processing_attempts AS "processingAttempts"`,
    { singleStatement: true },
  );
  if (!photo) {
    // Every attempt used up by workers that never reported back (a crash, a timeout, memory): it fails for good
    // rather than taking a worker down again and again.
    const [exhausted] = await db().$queryRaw<Pick<PhotoRecord, "id" | "postId">[]>`
      SELECT id, post_id AS "postId" FROM media
      WHERE id = ${mediaId}::uuid AND status = 'PROCESSING' AND processing_attempts >= ${maxAttempts}
        AND (processing_started_at IS NULL OR processing_started_at < now() - make_interval(secs => ${leaseSeconds}))`;
    if (!exhausted) return "skipped";
    await fail(exhausted, "PROCESSING_FAILED");
    return "failed";
  }
  const log = logger().child({ mediaId, attempt: photo.processingAttempts });
  log.info("images: claimed");
  // Every key written, as it is written: a failure halfway still knows what to remove.
  const uploaded: string[] = [];
  try {
    const original = await readObject(photo.storageKey);
    const made = await makeVariants(original, LADDERS[photo.purpose]);
    await putVariants(photo, made.variants, uploaded);
    const variants: Variant[] = made.variants.map(({ width, height, format, bytes }) => ({
      width,
      height,
      format,
      bytes,
    }));
    const finished = await finish(photo, {
      width: made.width,
      height: made.height,
      variants,
      placeholder: made.placeholder,
      color: made.color,
    });
    if (!finished) {
      // Deleted meanwhile (its post, or the cleanup): what was just written belongs to nothing.
      await deleteObjects(uploaded);
      return "skipped";
    }
    // The upload's own copy, should verification have failed to remove it (storage down just then).
    await deleteObjects([photo.storageKey.replace(/^o\//, "u/")]).catch(() => undefined);
    if (config().images.originals === "delete") await deleteObjects([photo.storageKey]);
    log.info({ variants: variants.length, bytes: variants.reduce((sum, v) => sum + v.bytes, 0) }, "images: ready");
    return "ready";
  } catch (error) {
    if (error instanceof ImageProblem) {
      log.info({ problem: error.code, reason: error.message }, "images: not a usable image");
      await fail(photo, error.code);
      await deleteObjects(uploaded).catch(() => undefined);
      return "failed";
    }
    // Storage or the database out for a while is nobody's fault: the attempt is given back (attempts count
    // photos that break workers), and the photo waits for the next sweep or redelivery.
    const service = unavailableService(error);
    if (service) {
      log.warn({ err: error, service }, "images: service unavailable; the photo waits");
      await deleteObjects(uploaded).catch(() => undefined);
      await write(
        null,
        ({ tx }) => tx.$executeRaw`
          UPDATE media SET processing_started_at = NULL, processing_attempts = processing_attempts - 1
          WHERE id = ${mediaId}::uuid AND status = 'PROCESSING'`,
        { singleStatement: true },
      ).catch(() => undefined);
      return "retry";
    }
    log.error({ err: error }, "images: processing failed; will retry");
    if (photo.processingAttempts >= maxAttempts) {
      await fail(photo, "PROCESSING_FAILED");
      await deleteObjects(uploaded).catch(() => undefined);
      return "failed";
    }
    // Released for the next attempt (the sweep, or the queue's redelivery) rather than held until the lease ends.
    await write(
      null,
      ({ tx }) => tx.$executeRaw`
        UPDATE media SET processing_started_at = NULL WHERE id = ${mediaId}::uuid AND status = 'PROCESSING'`,
      { singleStatement: true },
    );
    return "retry";
  }
}

/** Photos waiting for their variants that nobody holds: never claimed, released, or claimed by a worker that died. */
export async function photosToProcess(limit = 20): Promise<string[]> {
  const rows = await db().$queryRaw<{ id: string }[]>`
    SELECT id FROM media
    WHERE status = 'PROCESSING'
      AND (processing_started_at IS NULL
        OR processing_started_at < now() - make_interval(secs => ${config().images.leaseSeconds}))
    ORDER BY created_at LIMIT ${limit}`;
  return rows.map((row) => row.id);
}

/** Processes what is waiting, one photo at a time (each bounded in memory), until none is left or `signal` aborts. */
export async function processWaitingPhotos(signal?: AbortSignal): Promise<Record<ProcessOutcome, number>> {
  const counts: Record<ProcessOutcome, number> = { ready: 0, failed: 0, skipped: 0, retry: 0 };
  // Each photo once per sweep: one to retry, or one that stays listed for any other reason, waits for the next
  // sweep instead of spinning this loop.
  const tried = new Set<string>();
  for (;;) {
    const ids = (await photosToProcess()).filter((id) => !tried.has(id));
    if (ids.length === 0 || signal?.aborted) return counts;
    for (const id of ids) {
      if (signal?.aborted) return counts;
      tried.add(id);
      counts[await processPhoto(id)]++;
    }
  }
}

async function readObject(key: string): Promise<Buffer> {
  const { GetObjectCommand } = await awsS3();
  const object = await (await s3()).send(new GetObjectCommand({ Bucket: storageConfig().bucket, Key: key }));
  return Buffer.from(await (object.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
}

/**
 * Writes the variants (a few at a time), noting each key in `keys` before its PUT; they never change once
 * written, so caches may keep them for good.
 */
async function putVariants(
  photo: Pick<PhotoRecord, "id" | "ownerId">,
  variants: { width: number; format: Variant["format"]; data: Buffer; contentType: string }[],
  keys: string[],
): Promise<void> {
  const { PutObjectCommand } = await awsS3();
  const client = await s3();
  const queue = [...variants];
  const worker = async () => {
    for (let variant = queue.shift(); variant; variant = queue.shift()) {
      const key = variantKey(photo, variant);
      keys.push(key);
      await client.send(
        new PutObjectCommand({
          Bucket: storageConfig().bucket,
          Key: key,
          Body: variant.data,
          ContentType: variant.contentType,
          CacheControl: "public, max-age=31536000, immutable",
        }),
      );
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
}

interface Result {
  width: number;
  height: number;
  variants: Variant[];
  placeholder: string;
  color: string;
}

/**
 * Marks the photo READY with what was made and, when it was its post's last photo to be READY, publishes the
 * post. The photo is locked before its post, as createPost does: whichever of the two commits second sees the
 * other's work, so a post is never left unpublished with all its photos READY.
 * @returns false if the photo is gone (or was finished by another worker).
 */
async function finish(photo: Pick<PhotoRecord, "id" | "ownerId">, result: Result): Promise<boolean> {
  // The images function's own write: the photo's status is its idempotency (a second finish finds it READY).
  return write(null, async (w) => {
    const { tx, event, changed } = w;
    const [row] = await tx.$queryRaw<{ postId: string | null }[]>`
      SELECT post_id AS "postId" FROM media WHERE id = ${photo.id}::uuid AND status = 'PROCESSING' FOR UPDATE`;
    if (!row) return false;
    await tx.$executeRaw`
      UPDATE media SET status = 'READY', width = ${result.width}, height = ${result.height},
        variants = ${JSON.stringify(result.variants)}::jsonb, placeholder = ${result.placeholder},
        color = ${result.color}, failure = NULL, processing_started_at = NULL
      WHERE id = ${photo.id}::uuid`;
    await event("media.ready", null, { mediaId: photo.id, actorId: photo.ownerId });
    changed(photoEntity.changed(photo.id));
    if (!row.postId) return true;
    changed(postPhotosEntity.changed(row.postId));
    const [post] = await tx.$queryRaw<{ id: string; authorId: string }[]>`
      UPDATE posts SET published = true
      WHERE id = ${row.postId}::uuid AND NOT published
        AND NOT EXISTS (SELECT 1 FROM media WHERE post_id = ${row.postId}::uuid AND status <> 'READY')
      RETURNING id, author_id AS "authorId"`;
    if (post) {
      await publishedPost(w, post);
      changed(postEntity.changed(post.id));
    }
    return true;
  });
}

async function fail(photo: Pick<PhotoRecord, "id" | "postId">, failure: PhotoFailure): Promise<void> {
  await write(
    null,
    async ({ tx, changed }) => {
      const [row] = await tx.$queryRaw<{ postId: string | null }[]>`
        UPDATE media SET status = 'FAILED', failure = ${failure}, processing_started_at = NULL
        WHERE id = ${photo.id}::uuid AND status = 'PROCESSING' RETURNING post_id AS "postId"`;
      if (row) changed(photoEntity.changed(photo.id), row.postId ? postPhotosEntity.changed(row.postId) : []);
    },
    { singleStatement: true },
  );
}
