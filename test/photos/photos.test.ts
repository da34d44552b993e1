// The images function end to end, with real images: uploaded through presigned URLs to the configured object
// storage (the embedded s3rver; Ceph's RADOS Gateway in CI), made into variants by the images function as the
// target ships it (functions/images.ts; on bundled targets the bundle's images.mjs in a process of its own,
// invoked with the S3 event notification the bucket sends on AWS), and read back through GraphQL and the URLs it
// gives: dimensions, orientation, metadata (with an EXIF reader), transparency, placeholders, failures, privacy.

import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { DeleteObjectCommand, HeadObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import exifr from "exifr";
import sharp from "sharp";
import { thumbHashToApproximateAspectRatio, thumbHashToRGBA } from "thumbhash";
import { describe, expect, inject } from "vitest";
import { db } from "../../src/platform/db.ts";
import { s3, storageConfig } from "../../src/platform/storage.ts";
import { gql, ok, putUpload, type TestUser, test } from "../kit/helpers.ts";
import {
  bombPng,
  GPS,
  hugeJpeg,
  phoneHeic,
  phoneJpeg,
  photoWebp,
  transparentPng,
  truncatedJpeg,
} from "../kit/images.ts";
import { invokeFunction, startInstance } from "../kit/instances.ts";
import { mobile } from "../kit/operations.ts";
import { startProxy } from "../kit/tcp-proxy.ts";

const CREATE_UPLOAD = `mutation ($input: CreateUploadInput!) {
  createUpload(input: $input) {
    ... on CreateUploadSuccess { photo { id } upload { url headers { name value } } }
    ... on Error { code message }
  }
}`;
const CREATE_POST = `mutation ($ids: [ID!]!) {
  createPost(input: { photoIds: $ids, caption: "real photo" }) {
    __typename
    ... on CreatePostSuccess { post { id published photos { id status url placeholder } } }
    ... on Error { code message }
  }
}`;
const POST = `query ($id: ID!) { post(id: $id) { id published author { postCount } } }`;
const PHOTO = `query ($id: ID!) {
  node(id: $id) {
    ... on Photo {
      id status width height aspectRatio placeholder color originalUrl
      failure { reason message }
      url(width: 640, format: WEBP)
      jpeg: url(width: 5000, format: JPEG)
      variants { width height format byteSize url }
    }
  }
}`;

const CONTENT_TYPES = { jpeg: "image/jpeg", png: "image/png", webp: "image/webp", heic: "image/heic" } as const;
const idOf = (gid: string) => Buffer.from(gid, "base64").toString().split(":")[1] as string;

/** Uploads a file the way the apps do: createUpload, then a PUT with the headers given. @returns the photo's id */
async function upload(user: TestUser, bytes: Buffer, type: keyof typeof CONTENT_TYPES, purpose = "POST_PHOTO") {
  const data = await ok(
    CREATE_UPLOAD,
    { input: { contentType: CONTENT_TYPES[type], byteSize: bytes.length, purpose } },
    { token: user.token },
  );
  const { photo, upload } = data.createUpload;
  expect(await putUpload(upload, bytes)).toBe(200);
  return photo.id as string;
}

async function post(user: TestUser, photoIds: string[]) {
  const data = await ok(CREATE_POST, { ids: photoIds }, { token: user.token });
  expect(data.createPost.__typename).toBe("CreatePostSuccess");
  return data.createPost.post;
}

/** The message the bucket sends the images queue when a verified original arrives (an SQS record's body). */
async function notification(photoGid: string) {
  const media = await db().photo.findUniqueOrThrow({ where: { id: idOf(photoGid) } });
  expect(media.storageKey).toMatch(/^o\//);
  const body = JSON.stringify({
    Records: [
      {
        eventSource: "aws:s3",
        eventName: "ObjectCreated:Copy",
        s3: { bucket: { name: storageConfig().bucket }, object: { key: encodeURIComponent(media.storageKey) } },
      },
    ],
  });
  return { Records: [{ messageId: `m-${media.id}`, body, eventSource: "aws:sqs" }] };
}

/** Runs the images function for these photos, as the queue would deliver their notifications. */
async function processPhotos(...photoGids: string[]) {
  const outcomes = [];
  for (const gid of photoGids) outcomes.push((await invokeFunction("images", await notification(gid))).result);
  return outcomes;
}

const photo = async (user: TestUser, gid: string) => (await ok(PHOTO, { id: gid }, { token: user.token })).node;

const download = async (url: string) => {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  return Buffer.from(await response.arrayBuffer());
};

const objectExists = async (key: string) =>
  (await s3())
    .send(new HeadObjectCommand({ Bucket: storageConfig().bucket, Key: key }))
    .then(() => true)
    .catch(() => false);

/** Every object stored under a media's variants prefix. */
async function variantObjects(photoGid: string): Promise<string[]> {
  const media = await db().photo.findUniqueOrThrow({ where: { id: idOf(photoGid) } });
  const listed = await (await s3()).send(
    new ListObjectsV2Command({ Bucket: storageConfig().bucket, Prefix: `v/${media.ownerId}/${media.id}/` }),
  );
  return (listed.Contents ?? []).map((object) => object.Key as string).sort();
}

describe("a phone's JPEG (EXIF orientation 6, GPS)", () => {
  test("is hidden until processed, then shown turned upright in every size and format, with no metadata", async ({
    alice,
    bob,
  }) => {
    const original = await phoneJpeg(1600, 1200);
    expect(await exifr.gps(original)).toMatchObject(GPS);
    await mobile.follow(bob, { userId: alice.gid });
    const id = await upload(alice, original, "jpeg");
    const created = await post(alice, [id]);
    const FEED = `{ feed(first: 5) { edges { node { id } } } }`;
    const feedOf = async (user: TestUser) =>
      (await ok(FEED, {}, { token: user.token })).feed.edges.map((edge: any) => edge.node.id);
    // Verified, but no variant yet: the post is its author's alone.
    expect(created).toMatchObject({ published: false, photos: [{ id, status: "PROCESSING", url: null }] });
    expect((await ok(POST, { id: created.id }, { token: bob.token })).post).toBeNull();
    expect((await ok(POST, { id: created.id }, { token: alice.token })).post).toMatchObject({
      published: false,
      author: { postCount: 0 },
    });
    expect(await feedOf(bob)).not.toContain(created.id);
    expect(await feedOf(alice)).not.toContain(created.id);

    expect(await processPhotos(id)).toEqual([{ batchItemFailures: [] }]);
    expect(await feedOf(bob)).toContain(created.id);

    expect((await ok(POST, { id: created.id }, { token: bob.token })).post).toMatchObject({
      published: true,
      author: { postCount: 1 },
    });
    const shown = await photo(bob, id);
    // Stored 1600 × 1200, displayed 1200 × 1600.
    expect(shown).toMatchObject({ status: "READY", width: 1200, height: 1600, aspectRatio: 0.75, failure: null });
    expect(shown.color).toMatch(/^#[0-9a-f]{6}$/);
    // The ladder below 1200 (320, 640, 1080) and the photo's own width, each in three formats.
    expect(shown.variants.map((v: any) => `${v.width}x${v.height}.${v.format}`)).toEqual(
      [
        [320, 427],
        [640, 853],
        [1080, 1440],
        [1200, 1600],
      ].flatMap(([w, h]) => ["AVIF", "WEBP", "JPEG"].map((f) => `${w}x${h}.${f}`)),
    );
    for (const variant of shown.variants) {
      const bytes = await download(variant.url);
      expect(bytes.length).toBe(variant.byteSize);
      const meta = await sharp(bytes).metadata();
      expect({ width: meta.width, height: meta.height, format: meta.format }).toEqual({
        width: variant.width,
        height: variant.height,
        format: { AVIF: "heif", WEBP: "webp", JPEG: "jpeg" }[variant.format as string],
      });
      // Nothing of the camera's metadata: no EXIF (so no GPS, make, model, time), no XMP, no ICC profile.
      expect([meta.exif, meta.xmp, meta.icc, meta.orientation]).toEqual([undefined, undefined, undefined, undefined]);
      // Read back with an EXIF reader too (it reads JPEG and AVIF, not WebP).
      if (variant.format !== "WEBP") expect(await exifr.parse(bytes, true)).toBeUndefined();
    }
    // `url` picks the smallest variant at least as wide, in the format asked for; never upscaled.
    const small = await download(shown.url);
    expect(await sharp(small).metadata()).toMatchObject({ format: "webp", width: 640, height: 853 });
    expect(await sharp(await download(shown.jpeg)).metadata()).toMatchObject({ format: "jpeg", width: 1200 });
    // Upright: the red corner, stored top-left, is now top-right.
    const { data, info } = await sharp(small).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const pixel = (x: number, y: number) => [...data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3)];
    expect(pixel(info.width - 20, 20)[0]).toBeGreaterThan(200);
    expect(pixel(20, 20)[0]).toBeLessThan(100);
    // The placeholder decodes to an image of the photo's shape.
    const hash = Buffer.from(shown.placeholder, "base64");
    expect(hash.length).toBeLessThan(40);
    expect(thumbHashToApproximateAspectRatio(hash)).toBeCloseTo(0.75, 1);
    const preview = thumbHashToRGBA(hash);
    expect(preview.w / preview.h).toBeCloseTo(0.75, 1);
  });

  test("its original stays private: only its owner gets a URL for it, others only variants", async ({ alice, bob }) => {
    const original = await phoneJpeg(800, 600);
    const id = await upload(alice, original, "jpeg");
    await post(alice, [id]);
    await processPhotos(id);
    const media = await db().photo.findUniqueOrThrow({ where: { id: idOf(id) } });
    const mine = await photo(alice, id);
    expect(Buffer.compare(await download(mine.originalUrl), original)).toBe(0);
    const theirs = await photo(bob, id);
    expect(theirs.originalUrl).toBeNull();
    // Nothing anyone else is given points at the original object.
    const seen = JSON.stringify(await gql(PHOTO, { id }, { token: bob.token }));
    expect(seen).not.toContain(media.storageKey);
    expect(seen).not.toContain(encodeURIComponent(media.storageKey));
    for (const variant of theirs.variants)
      expect(new URL(variant.url).pathname).toMatch(/\/v\/[0-9a-f-]+\/[0-9a-f-]+\//);
    // Signed out, the same.
    expect((await gql(PHOTO, { id })).data?.node.originalUrl).toBeNull();
    if (process.env.S3_ENFORCES_SIGNATURES === "true") {
      // A variant's signature does not open the original (a store that checks signatures refuses it).
      const forged = new URL(theirs.url);
      forged.pathname = forged.pathname.replace(/\/v\/.*$/, `/${media.storageKey}`);
      expect((await fetch(forged)).status).toBe(403);
    }
  });

  test("redelivered and concurrent notifications make the variants once and publish the post once", async ({
    alice,
  }) => {
    const id = await upload(alice, await phoneJpeg(640, 480), "jpeg");
    const created = await post(alice, [id]);
    const event = await notification(id);
    const [first, second] = await Promise.all([
      invokeFunction("images", event).then((r) => r.result),
      invokeFunction("images", event).then((r) => r.result),
    ]);
    expect([first, second]).toEqual([{ batchItemFailures: [] }, { batchItemFailures: [] }]);
    const after = await db().photo.findUniqueOrThrow({ where: { id: idOf(id) } });
    expect(after).toMatchObject({ status: "READY", processingAttempts: 1 });
    // Delivered once more, much later: nothing changes.
    expect((await invokeFunction("images", { mediaId: idOf(id) })).result).toEqual({ outcome: "skipped" });
    expect(await db().photo.findUniqueOrThrow({ where: { id: idOf(id) } })).toEqual(after);
    expect((await ok(POST, { id: created.id }, { token: alice.token })).post.author.postCount).toBe(1);
    const published = await db().outboxEvent.count({
      where: { kind: "post.created", payload: { path: ["postId"], equals: idOf(created.id) } },
    });
    expect(published).toBe(1);
    expect(await variantObjects(id)).toHaveLength(after.variants ? (after.variants as unknown[]).length : -1);
  });
});

test("a PNG's transparency is kept in WebP and AVIF; its JPEG fallback is drawn on white", async ({ alice }) => {
  const id = await upload(alice, await transparentPng(800, 600), "png");
  await post(alice, [id]);
  await processPhotos(id);
  const shown = await photo(alice, id);
  const at640 = (format: string) => shown.variants.find((v: any) => v.width === 640 && v.format === format);
  for (const format of ["WEBP", "AVIF"]) {
    const { data, info } = await sharp(await download(at640(format).url))
      .raw()
      .toBuffer({ resolveWithObject: true });
    expect(info.channels).toBe(4);
    expect(data[(10 * info.width + 600) * 4 + 3]).toBe(0); // right half: transparent
    expect(data[(10 * info.width + 10) * 4 + 3]).toBe(255); // left half: opaque
  }
  const { data, info } = await sharp(await download(at640("JPEG").url))
    .raw()
    .toBuffer({ resolveWithObject: true });
  expect(info.channels).toBe(3);
  expect([...data.subarray((10 * info.width + 600) * 3, (10 * info.width + 600) * 3 + 3)]).toEqual([255, 255, 255]);
});

test("a WebP becomes variants like any photo", async ({ alice }) => {
  const id = await upload(alice, await photoWebp(1000, 1000), "webp");
  await post(alice, [id]);
  await processPhotos(id);
  const shown = await photo(alice, id);
  expect(shown).toMatchObject({ status: "READY", width: 1000, height: 1000, aspectRatio: 1 });
  expect(shown.variants.filter((v: any) => v.format === "JPEG").map((v: any) => v.width)).toEqual([320, 640, 1000]);
});

test("a phone's HEIC (HEVC, which libvips cannot read) is decoded, with its GPS left behind", async ({ alice }) => {
  const heic = phoneHeic();
  // The fixture does carry a position: its EXIF item, read as the TIFF block it is.
  expect(await exifr.gps(heic.subarray(heic.indexOf("II*\0", 0, "latin1")))).toMatchObject(GPS);
  const id = await upload(alice, heic, "heic");
  await post(alice, [id]);
  await processPhotos(id);
  const shown = await photo(alice, id);
  expect(shown).toMatchObject({ status: "READY", width: 1200, height: 900 });
  for (const variant of shown.variants.filter((v: any) => v.width === 1200)) {
    const bytes = await download(variant.url);
    const meta = await sharp(bytes).metadata();
    expect([meta.width, meta.height, meta.exif, meta.xmp]).toEqual([1200, 900, undefined, undefined]);
    if (variant.format !== "WEBP") expect(await exifr.parse(bytes, true)).toBeUndefined();
  }
});

test("a 48-megapixel photo is processed, and nothing larger than the cap is made", async ({ alice }) => {
  const id = await upload(alice, await hugeJpeg(), "jpeg");
  await post(alice, [id]);
  await processPhotos(id);
  const shown = await photo(alice, id);
  expect(shown).toMatchObject({ status: "READY", width: 8000, height: 6000 });
  expect(Math.max(...shown.variants.map((v: any) => v.width))).toBe(2048);
  expect(shown.variants.filter((v: any) => v.format === "WEBP").map((v: any) => [v.width, v.height])).toEqual([
    [320, 240],
    [640, 480],
    [1080, 810],
    [1440, 1080],
    [2048, 1536],
  ]);
});

describe("files that are not usable photos fail, tell their owner why, and leave nothing public", () => {
  test.for([
    ["a truncated JPEG", truncatedJpeg, "jpeg", "UNREADABLE"],
    ["a decompression bomb (a 400-megapixel PNG of 50 KB)", async () => bombPng(), "png", "TOO_LARGE"],
  ] as const)("%s", async ([, make, type, reason], { alice, bob }) => {
    const bytes = await make();
    const id = await upload(alice, bytes, type);
    const created = await post(alice, [id]);
    expect(await processPhotos(id)).toEqual([{ batchItemFailures: [] }]);
    const mine = await photo(alice, id);
    expect(mine).toMatchObject({ status: "FAILED", url: null, variants: [], placeholder: null });
    expect(mine.failure.reason).toBe(reason);
    expect(mine.failure.message).toMatch(/upload/i);
    // Nobody else sees the photo or its post, and no variant was left in storage.
    expect(await photo(bob, id)).toBeNull();
    expect((await ok(POST, { id: created.id }, { token: bob.token })).post).toBeNull();
    expect(await variantObjects(id)).toEqual([]);
    // Not retried: the same bytes would fail the same way.
    expect(await db().photo.findUniqueOrThrow({ where: { id: idOf(id) } })).toMatchObject({ processingAttempts: 1 });
  });
});

test("an avatar gets its own small ladder of square variants", async ({ alice, bob }) => {
  const id = await upload(alice, await phoneJpeg(1600, 1200), "jpeg", "AVATAR");
  const updated = await ok(
    `mutation ($id: ID!) { updateProfile(input: { avatarPhotoId: $id }) { __typename } }`,
    { id },
    { token: alice.token },
  );
  expect(updated.updateProfile.__typename).toBe("UpdateProfileSuccess");
  const AVATAR = `query ($handle: String!) { user(handle: $handle) { avatar { aspectRatio url(width: 100) variants(format: JPEG) { width height } } } }`;
  expect((await ok(AVATAR, { handle: alice.handle }, { token: bob.token })).user.avatar).toBeNull();
  await processPhotos(id);
  const { avatar } = (await ok(AVATAR, { handle: alice.handle }, { token: bob.token })).user;
  expect(avatar.aspectRatio).toBe(1);
  expect(avatar.variants).toEqual([64, 128, 256, 512].map((side) => ({ width: side, height: side })));
  expect(await sharp(await download(avatar.url)).metadata()).toMatchObject({ width: 128, height: 128, format: "webp" });
});

test("publishing a post, the images function purges the CDN of what showed it without the post", async ({ alice }) => {
  const purged: string[][] = [];
  const hook = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      purged.push((JSON.parse(body) as { keys: string[] }).keys);
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, "127.0.0.1", resolve));
  try {
    const id = await upload(alice, await photoWebp(400, 300), "webp");
    const created = await post(alice, [id]);
    const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/purge`;
    const invocation = await invokeFunction("images", await notification(id), { CDN_PURGE_URL: url });
    expect(invocation.result).toEqual({ batchItemFailures: [] });
    // The post, now public, and its author's counters: the answers that read them are purged.
    expect(purged.flat()).toEqual(expect.arrayContaining([`post:${idOf(created.id)}`, `user-counts:${alice.id}`]));
  } finally {
    await new Promise((resolve) => hook.close(resolve));
  }
});

test("the schedule picks up photos whose notification was lost; one whose workers keep dying fails", async ({
  alice,
}) => {
  const lost = await upload(alice, await photoWebp(400, 300), "webp");
  const dying = await upload(alice, await photoWebp(400, 300), "webp");
  const released = await upload(alice, await photoWebp(400, 300), "webp");
  await post(alice, [lost]);
  await post(alice, [dying]);
  await post(alice, [released]);
  // Its attempts used up and its claim released (IMAGE_MAX_ATTEMPTS lowered since): it fails, and the sweep ends.
  await db().photo.update({
    where: { id: idOf(released) },
    data: { processingAttempts: 3, processingStartedAt: null },
  });
  // Three invocations claimed it and never reported back (killed: out of memory, or past their timeout).
  await db().photo.update({
    where: { id: idOf(dying) },
    data: { processingAttempts: 3, processingStartedAt: new Date(Date.now() - 10 * 60_000) },
  });
  // A scheduled invocation (EventBridge sends its own event shape: anything but queue records or a media id).
  const { result } = await invokeFunction("images", { source: "aws.events", "detail-type": "Scheduled Event" });
  expect(result).toMatchObject({ ready: expect.any(Number), failed: expect.any(Number) });
  expect(result.ready).toBeGreaterThanOrEqual(1);
  expect((await photo(alice, lost)).status).toBe("READY");
  expect(await photo(alice, dying)).toMatchObject({ status: "FAILED", failure: { reason: "PROCESSING_FAILED" } });
  expect(await photo(alice, released)).toMatchObject({ status: "FAILED", failure: { reason: "PROCESSING_FAILED" } });
});

test("with IMAGE_ORIGINALS=delete the original is gone once the variants exist", async ({ alice }) => {
  const id = await upload(alice, await phoneJpeg(640, 480), "jpeg");
  await post(alice, [id]);
  const { storageKey } = await db().photo.findUniqueOrThrow({ where: { id: idOf(id) } });
  expect(await objectExists(storageKey)).toBe(true);
  const { result } = await invokeFunction("images", await notification(id), { IMAGE_ORIGINALS: "delete" });
  expect(result).toEqual({ batchItemFailures: [] });
  expect(await objectExists(storageKey)).toBe(false);
  expect((await variantObjects(id)).length).toBeGreaterThan(0);
  expect((await photo(alice, id)).status).toBe("READY");
});

test("the same pipeline on the embedded S3 (s3rver, as `npm run dev` runs it)", async ({ alice, bob }) => {
  // The run's object storage is Ceph's RADOS Gateway in CI: this runs the path once more on s3rver, whichever.
  const storage = inject("s3rver");
  const instance = await startInstance(storage);
  const original = await phoneJpeg(1200, 800);
  const { data } = await instance.query(
    CREATE_UPLOAD,
    { input: { contentType: "image/jpeg", byteSize: original.length, purpose: "POST_PHOTO" } },
    alice.token,
  );
  const { photo, upload: target } = data.createUpload;
  expect(new URL(target.url).origin).toBe(storage.S3_ENDPOINT);
  expect(await putUpload(target, original)).toBe(200);
  const posted = await instance.query(CREATE_POST, { ids: [photo.id] }, alice.token);
  expect(posted.data.createPost.post.published).toBe(false);
  const { result } = await invokeFunction("images", { mediaId: idOf(photo.id) }, storage);
  expect(result).toEqual({ outcome: "ready" });
  const shown = (await instance.query(PHOTO, { id: photo.id }, bob.token)).data.node;
  expect(shown).toMatchObject({ status: "READY", width: 800, height: 1200, originalUrl: null });
  const bytes = await download(shown.url);
  expect(new URL(shown.url).origin).toBe(storage.S3_ENDPOINT);
  const meta = await sharp(bytes).metadata();
  expect([meta.format, meta.width, meta.height, meta.exif]).toEqual(["webp", 640, 960, undefined]);
});

test("storage out of reach costs no attempt: the photo waits through the outage, then is processed", async ({
  alice,
}) => {
  const id = await upload(alice, await photoWebp(400, 300), "webp");
  await post(alice, [id]);
  const event = await notification(id);
  const messageId = event.Records[0]?.messageId;
  const storage = await startProxy(process.env.S3_ENDPOINT as string);
  const viaProxy = { S3_ENDPOINT: storage.url.replace(/\/$/, "") };
  try {
    storage.setMode("down");
    // More deliveries than IMAGE_MAX_ATTEMPTS (3): each reported failed for the queue to retry, none counted.
    for (let delivery = 1; delivery <= 4; delivery++) {
      expect((await invokeFunction("images", event, viaProxy)).result).toEqual({
        batchItemFailures: [{ itemIdentifier: messageId }],
      });
    }
    expect(await db().photo.findUniqueOrThrow({ where: { id: idOf(id) } })).toMatchObject({
      status: "PROCESSING",
      processingAttempts: 0,
      processingStartedAt: null,
    });
    storage.setMode("forward");
    expect((await invokeFunction("images", event, viaProxy)).result).toEqual({ batchItemFailures: [] });
    expect(await photo(alice, id)).toMatchObject({ status: "READY" });
  } finally {
    await storage.close();
  }
});

test("storage trouble is retried through the queue, then fails after IMAGE_MAX_ATTEMPTS", async ({ alice }) => {
  const id = await upload(alice, await photoWebp(400, 300), "webp");
  await post(alice, [id]);
  const event = await notification(id);
  // The original cannot be read: gone from the bucket (a 404, the photo's own trouble; storage that cannot be
  // reached is not, and gives the attempt back: the next test).
  const { storageKey } = await db().photo.findUniqueOrThrow({ where: { id: idOf(id) } });
  await (await s3()).send(new DeleteObjectCommand({ Bucket: storageConfig().bucket, Key: storageKey }));
  const messageId = event.Records[0]?.messageId;
  for (const attempt of [1, 2]) {
    // The message is reported failed, so the queue delivers it again; the claim is released for that delivery.
    expect((await invokeFunction("images", event)).result).toEqual({
      batchItemFailures: [{ itemIdentifier: messageId }],
    });
    expect(await db().photo.findUniqueOrThrow({ where: { id: idOf(id) } })).toMatchObject({
      status: "PROCESSING",
      processingAttempts: attempt,
      processingStartedAt: null,
    });
  }
  expect((await invokeFunction("images", event)).result).toEqual({ batchItemFailures: [] });
  expect(await photo(alice, id)).toMatchObject({ status: "FAILED", failure: { reason: "PROCESSING_FAILED" } });
  expect(await variantObjects(id)).toEqual([]);
});
