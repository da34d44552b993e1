// A web app on another origin, in a real browser (Chromium), uploads a photo straight to object storage with
// the presigned PUT — the browser's CORS preflights to the API and to the bucket included — then publishes
// the post and shows the photo. Object storage is the run's: an s3rver, or Ceph's RADOS Gateway in CI, with
// the CORS rule of the AWS stack (infra/bucket-cors.ts) for the app's origin only.
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, expect, inject } from "vitest";
import { db } from "../../src/platform/db.ts";
import { launchBrowser, uploadFromWebApp } from "../kit/browser.ts";
import { PASSWORD, test } from "../kit/helpers.ts";
import { type Instance, invokeFunction, startInstance } from "../kit/instances.ts";

const webOrigin = inject("webOrigin");
let browser: Browser;
let instance: Instance;

beforeAll(async () => {
  // The API lets the app's origin call it (CORS_ORIGINS), as a deployment serving that app would.
  [browser, instance] = await Promise.all([launchBrowser(), startInstance({ CORS_ORIGINS: webOrigin })]);
});
afterAll(() => browser?.close());

test("a page on another origin signs in, uploads a photo to the bucket, posts it and shows it", async ({ alice }) => {
  const api = await instance.url();
  const uploading = uploadFromWebApp(browser, webOrigin, api, alice.handle, PASSWORD);
  // The post waits for its photo's variants: the images function runs once the upload is verified.
  let verified: { id: string } | null = null;
  for (let i = 0; i < 200 && !verified; i++) {
    verified = await db().photo.findFirst({
      where: { ownerId: alice.id, status: "PROCESSING", postId: { not: null } },
    });
    if (!verified) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  expect(verified).not.toBeNull();
  expect((await invokeFunction("images", { mediaId: verified?.id })).result).toEqual({ outcome: "ready" });
  const { result, crossOrigin } = await uploading;
  expect(result, JSON.stringify(result)).toMatchObject({
    ok: true,
    steps: ["signed in", "uploaded: 200", "posted: PROCESSING", "ready"],
    photo: { width: 64, height: 48, aspectRatio: 64 / 48 },
    // The largest variant of a 64-pixel-wide photo is its own size (never upscaled), in WebP.
    displayed: { width: 64, height: 48 },
  });
  // The page spoke to the API and to the bucket, each on its own origin.
  const s3Host = new URL(process.env.S3_ENDPOINT as string).host;
  expect(crossOrigin).toContain(`PUT ${s3Host}`);
  expect(crossOrigin).toContain(`POST ${new URL(api).host}`);
  const posts = await db().post.findMany({ where: { authorId: alice.id }, include: { photos: true } });
  expect(posts).toHaveLength(1);
  expect(posts[0]?.caption).toBe("from a browser");
  expect(posts[0]?.photos.map((m) => [m.status, m.contentType, m.width, m.height])).toEqual([
    ["READY", "image/png", 64, 48],
  ]);
});

test("the bucket answers a preflight from the app's origin, and refuses any other", async ({ alice }) => {
  const created = await instance.query(
    `mutation { createUpload(input: { contentType: "image/png", byteSize: 100, purpose: POST_PHOTO }) {
      ... on CreateUploadSuccess { upload { url } } } }`,
    {},
    alice.token,
  );
  const url = created.data.createUpload.upload.url as string;
  const preflight = (origin: string, headers = "content-type,x-amz-tagging", method = "PUT") =>
    fetch(url, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": method, "access-control-request-headers": headers },
    });
  const allowed = await preflight(webOrigin);
  expect(allowed.status).toBe(200);
  // S3 and Ceph echo the origin; s3rver answers "*" for any rule that matched.
  expect([webOrigin, "*"]).toContain(allowed.headers.get("access-control-allow-origin"));
  for (const refused of [
    await preflight("http://elsewhere.example"),
    await preflight(webOrigin, "content-type,x-amz-tagging,x-amz-acl"),
    await preflight(webOrigin, "content-type", "DELETE"),
  ]) {
    expect(refused.status).toBe(403);
    expect(refused.headers.get("access-control-allow-origin")).toBeNull();
  }
});
