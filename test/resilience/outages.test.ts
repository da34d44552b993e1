// Outages say what they are: with PostgreSQL or object storage unreachable (a TCP proxy in front of the real one,
// switched off and on), requests get SERVICE_UNAVAILABLE — HTTP 503 with Retry-After when nothing could be served,
// never a masked internal error — what the caches hold is still served, and recovery needs no restart.
import { afterAll, beforeAll, expect } from "vitest";
import { createPost, createUser, putUpload, rowCounts, test } from "../kit/helpers.ts";
import { png } from "../kit/images.ts";
import { type Instance, startInstance } from "../kit/instances.ts";
import { startProxy, type TcpProxy } from "../kit/tcp-proxy.ts";

let database: TcpProxy;
let instance: Instance;

beforeAll(async () => {
  database = await startProxy(process.env.DATABASE_URL as string);
  instance = await startInstance({ DATABASE_URL: database.url, LOG_LEVEL: "info" });
});
afterAll(async () => {
  await instance?.close();
  await database?.close();
});

const FEED = `{ feed(first: 5) { edges { node { id caption } } } }`;
const EXPLORE = `{ explore(first: 5) { edges { node { id likeCount } } } }`;

async function ask(query: string, variables: Record<string, unknown> = {}, token?: string) {
  const response = await instance.fetch("/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, any> };
}

test("with PostgreSQL unreachable: 503 SERVICE_UNAVAILABLE with Retry-After, nothing masked; back without a restart", async ({
  alice,
}) => {
  await createPost(alice, { caption: "before the outage" });
  const before = await ask(FEED, {}, alice.token);
  expect(before.status).toBe(200);
  expect(before.body.data.feed.edges).toHaveLength(1);

  database.setMode("down");
  try {
    const during = await ask(FEED, {}, alice.token);
    expect(during.status, JSON.stringify(during.body)).toBe(503);
    expect(during.headers.get("retry-after")).toBe("5");
    expect(during.body.data).toBeNull();
    expect(during.body.errors.map((e: any) => e.extensions.code)).toEqual(["SERVICE_UNAVAILABLE"]);
    expect(during.body.errors[0].message).toMatch(/can't reach our database.*Try again in 5 seconds/);
    expect(JSON.stringify(during.body)).not.toContain("INTERNAL_SERVER_ERROR");
    // Logged as an outage, with the request id, not as an unexpected error.
    const requestId = during.headers.get("x-request-id");
    const logged = instance.logs.filter((line) => line.requestId === requestId);
    expect(logged.some((line) => line.msg === "service unavailable" && line.service === "database")).toBe(true);
    expect(logged.some((line) => line.msg === "unexpected error")).toBe(false);
  } finally {
    database.setMode("forward");
  }
  const after = await ask(FEED, {}, alice.token);
  expect(after.status).toBe(200);
  expect(after.body.data.feed.edges[0].node.caption).toBe("before the outage");
});

test("a write during the outage is refused as SERVICE_UNAVAILABLE and changes nothing", async ({ alice, bob }) => {
  const post = await createPost(alice);
  const counts = await rowCounts();
  database.setMode("down");
  try {
    const like = await ask(
      `mutation ($id: ID!) { likePost(input: { postId: $id }) { __typename } }`,
      { id: post.gid },
      bob.token,
    );
    expect(like.status).toBe(503);
    expect(like.body.errors[0].extensions.code).toBe("SERVICE_UNAVAILABLE");
  } finally {
    database.setMode("forward");
  }
  expect(await rowCounts()).toEqual(counts);
});

test("what the caches hold is still served while PostgreSQL is down, flagged as such until it is back", async () => {
  const author = await createUser();
  const post = await createPost(author, { caption: "cached" });
  // Warm: explore's answer for signed-out readers is kept (response cache), the post in the entity cache.
  expect((await ask(EXPLORE)).status).toBe(200);
  const warm = await ask(EXPLORE);
  expect(warm.headers.get("x-cache")).toBe("HIT");
  const POST = `query ($id: ID!) { post(id: $id) { caption } }`;
  const before = await ask(POST, { id: post.gid }, author.token);
  expect(before.body.data.post.caption).toBe("cached");
  expect(before.body.extensions?.degraded).toBeUndefined();
  database.setMode("down");
  try {
    // The instance learns of the outage from a request that needs the database (the feed: 503).
    expect((await ask(FEED, {}, author.token)).status).toBe(503);
    const explore = await ask(EXPLORE);
    expect(explore.status).toBe(200);
    expect(explore.headers.get("x-cache")).toBe("HIT");
    expect(explore.body.data.explore.edges.map((e: any) => e.node.id)).toContain(post.gid);
    expect(explore.body.extensions.degraded).toMatchObject({ services: ["database"], message: /from cache/ });
    // Signed in, through the entity cache alone (a post by id needs no statement once cached).
    const cached = await ask(POST, { id: post.gid }, author.token);
    expect(cached.status).toBe(200);
    expect(cached.body.data.post.caption).toBe("cached");
    expect(cached.body.extensions.degraded.services).toEqual(["database"]);
    expect(Date.parse(cached.body.extensions.degraded.since)).toBeLessThanOrEqual(Date.now());
  } finally {
    database.setMode("forward");
  }
  // Back: the first answer that reached the database clears the flag.
  const back = await ask(FEED, {}, author.token);
  expect(back.status).toBe(200);
  expect(back.body.extensions?.degraded).toBeUndefined();
  expect((await ask(EXPLORE)).body.extensions?.degraded).toBeUndefined();
});

test("with object storage unreachable, using an upload is SERVICE_UNAVAILABLE, and works once it is back", async ({
  alice,
}) => {
  const storage = await startProxy(process.env.S3_ENDPOINT as string);
  const viaProxy = await startInstance({ S3_ENDPOINT: storage.url.replace(/\/$/, "") });
  try {
    const bytes = png(6, 4);
    const started = await viaProxy.query(
      `mutation ($input: CreateUploadInput!) { createUpload(input: $input) {
        ... on CreateUploadSuccess { photo { id } upload { url headers { name value } } } } }`,
      { input: { contentType: "image/png", byteSize: bytes.length, purpose: "POST_PHOTO" } },
      alice.token,
    );
    const { photo, upload } = started.data.createUpload;
    expect(await putUpload(upload, bytes)).toBe(200);
    const CREATE_POST = `mutation ($ids: [ID!]!) { createPost(input: { photoIds: $ids }) { __typename } }`;
    storage.setMode("down");
    const refused = await viaProxy.fetch("/graphql", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${alice.token}` },
      body: JSON.stringify({ query: CREATE_POST, variables: { ids: [photo.id] } }),
    });
    const body = await refused.json();
    expect(refused.status).toBe(503);
    expect(body.errors[0].extensions.code).toBe("SERVICE_UNAVAILABLE");
    expect(body.errors[0].message).toMatch(/storage/);
    storage.setMode("forward");
    const posted = await viaProxy.query(CREATE_POST, { ids: [photo.id] }, alice.token);
    expect(posted.data.createPost.__typename).toBe("CreatePostSuccess");
  } finally {
    await viaProxy.close();
    await storage.close();
  }
});
