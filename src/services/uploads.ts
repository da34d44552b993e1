import { randomUUID } from "node:crypto";
import { imageSize } from "image-size";
import type { Viewer } from "../domain/auth.ts";
import { ErrorCode, ForbiddenError, NotFoundError, ShutterError, ValidationError } from "../errors.ts";
import type { PhotoPurpose } from "../generated/prisma/client.ts";
import { objectKeys } from "../images/variants.ts";
import { one } from "../loaders/batch.ts";
import { type PhotoRecord, photoEntity, photosById } from "../loaders/photos.ts";
import { config } from "../platform/config.ts";
import { db } from "../platform/db.ts";
import { logger } from "../platform/logger.ts";
import { awsPresigner, awsS3, deleteObjects, s3, storageConfig } from "../platform/storage.ts";
import { type Actor, type SignedIn, write } from "./write.ts";

/** Photo formats apps may upload, by MIME type, with the extension their objects get. */
export const PHOTO_TYPES = {
  "image/jpeg": "jpg",
  "image/png": "png",
  "image/webp": "webp",
  "image/heic": "heic",
} as const;
export type PhotoType = keyof typeof PHOTO_TYPES;

// Own keys only: "constructor" or "toString" are no photo types.
export const isPhotoType = (value: string): value is PhotoType => Object.hasOwn(PHOTO_TYPES, value);

/**
 * Every upload arrives tagged as pending (the tag is part of the signed PUT) and loses the tag once verified.
 * A bucket lifecycle rule on this tag (infra/) expires what was never used, should the cleanup handler not run.
 */
export const PENDING_TAG = { key: "shutter-upload", value: "pending" } as const;
const PENDING_TAGGING = `${PENDING_TAG.key}=${PENDING_TAG.value}`;

/** Why an uploaded file could not be used. */
export type UploadProblem = "NOT_RECEIVED" | "EXPIRED" | "SIZE_MISMATCH" | "TYPE_MISMATCH" | "NOT_AN_IMAGE";

const PROBLEMS: Record<UploadProblem, string> = {
  NOT_RECEIVED: "We haven't received the file yet: upload it to the URL you were given, then try again.",
  EXPIRED: "This upload expired before the file arrived. Start a new upload.",
  SIZE_MISMATCH: "The file that arrived is not the size announced. Start a new upload with its real size.",
  TYPE_MISMATCH: "The file that arrived is not of the type announced. Start a new upload with its real type.",
  NOT_AN_IMAGE: "The file is not a JPEG, PNG, WebP or HEIC image. Choose another photo.",
};

/**
 * An upload that cannot be used. Except NOT_RECEIVED (the client may still send the file), the upload is
 * gone: its object and its record were deleted, and the app must start a new one.
 */
export class UploadError extends ShutterError {
  readonly problem: UploadProblem;

  constructor(problem: UploadProblem) {
    super(ErrorCode.UPLOAD_INVALID, PROBLEMS[problem], { problem });
    this.problem = problem;
  }
}

/** Too many uploads started and not used yet. */
export class QuotaExceededError extends ShutterError {
  constructor(message: string) {
    super(ErrorCode.QUOTA_EXCEEDED, message);
  }
}

export interface UploadTarget {
  url: string;
  method: "PUT";
  /** Headers the PUT must carry exactly: they are part of the signature. */
  headers: { name: string; value: string }[];
  expiresAt: Date;
}

/**
 * Starts an upload: a PENDING photo record and a presigned PUT for a key the server chose. The signature binds
 * the bucket, the key, Content-Type and Content-Length, and expires within minutes, so the app can upload
 * exactly the file it announced there and nothing else.
 * @throws ValidationError (a size out of bounds), QuotaExceededError (too many unused uploads)
 */
export async function startUpload(
  actor: SignedIn,
  input: { contentType: PhotoType; byteSize: number; purpose: PhotoPurpose },
): Promise<{ photo: PhotoRecord; upload: UploadTarget }> {
  const { maxPending, urlTtlSeconds, maxBytes } = config().uploads;
  if (input.byteSize < 1 || input.byteSize > maxBytes) {
    throw ValidationError.field(
      ["input", "byteSize"],
      `A photo can be at most ${(maxBytes / 1024 / 1024).toFixed(0)} MB; this one is ${(input.byteSize / 1024 / 1024).toFixed(1)} MB.`,
    );
  }
  const ownerId = actor.viewer.id;
  const id = randomUUID();
  const storageKey = `u/${ownerId}/${id}.${PHOTO_TYPES[input.contentType]}`;
  const photo = await write(actor, async ({ tx }) => {
    // One upload of a person at a time passes this point (their row is locked): the count and the insert
    // cannot be raced past the quota by concurrent requests.
    await tx.$queryRaw`SELECT 1 FROM users WHERE id = ${ownerId}::uuid FOR UPDATE`;
    const unused = await countUnused(tx, ownerId);
    if (unused >= maxPending) {
      throw new QuotaExceededError(
        `You have ${unused} photos that aren't in a post or your profile yet. Use them, or wait for unused ones to be removed.`,
      );
    }
    return tx.photo.create({
      data: {
        id,
        ownerId,
        purpose: input.purpose,
        storageKey,
        contentType: input.contentType,
        byteSize: input.byteSize,
      },
    });
  });
  const [{ PutObjectCommand }, { getSignedUrl }] = await Promise.all([awsS3(), awsPresigner()]);
  const url = await getSignedUrl(
    await s3(),
    new PutObjectCommand({
      Bucket: storageConfig().bucket,
      Key: storageKey,
      ContentType: input.contentType,
      ContentLength: input.byteSize,
      Tagging: PENDING_TAGGING,
    }),
    {
      expiresIn: urlTtlSeconds,
      signableHeaders: new Set(["content-type", "content-length", "x-amz-tagging"]),
      // Signed as a header the app must send, rather than moved into the URL's query.
      unhoistableHeaders: new Set(["x-amz-tagging"]),
    },
  );
  return {
    photo,
    upload: {
      url,
      method: "PUT",
      headers: [
        { name: "Content-Type", value: input.contentType },
        { name: "Content-Length", value: String(input.byteSize) },
        { name: "X-Amz-Tagging", value: PENDING_TAGGING },
      ],
      expiresAt: uploadExpiry(photo),
    },
  };
}

/**
 * A person's photos in use by nothing: uploads still PENDING, and verified ones in no post and not their avatar
 * (a replaced avatar, a photo never posted). The quota counts these; the cleanup removes them in time.
 */
async function countUnused(tx: Pick<ReturnType<typeof db>, "$queryRaw">, ownerId: string): Promise<number> {
  const [row] = await tx.$queryRaw<{ count: number }[]>`
    SELECT count(*)::int AS count FROM media m
    WHERE m.owner_id = ${ownerId}::uuid AND m.post_id IS NULL
      AND NOT EXISTS (SELECT 1 FROM users u WHERE u.avatar_id = m.id)`;
  return row?.count ?? 0;
}

const uploadExpiry = (photo: Pick<PhotoRecord, "createdAt">) =>
  new Date(photo.createdAt.getTime() + config().uploads.urlTtlSeconds * 1000);

/** The viewer's own photo. @throws NotFoundError, ForbiddenError */
export async function ownPhoto(viewer: Viewer, id: string): Promise<PhotoRecord> {
  const photo = await one(photosById, id);
  if (!photo) throw new NotFoundError("That photo doesn't exist.");
  if (photo.ownerId !== viewer.id) throw new ForbiddenError("That photo belongs to someone else.");
  return photo;
}

/** Verifies one of the viewer's uploads and hands it to the images function (see verifyUpload). @throws NotFoundError, ForbiddenError, UploadError */
export async function completeUpload(actor: SignedIn, photoId: string): Promise<PhotoRecord> {
  return verifyUpload(actor, await ownPhoto(actor.viewer, photoId));
}

/** Bytes read from the start of an object to recognise its format and dimensions. */
const HEAD_BYTES = 256 * 1024;

/**
 * Checks what arrived for a PENDING upload before anyone sees it, moves it to the private originals and marks it
 * PROCESSING (the images function makes its variants, then READY): the object exists, has the size and type that
 * were signed, arrived before the URL expired, and its first bytes are an image of the declared format (whose
 * width and height are recorded). Verified photos are returned as they are, so retrying is harmless; concurrent
 * verifications of one upload agree: its writes are idempotent by themselves (they claim no Idempotency-Key; the
 * mutation that verifies on its way, createPost, claims its key with its own write).
 * @throws UploadError (the object and the record are deleted, except when the file has not arrived yet)
 */
export async function verifyUpload(actor: Actor, photo: PhotoRecord): Promise<PhotoRecord> {
  if (photo.status !== "PENDING") return photo;
  const { bucket } = storageConfig();
  const { CopyObjectCommand, GetObjectCommand, HeadObjectCommand, NotFound } = await awsS3();
  const client = await s3();
  let head: { ContentLength?: number; ContentType?: string; LastModified?: Date; ETag?: string };
  try {
    head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: photo.storageKey }));
  } catch (error) {
    if (!(error instanceof NotFound) && (error as { name?: string }).name !== "NotFound") throw error;
    // A concurrent verification may have moved it (and removed the upload) meanwhile.
    const current = await db().photo.findUnique({ where: { id: photo.id } });
    if (current && current.status !== "PENDING") return current;
    if (Date.now() > uploadExpiry(photo).getTime()) return reject(actor, photo, "EXPIRED");
    throw new UploadError("NOT_RECEIVED");
  }
  if (head.LastModified && head.LastModified.getTime() > uploadExpiry(photo).getTime() + 1000) {
    return reject(actor, photo, "EXPIRED");
  }
  if (head.ContentLength !== photo.byteSize) return reject(actor, photo, "SIZE_MISMATCH");
  if (head.ContentType !== photo.contentType) return reject(actor, photo, "TYPE_MISMATCH");

  // Every read is of the version the HEAD saw (If-Match): a PUT in between fails the check instead.
  const object = await client
    .send(
      new GetObjectCommand({
        Bucket: bucket,
        Key: photo.storageKey,
        Range: `bytes=0-${HEAD_BYTES - 1}`,
        IfMatch: head.ETag,
      }),
    )
    .catch((error) => changedMeanwhile(error, actor, photo));
  const bytes = Buffer.from(
    await (object.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
  );
  const { fileTypeFromBuffer } = await import("file-type");
  const detected = await fileTypeFromBuffer(bytes);
  if (!detected || !isPhotoType(detected.mime)) return reject(actor, photo, "NOT_AN_IMAGE");
  if (detected.mime !== photo.contentType) return reject(actor, photo, "TYPE_MISMATCH");
  let size: { width?: number; height?: number };
  try {
    size = imageSize(bytes);
  } catch {
    return reject(actor, photo, "NOT_AN_IMAGE");
  }
  // The verified bytes move to a key no upload URL was ever signed for: the presigned PUT stays valid until it
  // expires, and could otherwise replace what was verified. Copied only if it is still the version checked
  // above; the copy carries no pending tag (the lifecycle rule for abandoned uploads must not expire it). The
  // originals (o/) are private: only variants (v/) are ever shown to others. On AWS, the copy's arrival is what
  // triggers the images function (an S3 event notification on o/).
  const originalKey = photo.storageKey.replace(/^u\//, "o/");
  await client
    .send(
      new CopyObjectCommand({
        Bucket: bucket,
        Key: originalKey,
        CopySource: `${bucket}/${photo.storageKey}`,
        CopySourceIfMatch: head.ETag,
        TaggingDirective: "REPLACE",
        Tagging: "",
        ContentType: photo.contentType,
        MetadataDirective: "REPLACE",
      }),
    )
    .catch((error) => changedMeanwhile(error, actor, photo));
  await write(
    actor,
    async ({ tx, changed }) => {
      await tx.$executeRaw`
        UPDATE media SET status = 'PROCESSING', width = ${size.width ?? null}, height = ${size.height ?? null},
          storage_key = ${originalKey}
        WHERE id = ${photo.id}::uuid AND status = 'PENDING'`;
      changed(photoEntity.changed(photo.id));
    },
    { singleStatement: true, idempotent: true },
  );
  // The uploaded copy is no longer anyone's: a PUT still arriving through the URL recreates it, tagged pending,
  // for the bucket's lifecycle rule (and nothing points at it).
  await deleteObjects([photo.storageKey]);
  const current = await db().photo.findUnique({ where: { id: photo.id } });
  // Deleted meanwhile (the orphan cleanup): as good as never received.
  if (!current || current.status === "PENDING") throw new UploadError("EXPIRED");
  return current;
}

/** A conditional read or copy refused because the object changed after it was checked: a rejected upload. */
function changedMeanwhile(error: unknown, actor: Actor, photo: PhotoRecord): Promise<never> {
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  if (status === 412 || (error as { name?: string }).name === "PreconditionFailed") {
    return reject(actor, photo, "TYPE_MISMATCH");
  }
  throw error;
}

/** Deletes a rejected upload (object first, then the record) and throws why. */
async function reject(actor: Actor, photo: PhotoRecord, problem: UploadProblem): Promise<never> {
  logger().info({ mediaId: photo.id, problem }, "upload rejected");
  await deleteObjects([photo.storageKey]);
  await write(
    actor,
    async ({ tx, changed }) => {
      await tx.photo.deleteMany({ where: { id: photo.id, status: "PENDING" } });
      changed(photoEntity.changed(photo.id));
    },
    { singleStatement: true, idempotent: true },
  );
  throw new UploadError(problem);
}

/**
 * Deletes photos nothing uses, objects and records, in batches: uploads started and never completed (PENDING
 * and older than UPLOAD_ORPHAN_AGE_MINUTES), and verified photos in no post and no profile (never posted, or a
 * replaced avatar) older than UPLOAD_UNUSED_RETENTION_HOURS. Safe to run concurrently and repeatedly: each batch
 * locks its rows with SKIP LOCKED, so two runs never take the same photo (nor one a post is being made with),
 * and a rerun finds only what is left.
 * @returns how many photos were deleted.
 */
export async function deleteOrphanedUploads(
  options: { olderThanMinutes?: number; unusedOlderThanHours?: number; batchSize?: number } = {},
) {
  const minutes = options.olderThanMinutes ?? config().uploads.orphanAgeMinutes;
  const cutoff = new Date(Date.now() - minutes * 60_000);
  const hours = options.unusedOlderThanHours ?? config().uploads.unusedRetentionHours;
  const unusedCutoff = new Date(Date.now() - hours * 3_600_000);
  let deleted = 0;
  for (;;) {
    const batch = await write(null, async ({ tx, changed }) => {
      const rows = await tx.$queryRaw<{ id: string; ownerId: string; storageKey: string; variants: unknown }[]>`
        SELECT id, owner_id AS "ownerId", storage_key AS "storageKey", variants FROM media m
        WHERE (m.status = 'PENDING' AND m.created_at < ${cutoff})
           OR (m.status <> 'PENDING' AND m.post_id IS NULL AND m.created_at < ${unusedCutoff}
               AND NOT EXISTS (SELECT 1 FROM users u WHERE u.avatar_id = m.id))
        ORDER BY m.created_at LIMIT ${options.batchSize ?? 200}
        FOR UPDATE OF m SKIP LOCKED`;
      if (rows.length === 0) return rows;
      // Objects first: if deleting them fails, the records stay and the next run tries again.
      await deleteObjects(rows.flatMap(objectKeys));
      await tx.photo.deleteMany({ where: { id: { in: rows.map((row) => row.id) } } });
      changed(rows.map((row) => photoEntity.changed(row.id)));
      return rows;
    });
    if (batch.length === 0) break;
    deleted += batch.length;
  }
  return deleted;
}
