// `npm run dev` as newcomers and teams run it, with nothing configured (embedded PostgreSQL, S3 and cache): two
// checkouts side by side, each on its own database; a second start in the same checkout, and a bad setting,
// each say in one line what is wrong and what to do.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { bareEnvironment, type Checkout, copyCheckout, type DevServer, runDev, startDev } from "./dev-server.ts";

// The embedded databases keep their state under XDG_DATA_HOME: the test's own, not the developer's.
const data = mkdtempSync(join(tmpdir(), "shutter-dev-data-"));
const env = bareEnvironment({ XDG_DATA_HOME: data });
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
  rmSync(data, { recursive: true, force: true });
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
  expect(devA.database).not.toBe(devB.database);
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

test("a second `npm run dev` in the same checkout says in one line what is wrong", async () => {
  const second = runDev(a.dir, env);
  expect(await second.exited).toBe(1);
  expect(second.output.filter((line) => line.trim())).toEqual([
    expect.stringMatching(
      /^\[dev\] cannot start: this checkout's embedded PostgreSQL \("shutter-[\w-]+"\) is already running: is `npm run dev` open in another terminal\?/,
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
    "See the configuration table in README.md.",
  ]);
});
