// Test fixtures: people, photos and posts written straight to the test file's own database (or made through the
// API where what the API does is part of the fixture), the three people of every test, and row counts. Requests
// themselves are http.ts (re-exported here) and the apps' typed operations operations.ts.
import { randomUUID } from "node:crypto";
import { encodeGlobalID } from "@pothos/plugin-relay";
import { test as base } from "vitest";
import { hashPassword } from "../../src/domain/auth.ts";
import { db } from "../../src/platform/db.ts";
import { startSession } from "../../src/services/auth.ts";
import { sweep } from "../../src/workers/runner.ts";
import { mobile } from "./operations.ts";

export {
  ENDPOINT,
  type GraphQLResponse,
  gql,
  multipartParts,
  ok,
  type Part,
  post,
  send,
  target,
} from "./http.ts";

/** Runs the events handler over every event recorded so far, as the runner would: notifications appear. */
export function processPendingEvents() {
  return sweep(0);
}
export const PASSWORD = "correct horse battery";

export const globalId = (type: "User" | "Post" | "Photo" | "Comment" | "Notification", id: string) =>
  encodeGlobalID(type, id);

let passwordHash: Promise<string> | undefined;

export interface TestUser {
  id: string;
  gid: string;
  handle: string;
  email: string;
  token: string;
  refreshToken: string;
}

/** A user with a session, written directly to the database (hashing each password would slow every test). */
export async function createUser(overrides: { handle?: string; displayName?: string } = {}): Promise<TestUser> {
  passwordHash ??= hashPassword(PASSWORD);
  const handle = overrides.handle ?? `user_${randomUUID().slice(0, 8)}`;
  const email = `${handle}@example.test`;
  const user = await db().user.create({
    data: { handle, email, displayName: overrides.displayName ?? `User ${handle}`, passwordHash: await passwordHash },
  });
  const session = await startSession(user.id);
  return {
    id: user.id,
    gid: globalId("User", user.id),
    handle,
    email,
    token: session.accessToken,
    refreshToken: session.refreshToken,
  };
}

/**
 * A photo owned by the user, not part of any post yet: READY (with the variants the images function would have
 * recorded; no objects behind them) unless told otherwise.
 */
export async function createPhoto(
  ownerId: string,
  options: { status?: "READY" | "PENDING" | "PROCESSING"; purpose?: "POST_PHOTO" | "AVATAR" } = {},
) {
  const id = randomUUID();
  const status = options.status ?? "READY";
  const photo = await db().photo.create({
    data: {
      id,
      ownerId,
      purpose: options.purpose ?? "POST_PHOTO",
      storageKey: `${status === "PENDING" ? "u" : "o"}/${ownerId}/${id}.jpg`,
      contentType: "image/jpeg",
      byteSize: 1234,
      width: 1080,
      height: 1350,
      status,
      ...(status === "READY"
        ? {
            variants: [320, 640, 1080].flatMap((width) =>
              (["avif", "webp", "jpeg"] as const).map((format) => ({
                width,
                height: width * 1.25,
                format,
                bytes: 100,
              })),
            ),
            placeholder: "1QcSHQRnh493V4dIh4eXh1h4kJUI",
            color: "#808080",
          }
        : {}),
    },
  });
  return { ...photo, gid: globalId("Photo", photo.id) };
}

/**
 * PUTs bytes to a presigned upload URL the way an app does: with exactly the headers it was given (fetch sets
 * Content-Length from the body itself). @returns the storage's status.
 */
export async function putUpload(
  upload: { url: string; headers: { name: string; value: string }[] },
  bytes: Buffer,
): Promise<number> {
  const headers = Object.fromEntries(
    upload.headers.filter((header) => header.name !== "Content-Length").map((header) => [header.name, header.value]),
  );
  const response = await fetch(upload.url, { method: "PUT", headers, body: new Uint8Array(bytes) });
  await response.arrayBuffer();
  return response.status;
}

/** A post by the user through the API, with `photos` fresh READY photos. */
export async function createPost(user: TestUser, options: { photos?: number; caption?: string } = {}) {
  const photos = await Promise.all(Array.from({ length: options.photos ?? 1 }, () => createPhoto(user.id)));
  const { createPost } = await mobile.createPost(user, {
    caption: options.caption ?? "a post",
    photoIds: photos.map((photo) => photo.gid),
  });
  if (createPost.__typename !== "CreatePostSuccess") throw new Error(`createPost: ${JSON.stringify(createPost)}`);
  const gid = createPost.post.id;
  return { gid, id: Buffer.from(gid, "base64").toString().split(":")[1] as string, photos };
}

/** Vitest fixtures: three signed-in people per test, fresh for every test. */
export const test = base.extend<{ alice: TestUser; bob: TestUser; carol: TestUser }>({
  // biome-ignore lint/correctness/noEmptyPattern: vitest reads fixture dependencies from the destructuring
  alice: async ({}, use) => use(await createUser()),
  // biome-ignore lint/correctness/noEmptyPattern: see above
  bob: async ({}, use) => use(await createUser()),
  // biome-ignore lint/correctness/noEmptyPattern: see above
  carol: async ({}, use) => use(await createUser()),
});

/** Snapshot of row counts, to assert that a rejected request changed nothing. */
export async function rowCounts() {
  const [users, posts, photos, comments, likes, follows, notifications, sessions, events, subscriptions, deliveries] =
    await Promise.all([
      db().user.count(),
      db().post.count(),
      db().photo.count(),
      db().comment.count(),
      db().like.count(),
      db().follow.count(),
      db().notification.count(),
      db().session.count(),
      db().outboxEvent.count(),
      db().sourceSubscription.count(),
      db().webhookDelivery.count(),
    ]);
  return {
    users,
    posts,
    photos,
    comments,
    likes,
    follows,
    notifications,
    sessions,
    events,
    subscriptions,
    deliveries,
  };
}

/** Empties this test file's cache (its Redis key prefix, or the in-process store), for cold-cache measurements. */
export async function coldCache(): Promise<void> {
  const { cacheStore, closeCache, RedisStore } = await import("../../src/caching/store.ts");
  const store = cacheStore();
  if (store instanceof RedisStore) {
    // Every master's keys on a cluster (SCAN walks one node), deleted one by one (they span slots).
    const nodes = "nodes" in store.client ? store.client.nodes("master") : [store.client];
    for (const node of nodes) {
      let cursor = "0";
      do {
        const [next, keys] = await node.scan(cursor, "MATCH", `${process.env.REDIS_KEY_PREFIX}:*`, "COUNT", 1000);
        await Promise.all(keys.map((key) => store.client.del(key)));
        cursor = next;
      } while (cursor !== "0");
    }
  }
  await closeCache();
}
