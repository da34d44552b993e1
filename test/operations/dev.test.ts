// `npm run dev` as newcomers and teams run it, with nothing configured (embedded PostgreSQL, S3 and cache): two
// checkouts side by side, each on its own database; a second start in the same checkout, and a bad setting,
// each say in one line what is wrong and what to do.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { runningServer } from "../../scripts/embedded-postgres.ts";
import { bareEnvironment, type Checkout, copyCheckout, type DevServer, runDev, startDev } from "../kit/dev-server.ts";

const env = bareEnvironment();
let a: Checkout;
let b: Checkout;
let devA: DevServer;
let devB: DevServer;

beforeAll(async () => {
  a = copyCheckout("a");
  b = copyCheckout("b");
  [devA, devB] = await Promise.all([startDev(a.dir, env), startDev(b.dir, env)]);
}, 300_000);
afterAll(async () => {
  await Promise.all([devA?.stop(), devB?.stop()]);
  a?.remove();
  b?.remove();
});

const graphql = async (url: string, query: string, variables: Record<string, unknown> = {}) => {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data?: any; errors?: unknown[] };
};

test("two checkouts run side by side, each on its own database", async () => {
  expect(devA.url).not.toBe(devB.url);
  // Each in its own checkout's folder.
  for (const checkout of [a, b]) expect(existsSync(join(checkout.dir, ".shutter/postgres/PG_VERSION"))).toBe(true);
  const signUp = await graphql(
    devA.url,
    `mutation { signUp(input: { handle: "only_in_a", displayName: "A", email: "a@example.com", password: "correct horse battery" }) { __typename } }`,
  );
  expect(signUp.data?.signUp.__typename).toBe("SignUpSuccess");
  const find = `{ user(handle: "only_in_a") { handle } }`;
  expect((await graphql(devA.url, find)).data?.user).toEqual({ handle: "only_in_a" });
  expect((await graphql(devB.url, find)).data?.user).toBeNull();
  // Both are seeded: the README's demo account signs in on each.
  for (const url of [devA.url, devB.url]) {
    const logIn = await graphql(
      url,
      `mutation { logIn(input: { login: "velvet_tram", password: "shutter-demo" }) { __typename } }`,
    );
    expect(logIn.data?.logIn.__typename).toBe("LogInSuccess");
  }
});

test("the seeded feed shows photos: their variants are in the embedded S3, with placeholders", async () => {
  const { data } = await graphql(
    devA.url,
    `{ explore(first: 3) { edges { node { photos { url(width: 320, format: WEBP) placeholder aspectRatio variants { format } } } } } }`,
  );
  const photos = data?.explore.edges.flatMap((edge: any) => edge.node.photos);
  expect(photos.length).toBeGreaterThan(0);
  for (const photo of photos) {
    expect(photo.placeholder).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(new Set(photo.variants.map((v: any) => v.format))).toEqual(new Set(["AVIF", "WEBP", "JPEG"]));
    const served = await fetch(photo.url);
    expect(served.status).toBe(200);
    expect(served.headers.get("content-type")).toBe("image/webp");
    expect(Buffer.from(await served.arrayBuffer()).toString("latin1", 8, 12)).toBe("WEBP");
  }
});

test("ten clients liking and reading at once are all served (a real PostgreSQL: connections side by side)", async () => {
  // Ten seeded people (sign-ups from one address are limited), all with the demo password.
  const { data } = await graphql(devA.url, `{ explore(first: 50) { edges { node { id author { handle } } } } }`);
  const postId = data?.explore.edges[0].node.id;
  const handles = [...new Set<string>(data?.explore.edges.map((edge: any) => edge.node.author.handle))].slice(0, 10);
  expect(handles).toHaveLength(10);
  const clients = await Promise.all(
    handles.map(async (handle) => {
      const logIn = await graphql(
        devA.url,
        `mutation ($login: String!) { logIn(input: { login: $login, password: "shutter-demo" }) { ... on LogInSuccess { session { accessToken } } } }`,
        { login: handle },
      );
      return logIn.data?.logIn.session.accessToken as string;
    }),
  );
  const authed = (token: string, query: string, variables: Record<string, unknown>) =>
    fetch(devA.url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    }).then((response) => response.json() as Promise<{ data?: any; errors?: any[] }>);
  const answers = await Promise.all(
    clients.flatMap((token) => [
      authed(token, `mutation ($id: ID!) { likePost(input: { postId: $id }) { __typename } }`, { id: postId }),
      authed(token, `{ feed(first: 10) { edges { node { id likeCount } } } }`, {}),
      authed(token, `query ($id: ID!) { post(id: $id) { likeCount viewerHasLiked } }`, { id: postId }),
    ]),
  );
  expect(answers.flatMap((answer) => answer.errors ?? [])).toEqual([]);
  const { data: after } = await graphql(devA.url, `query ($id: ID!) { post(id: $id) { likeCount } }`, { id: postId });
  expect(after?.post.likeCount).toBeGreaterThanOrEqual(10);
});

test("a second `npm run dev` in the same checkout says in one line what is wrong", async () => {
  const second = runDev(a.dir, env);
  expect(await second.exited).toBe(1);
  expect(second.output.filter((line) => line.trim())).toEqual([
    expect.stringMatching(
      /^\[dev\] cannot start: this checkout's embedded PostgreSQL \(\.shutter\/postgres\) is in use by another `npm run dev` \(process \d+\): stop it, or set DATABASE_URL/,
    ),
  ]);
});

test("a bad setting stops it before anything starts, saying which and why, with no code", async () => {
  const bad = runDev(b.dir, { ...env, MAX_DEPTH: "one", DATABASE_URL: "mysql://nope" });
  expect(await bad.exited).toBe(1);
  expect(bad.output.filter((line) => line.trim())).toEqual([
    "[dev] cannot start: Invalid configuration:",
    "  - DATABASE_URL: must start with postgres:// or postgresql://",
    "  - MAX_DEPTH: must be a number",
    "See docs/configuration.md.",
  ]);
});

test("its database stops with it; one a crashed `npm run dev` left running is stopped by the next, data kept", async () => {
  const dataDir = join(b.dir, ".shutter/postgres");
  const signUp = `mutation { signUp(input: { handle: "kept_in_b", displayName: "B", email: "b@example.com", password: "correct horse battery" }) { __typename } }`;
  expect((await graphql(devB.url, signUp)).data?.signUp.__typename).toBe("SignUpSuccess");
  // A crash: the server dies, its database (a process of its own) does not.
  await devB.stop("SIGKILL");
  const orphan = runningServer(dataDir);
  expect(orphan).toBeGreaterThan(0);
  devB = await startDev(b.dir, env);
  expect(devB.output).toContain(
    `[dev] stopping the embedded PostgreSQL that an ended \`npm run dev\` left running (process ${orphan})`,
  );
  expect((await graphql(devB.url, `{ user(handle: "kept_in_b") { handle } }`)).data?.user).toEqual({
    handle: "kept_in_b",
  });
  // Ctrl-C: the server stops, and its database with it.
  await devB.stop("SIGINT");
  expect(runningServer(dataDir)).toBeUndefined();
}, 300_000);
