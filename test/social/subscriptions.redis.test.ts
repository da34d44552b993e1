// Streams across instances sharing Redis: what ends a session on one instance ends its streams on every other.
// (Without Redis, pub/sub is in-process: one instance, as `npm run dev` runs; subscriptions.test.ts.)
import { afterAll, beforeAll, expect } from "vitest";
import { test } from "../kit/helpers.ts";
import { type Instance, openStream, startInstance } from "../kit/instances.ts";

let a: Instance;
let b: Instance;

beforeAll(async () => {
  [a, b] = await Promise.all([startInstance(), startInstance()]);
});
afterAll(async () => {
  await Promise.all([a.close(), b.close()]);
});

test("a log-out through A ends the viewer's stream held by B", async ({ alice }) => {
  const stream = await openStream(b, alice.token);
  expect(stream.response.status).toBe(200);
  const out = await a.query(`mutation { logOut { __typename } }`, {}, alice.token);
  expect(out.errors).toBeUndefined();
  // It ends by itself: untilEnd resolves (a stream that outlived the session would hold the test until its timeout).
  expect(await stream.untilEnd()).not.toContain("notificationAdded");
});
