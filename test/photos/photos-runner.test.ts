// Long-running deployments make photos' variants in the events runner, with no queue or schedule: the source's
// entry with the runner in process (as `npm run dev` runs it), and the container entry with EVENTS_RUNNER=true
// (as the Knative manifest sets). On Lambda the images function does it (test/photos.test.ts).
import { afterAll, beforeAll, expect } from "vitest";
import { runEvents } from "../../src/workers/runner.ts";
import { putUpload, target, test } from "../kit/helpers.ts";
import { phoneJpeg } from "../kit/images.ts";
import { BUNDLED, type Instance, startInstance } from "../kit/instances.ts";

let instance: Instance;
const runner = new AbortController();
let running: Promise<void> = Promise.resolve();

beforeAll(async () => {
  instance = BUNDLED ? await startInstance({ EVENTS_RUNNER: "true" }) : await target();
  if (!BUNDLED) running = runEvents(runner.signal, "photos-runner-test");
});
afterAll(async () => {
  runner.abort();
  await running;
});

test("a posted photo gets its variants and its post is published, with nothing else running", async ({
  alice,
  bob,
}) => {
  const bytes = await phoneJpeg(900, 600);
  const started = await instance.query(
    `mutation ($input: CreateUploadInput!) { createUpload(input: $input) {
      ... on CreateUploadSuccess { photo { id } upload { url headers { name value } } } } }`,
    { input: { contentType: "image/jpeg", byteSize: bytes.length, purpose: "POST_PHOTO" } },
    alice.token,
  );
  const { photo, upload } = started.data.createUpload;
  expect(await putUpload(upload, bytes)).toBe(200);
  const posted = await instance.query(
    `mutation ($ids: [ID!]!) { createPost(input: { photoIds: $ids }) { ... on CreatePostSuccess { post { id published } } } }`,
    { ids: [photo.id] },
    alice.token,
  );
  const { post } = posted.data.createPost;
  expect(post.published).toBe(false);
  const read = `query ($id: ID!) { post(id: $id) { published photos { status url(width: 320) width height } } }`;
  let seen: any = null;
  for (let i = 0; i < 150 && !seen; i++) {
    seen = (await instance.query(read, { id: post.id }, bob.token)).data.post;
    if (!seen) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  expect(seen).toMatchObject({ published: true, photos: [{ status: "READY", width: 600, height: 900 }] });
  const served = await fetch(seen.photos[0].url);
  expect(served.status).toBe(200);
  expect(served.headers.get("content-type")).toBe("image/webp");
});
