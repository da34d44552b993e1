// Photo uploads through presigned URLs, end to end over HTTP, against the configured object storage (the
// embedded s3rver by default; Ceph's RADOS Gateway in CI). What only a signature-checking store can refuse at
// PUT time is in uploads.s3.test.ts; everything here is enforced by Shutter itself.
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { describe, expect } from "vitest";
import { db } from "../../src/platform/db.ts";
import { s3, storageConfig } from "../../src/platform/storage.ts";
import { deleteOrphanedUploads } from "../../src/services/uploads.ts";
import { createPost, createUser, gql, ok, rowCounts, type TestUser, test } from "../kit/helpers.ts";
import { heic, jpeg, png, webp } from "../kit/images.ts";
import { startInstance } from "../kit/instances.ts";

const CREATE_UPLOAD = `mutation ($input: CreateUploadInput!) {
  createUpload(input: $input) {
    __typename
    ... on CreateUploadSuccess { photo { id status contentType byteSize purpose } upload { url method headers { name value } expiresAt } }
    ... on Error { code message }
  }
}`;
const CREATE_POST = `mutation ($ids: [ID!]!) {
  createPost(input: { photoIds: $ids, caption: "uploaded" }) {
    __typename
    ... on CreatePostSuccess { post { id published photos { id status url originalUrl width height contentType } } }
    ... on UploadError { code message problem }
    ... on Error { code message }
  }
}`;
const COMPLETE = `mutation ($id: ID!) {
  completeUpload(input: { photoId: $id }) {
    __typename
    ... on CompleteUploadSuccess { photo { id status width height url originalUrl } }
    ... on UploadError { code message problem }
    ... on Error { code message }
  }
}`;

interface Started {
  photo: { id: string; status: string };
  upload: { url: string; method: string; headers: { name: string; value: string }[]; expiresAt: string };
}

async function startUpload(
  user: TestUser,
  contentType: string,
  byteSize: number,
  purpose = "POST_PHOTO",
): Promise<Started> {
  const data = await ok(CREATE_UPLOAD, { input: { contentType, byteSize, purpose } }, { token: user.token });
  if (data.createUpload.__typename !== "CreateUploadSuccess") throw new Error(JSON.stringify(data.createUpload));
  return data.createUpload;
}

/** PUTs bytes to a presigned URL the way an app would: with the headers it was given. */
async function put(started: Started, body: Buffer, headers?: Record<string, string>) {
  const given = Object.fromEntries(started.upload.headers.map((h) => [h.name, h.value]));
  // fetch computes Content-Length from the body itself.
  delete given["Content-Length"];
  const response = await fetch(started.upload.url, {
    method: started.upload.method,
    headers: { ...given, ...headers },
    body: new Uint8Array(body),
  });
  await response.arrayBuffer();
  return response.status;
}

const objectExists = async (key: string) =>
  (await s3())
    .send(new HeadObjectCommand({ Bucket: storageConfig().bucket, Key: key }))
    .then(() => true)
    .catch(() => false);

const mediaId = (gid: string) => Buffer.from(gid, "base64").toString().split(":")[1] as string;

describe("the upload flow", () => {
  test.each([
    ["image/jpeg", jpeg(), 1, 1],
    ["image/png", png(4, 3), 4, 3],
    ["image/webp", webp(), 1, 1],
    ["image/heic", heic(640, 480), 640, 480],
  ] as const)(
    "%s: createUpload → PUT → createPost → verified, private to its owner, waiting for its variants",
    async (type, bytes, width, height) => {
      const alice = await createUser();
      const started = await startUpload(alice, type, bytes.length);
      expect(started.photo).toMatchObject({
        status: "PENDING",
        contentType: type,
        byteSize: bytes.length,
        purpose: "POST_PHOTO",
      });
      expect(started.upload.method).toBe("PUT");
      expect(await put(started, bytes)).toBe(200);
      const data = await ok(CREATE_POST, { ids: [started.photo.id] }, { token: alice.token });
      expect(data.createPost.__typename).toBe("CreatePostSuccess");
      // Published once the images function has made its variants (test/photos.test.ts); until then its author's.
      expect(data.createPost.post.published).toBe(false);
      const [photo] = data.createPost.post.photos;
      expect(photo).toMatchObject({ id: started.photo.id, status: "PROCESSING", url: null, width, height });
      expect(photo.contentType).toBe(type);
      // The original, exactly as uploaded, for its owner.
      const served = await fetch(photo.originalUrl);
      expect(served.status).toBe(200);
      expect(Buffer.from(await served.arrayBuffer())).toEqual(bytes);
    },
  );

  test("the presigned PUT binds the server-chosen key, the type and the length, for minutes", async ({ alice }) => {
    const started = await startUpload(alice, "image/png", 1234);
    const url = new URL(started.upload.url);
    const key = decodeURIComponent(url.pathname).split(`/${storageConfig().bucket}/`)[1] ?? url.pathname.slice(1);
    expect(key).toMatch(new RegExp(`^u/${alice.id}/[0-9a-f-]{36}\\.png$`));
    expect(url.searchParams.get("X-Amz-SignedHeaders")?.split(";")).toEqual([
      "content-length",
      "content-type",
      "host",
      "x-amz-tagging",
    ]);
    expect(Number(url.searchParams.get("X-Amz-Expires"))).toBe(300);
    expect(new Date(started.upload.expiresAt).getTime() - Date.now()).toBeLessThanOrEqual(300_000);
    expect(started.upload.headers).toEqual([
      { name: "Content-Type", value: "image/png" },
      { name: "Content-Length", value: "1234" },
      { name: "X-Amz-Tagging", value: "shutter-upload=pending" },
    ]);
  });

  test("completeUpload verifies once; retries and later use are harmless", async ({ alice }) => {
    const bytes = png(8, 6);
    const started = await startUpload(alice, "image/png", bytes.length);
    const early = await ok(COMPLETE, { id: started.photo.id }, { token: alice.token });
    expect(early.completeUpload).toMatchObject({
      __typename: "UploadError",
      code: "UPLOAD_INVALID",
      problem: "NOT_RECEIVED",
    });
    await put(started, bytes);
    for (let i = 0; i < 2; i++) {
      const done = await ok(COMPLETE, { id: started.photo.id }, { token: alice.token });
      expect(done.completeUpload.photo).toMatchObject({ status: "PROCESSING", width: 8, height: 6 });
    }
    expect((await ok(CREATE_POST, { ids: [started.photo.id] }, { token: alice.token })).createPost.__typename).toBe(
      "CreatePostSuccess",
    );
  });

  test("an avatar upload becomes the profile picture", async ({ alice }) => {
    const bytes = png(2, 2);
    const started = await startUpload(alice, "image/png", bytes.length, "AVATAR");
    await put(started, bytes);
    const data = await ok(
      `mutation ($id: ID!) { updateProfile(input: { avatarPhotoId: $id }) { ... on UpdateProfileSuccess { user { avatar { id status width } } } ... on Error { code } } }`,
      { id: started.photo.id },
      { token: alice.token },
    );
    // Set now, shown once READY (the images function: test/photos.test.ts).
    expect(data.updateProfile.user.avatar).toBeNull();
    const { avatarId } = await db().user.findUniqueOrThrow({ where: { id: alice.id } });
    expect(avatarId).toBe(mediaId(started.photo.id));
    expect(await db().photo.findUniqueOrThrow({ where: { id: avatarId as string } })).toMatchObject({
      status: "PROCESSING",
      width: 2,
    });
  });
});

describe("rejections", () => {
  test("bytes that are not an image of the declared type: refused, object and record deleted", async ({ alice }) => {
    const text = Buffer.from("definitely not a picture, just some text pretending");
    const started = await startUpload(alice, "image/png", text.length);
    expect(await put(started, text)).toBe(200); // type and size are what was signed: storage accepts it
    const key = (await db().photo.findUniqueOrThrow({ where: { id: mediaId(started.photo.id) } })).storageKey;
    const before = await rowCounts();
    const data = await ok(CREATE_POST, { ids: [started.photo.id] }, { token: alice.token });
    expect(data.createPost).toMatchObject({
      __typename: "UploadError",
      code: "UPLOAD_INVALID",
      problem: "NOT_AN_IMAGE",
    });
    expect(data.createPost.message).toContain("not a JPEG, PNG, WebP or HEIC image");
    expect(await objectExists(key)).toBe(false);
    expect(await rowCounts()).toEqual({ ...before, photos: before.photos - 1 });
  });

  test("an image of another type than declared is refused (file signature check)", async ({ alice }) => {
    const bytes = jpeg();
    const started = await startUpload(alice, "image/png", bytes.length);
    await put(started, bytes);
    const data = await ok(COMPLETE, { id: started.photo.id }, { token: alice.token });
    expect(data.completeUpload).toMatchObject({ code: "UPLOAD_INVALID", problem: "TYPE_MISMATCH" });
  });

  test("an object of another size or type than signed is refused, whatever the storage let in", async ({ alice }) => {
    // As a store that does not check signatures would accept it.
    for (const [problem, object] of [
      ["SIZE_MISMATCH", { Body: png(9, 9), ContentType: "image/png" }],
      ["TYPE_MISMATCH", { Body: png(4, 3), ContentType: "image/webp" }],
    ] as const) {
      const started = await startUpload(alice, "image/png", png(4, 3).length);
      const { storageKey } = await db().photo.findUniqueOrThrow({ where: { id: mediaId(started.photo.id) } });
      await (await s3()).send(new PutObjectCommand({ Bucket: storageConfig().bucket, Key: storageKey, ...object }));
      const data = await ok(COMPLETE, { id: started.photo.id }, { token: alice.token });
      expect(data.completeUpload, problem).toMatchObject({ code: "UPLOAD_INVALID", problem });
      expect(await objectExists(storageKey)).toBe(false);
    }
  });

  test("an expired upload is refused and cleared", async ({ alice }) => {
    const started = await startUpload(alice, "image/png", 100);
    await db().photo.update({
      where: { id: mediaId(started.photo.id) },
      data: { createdAt: new Date(Date.now() - 10 * 60_000) },
    });
    const data = await ok(CREATE_POST, { ids: [started.photo.id] }, { token: alice.token });
    expect(data.createPost).toMatchObject({ code: "UPLOAD_INVALID", problem: "EXPIRED" });
    expect(await db().photo.count({ where: { id: mediaId(started.photo.id) } })).toBe(0);
  });

  test("someone else's upload cannot be completed, posted or used as an avatar", async ({ alice, bob }) => {
    const bytes = png();
    const started = await startUpload(bob, "image/png", bytes.length);
    await put(started, bytes);
    const before = await rowCounts();
    expect((await ok(COMPLETE, { id: started.photo.id }, { token: alice.token })).completeUpload.code).toBe(
      "FORBIDDEN",
    );
    expect((await ok(CREATE_POST, { ids: [started.photo.id] }, { token: alice.token })).createPost.code).toBe(
      "FORBIDDEN",
    );
    expect(await rowCounts()).toEqual(before);
    // Others never see a pending photo at all.
    expect(
      (await ok(`query ($id: ID!) { node(id: $id) { id } }`, { id: started.photo.id }, { token: alice.token })).node,
    ).toBeNull();
  });

  test.each([
    [{ contentType: "image/gif", byteSize: 10 }, "JPEG, PNG, WebP or HEIC"],
    [{ contentType: "image/png", byteSize: 0 }, "at most 15 MB"],
    [{ contentType: "image/png", byteSize: 16 * 1024 * 1024 }, "at most 15 MB; this one is 16.0 MB"],
  ])("createUpload(%o) is a validation error", async (input, message) => {
    const alice = await createUser();
    const before = await rowCounts();
    const data = await ok(CREATE_UPLOAD, { input: { ...input, purpose: "POST_PHOTO" } }, { token: alice.token });
    expect(data.createUpload).toMatchObject({ __typename: "ValidationError", code: "BAD_USER_INPUT" });
    expect(data.createUpload.message).toContain(message);
    expect(await rowCounts()).toEqual(before);
  });

  test("unused photos are capped per person, verified ones included, however many requests race", async ({ alice }) => {
    const instance = await startInstance({ UPLOAD_MAX_PENDING: "3" });
    try {
      // A verified photo in no post counts as much as an upload still pending.
      const bytes = png();
      const verified = await startUpload(alice, "image/png", bytes.length);
      await put(verified, bytes);
      expect((await ok(COMPLETE, { id: verified.photo.id }, { token: alice.token })).completeUpload.photo.status).toBe(
        "PROCESSING",
      );
      const ask = () =>
        instance.query(
          CREATE_UPLOAD,
          { input: { contentType: "image/png", byteSize: 10, purpose: "POST_PHOTO" } },
          alice.token,
        );
      // Six at once against two places left: each takes its place under a lock, none slips past the count.
      const results = await Promise.all(Array.from({ length: 6 }, ask));
      const outcomes = results.map((r) => r.data.createUpload.__typename).sort();
      expect(outcomes).toEqual([...Array(2).fill("CreateUploadSuccess"), ...Array(4).fill("QuotaExceededError")]);
      expect(await db().photo.count({ where: { ownerId: alice.id } })).toBe(3);
      // Used in a post, it no longer counts.
      await ok(CREATE_POST, { ids: [verified.photo.id] }, { token: alice.token });
      expect((await ask()).data.createUpload.__typename).toBe("CreateUploadSuccess");
    } finally {
      await instance.close();
    }
  });

  test("once verified, the upload URL can no longer change the photo", async ({ alice }) => {
    const original = png(8, 6);
    const started = await startUpload(alice, "image/png", original.length);
    await put(started, original);
    const done = await ok(COMPLETE, { id: started.photo.id }, { token: alice.token });
    expect(done.completeUpload.photo.status).toBe("PROCESSING");
    // The URL is still within its lifetime, and the bytes are what it was signed for (type, length):
    // the storage takes them...
    const swapped = Buffer.alloc(original.length, 0x41);
    expect(await put(started, swapped)).toBe(200);
    // ...but the photo is no longer at that key: it still serves what was verified.
    const { originalUrl } = (
      await ok(
        `query ($id: ID!) { node(id: $id) { ... on Photo { originalUrl } } }`,
        {
          id: started.photo.id,
        },
        { token: alice.token },
      )
    ).node;
    const served = Buffer.from(await (await fetch(originalUrl)).arrayBuffer());
    expect(served).toEqual(original);
    const { storageKey } = await db().photo.findUniqueOrThrow({ where: { id: mediaId(started.photo.id) } });
    expect(storageKey).toMatch(new RegExp(`^o/${alice.id}/`));
  });
});

describe("photo URLs", () => {
  test("presigned GETs are the same URL for a while (cacheable), or the CDN's when one is configured", async ({
    alice,
  }) => {
    const post = await createPost(alice);
    const [photo] = post.photos;
    const query = `query ($id: ID!) { post(id: $id) { photos { url(width: 600) originalUrl } } }`;
    const read = async () => (await ok(query, { id: post.gid }, { token: alice.token })).post.photos[0];
    const first = await read();
    expect(await read()).toEqual(first);
    expect(new URL(first.url).searchParams.get("X-Amz-Expires")).toBe("7200");
    // The smallest variant at least 600 wide, in WebP.
    expect(new URL(first.url).pathname).toMatch(new RegExp(`/v/${alice.id}/${photo?.id}/640\\.webp$`));
    const cdn = await startInstance({ S3_PUBLIC_BASE_URL: "https://photos.example.com" });
    try {
      const viaCdn = (await cdn.query(query, { id: post.gid }, alice.token)).data.post.photos[0];
      expect(viaCdn.url).toBe(`https://photos.example.com/v/${alice.id}/${photo?.id}/640.webp`);
      // The original never goes through the CDN: still a presigned URL, for its owner only.
      expect(new URL(viaCdn.originalUrl).searchParams.get("X-Amz-Expires")).toBe("7200");
      expect(new URL(viaCdn.originalUrl).pathname).toContain(`o/${alice.id}/${photo?.id}`);
    } finally {
      await cdn.close();
    }
  });
});

describe("abandoned uploads", () => {
  test("the cleanup deletes old PENDING uploads (objects and records), safely in parallel and again", async ({
    alice,
  }) => {
    const old = [];
    for (let i = 0; i < 5; i++) {
      const bytes = png(1, i + 1);
      const started = await startUpload(alice, "image/png", bytes.length);
      await put(started, bytes);
      old.push(mediaId(started.photo.id));
    }
    await db().photo.updateMany({
      where: { id: { in: old } },
      data: { createdAt: new Date(Date.now() - 2 * 3600_000) },
    });
    const keys = (await db().photo.findMany({ where: { id: { in: old } } })).map((m) => m.storageKey);
    const fresh = await startUpload(alice, "image/png", 10);
    const ready = await startUpload(alice, "image/png", png().length);
    await put(ready, png());
    await ok(COMPLETE, { id: ready.photo.id }, { token: alice.token });
    await db().photo.update({
      where: { id: mediaId(ready.photo.id) },
      data: { createdAt: new Date(Date.now() - 2 * 3600_000) },
    });

    const counts = await Promise.all([
      deleteOrphanedUploads({ batchSize: 2 }),
      deleteOrphanedUploads({ batchSize: 2 }),
    ]);
    expect(counts[0] + counts[1]).toBe(5);
    expect(await deleteOrphanedUploads()).toBe(0);
    expect(await db().photo.count({ where: { id: { in: old } } })).toBe(0);
    for (const key of keys) expect(await objectExists(key)).toBe(false);
    expect(await db().photo.count({ where: { id: { in: [mediaId(fresh.photo.id), mediaId(ready.photo.id)] } } })).toBe(
      2,
    );
    const { handler } = await import("../../functions/cleanup.ts");
    expect(await handler()).toEqual({ deleted: 0 });
  });
});

describe("photos nothing uses", () => {
  const setAvatar = (user: TestUser, id: string) =>
    ok(
      `mutation ($id: ID!) { updateProfile(input: { avatarPhotoId: $id }) { __typename } }`,
      { id },
      { token: user.token },
    );

  test("are deleted after UPLOAD_UNUSED_RETENTION_HOURS: photos never posted, replaced avatars", async ({ alice }) => {
    const upload = async (purpose = "POST_PHOTO") => {
      const bytes = png();
      const started = await startUpload(alice, "image/png", bytes.length, purpose);
      await put(started, bytes);
      await ok(COMPLETE, { id: started.photo.id }, { token: alice.token });
      return started.photo.id;
    };
    const neverPosted = await upload();
    const posted = await upload();
    await ok(CREATE_POST, { ids: [posted] }, { token: alice.token });
    const firstAvatar = await upload("AVATAR");
    await setAvatar(alice, firstAvatar);
    const currentAvatar = await upload("AVATAR");
    await setAvatar(alice, currentAvatar);
    const ids = [neverPosted, posted, firstAvatar, currentAvatar].map(mediaId);
    await db().photo.updateMany({
      where: { id: { in: ids } },
      data: { createdAt: new Date(Date.now() - 25 * 3600_000) },
    });
    const keys = Object.fromEntries(
      (await db().photo.findMany({ where: { id: { in: ids } } })).map((m) => [m.id, m.storageKey]),
    );

    expect(await deleteOrphanedUploads()).toBe(2);
    const left = (await db().photo.findMany({ where: { id: { in: ids } } })).map((m) => m.id).sort();
    expect(left).toEqual([mediaId(posted), mediaId(currentAvatar)].sort());
    for (const gone of [neverPosted, firstAvatar])
      expect(await objectExists(keys[mediaId(gone)] as string)).toBe(false);
    expect(await objectExists(keys[mediaId(posted)] as string)).toBe(true);
  });
});

test("signed out, uploads can't be started", async () => {
  const result = await gql(CREATE_UPLOAD, { input: { contentType: "image/png", byteSize: 10, purpose: "POST_PHOTO" } });
  expect(result.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
  const { Body } = await (await s3())
    .send(new GetObjectCommand({ Bucket: storageConfig().bucket, Key: "missing" }))
    .catch((error) => ({ Body: error.name }));
  expect(Body).toBe("NoSuchKey");
});
