// What a real S3 refuses at PUT time for Shutter's presigned URLs (runs against Ceph's RADOS Gateway:
// scripts/ceph-s3.sh; the embedded dev server checks no signatures: see docs/photos.md).
import { GetObjectTaggingCommand } from "@aws-sdk/client-s3";
import { expect } from "vitest";
import { db } from "../../src/platform/db.ts";
import { s3, storageConfig } from "../../src/platform/storage.ts";
import { ok, type TestUser, test } from "../kit/helpers.ts";
import { png } from "../kit/images.ts";
import { startInstance } from "../kit/instances.ts";

const idOf = (gid: string) => Buffer.from(gid, "base64").toString().split(":")[1] as string;

const CREATE_UPLOAD = `mutation ($input: CreateUploadInput!) {
  createUpload(input: $input) { ... on CreateUploadSuccess { photo { id } upload { url headers { name value } } } }
}`;
const CREATE_POST = `mutation ($ids: [ID!]!) {
  createPost(input: { photoIds: $ids }) { __typename ... on UploadError { code problem } ... on Error { code } }
}`;

async function start(user: TestUser, bytes: Buffer, query = ok) {
  const data = await query(
    CREATE_UPLOAD,
    { input: { contentType: "image/png", byteSize: bytes.length, purpose: "POST_PHOTO" } },
    { token: user.token },
  );
  return data.createUpload as { photo: { id: string }; upload: { url: string } };
}

const put = async (url: string, body: BodyInit, contentType = "image/png", tagging = "shutter-upload=pending") =>
  (
    await fetch(url, {
      method: "PUT",
      headers: { "Content-Type": contentType, ...(tagging ? { "X-Amz-Tagging": tagging } : {}) },
      body,
    })
  ).status;

test("the signature binds the type, the length and the key; a tampered URL is refused", async ({ alice }) => {
  const bytes = png(5, 5);
  const { photo, upload } = await start(alice, bytes);
  const url = new URL(upload.url);
  const otherKey = new URL(url);
  otherKey.pathname = otherKey.pathname.replace(/\/[^/]+$/, "/someone-elses.png");
  const tampered = new URL(url);
  tampered.searchParams.set("X-Amz-Signature", "0".repeat(64));
  const longer = new TextEncoder().encode("x".repeat(bytes.length + 10));

  expect(await put(upload.url, new Uint8Array(bytes), "image/jpeg")).toBe(403);
  expect(await put(upload.url, longer)).toBe(403);
  expect(await put(tampered.toString(), new Uint8Array(bytes))).toBe(403);
  expect(await put(otherKey.toString(), new Uint8Array(bytes))).toBe(403);
  // The pending tag (what the bucket's lifecycle rule for abandoned uploads matches) can't be left out or changed.
  expect(await put(upload.url, new Uint8Array(bytes), "image/png", "")).toBe(403);
  expect(await put(upload.url, new Uint8Array(bytes), "image/png", "shutter-upload=ready")).toBe(403);
  // Nothing arrived: the photo can't be used yet, and the upload is still there to complete.
  expect((await ok(CREATE_POST, { ids: [photo.id] }, { token: alice.token })).createPost).toMatchObject({
    problem: "NOT_RECEIVED",
  });
  expect(await put(upload.url, new Uint8Array(bytes))).toBe(200);
  expect((await ok(CREATE_POST, { ids: [photo.id] }, { token: alice.token })).createPost.__typename).toBe(
    "CreatePostSuccess",
  );
});

test("an expired URL is refused by storage, and the upload then by Shutter", async ({ alice }) => {
  const instance = await startInstance({ UPLOAD_URL_TTL_SECONDS: "1" });
  try {
    const bytes = png();
    const query = async (q: string, v: Record<string, unknown>, o: { token?: string }) =>
      (await instance.query(q, v, o.token)).data;
    const { photo, upload } = await start(alice, bytes, query as typeof ok);
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(await put(upload.url, new Uint8Array(bytes))).toBe(403);
    const result = await instance.query(CREATE_POST, { ids: [photo.id] }, alice.token);
    expect(result.data.createPost).toMatchObject({ code: "UPLOAD_INVALID", problem: "EXPIRED" });
  } finally {
    await instance.close();
  }
});

test("an upload is tagged pending until it is verified, so the lifecycle rule only expires abandoned ones", async ({
  alice,
}) => {
  const bytes = png(3, 3);
  const { photo, upload } = await start(alice, bytes);
  expect(await put(upload.url, new Uint8Array(bytes))).toBe(200);
  const { bucket } = storageConfig();
  const key = decodeURIComponent(new URL(upload.url).pathname).slice(`/${bucket}/`.length);
  // An object with no tags: Ceph answers with no TagSet at all.
  const tags = async (at: string) =>
    (await (await s3()).send(new GetObjectTaggingCommand({ Bucket: bucket, Key: at }))).TagSet ?? [];
  expect(await tags(key)).toEqual([{ Key: "shutter-upload", Value: "pending" }]);
  expect((await ok(CREATE_POST, { ids: [photo.id] }, { token: alice.token })).createPost.__typename).toBe(
    "CreatePostSuccess",
  );
  // Verified, it was copied to the private originals, untagged; the upload key is gone (a PUT through the
  // still-valid URL would recreate it there, tagged pending, for the lifecycle rule).
  const verified = await db().photo.findUniqueOrThrow({ where: { id: idOf(photo.id) } });
  expect(verified.storageKey).toBe(key.replace(/^u\//, "o/"));
  expect(await tags(verified.storageKey)).toEqual([]);
  await expect(tags(key)).rejects.toThrow();
});
