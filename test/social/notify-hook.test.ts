// The outbound delivery hook: each new notification is POSTed, signed, to NOTIFY_HOOK_URL — here a real HTTP
// server standing in for a push provider's bridge, which fails on command. Failures are retried with backoff;
// after the last attempt the delivery stays as a DEAD record with its error.
import { createHmac } from "node:crypto";
import { afterAll, expect, vi } from "vitest";

const receiver = await vi.hoisted(async () => {
  const { createServer } = await import("node:http");
  const state = {
    plan: [] as number[],
    received: [] as { headers: Record<string, string | string[] | undefined>; body: string; at: number }[],
    server: undefined as unknown as import("node:http").Server,
  };
  state.server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      state.received.push({ headers: req.headers, body, at: Date.now() });
      res.writeHead(state.plan.shift() ?? 200).end();
    });
  });
  await new Promise<void>((resolve) => state.server.listen(0, "127.0.0.1", resolve));
  const { port } = state.server.address() as { port: number };
  process.env.NOTIFY_HOOK_URL = `http://127.0.0.1:${port}/push`;
  process.env.NOTIFY_HOOK_SECRET = "hook-secret-0123456789";
  process.env.NOTIFY_HOOK_MAX_ATTEMPTS = "3";
  process.env.NOTIFY_HOOK_BACKOFF_MS = "50";
  return state;
});

import { deliverDue } from "../../src/events/delivery.ts";
import { db } from "../../src/platform/db.ts";
import { createPost, processPendingEvents, test } from "../kit/helpers.ts";
import { mobile } from "../kit/operations.ts";

afterAll(() => new Promise<void>((resolve) => receiver.server.close(() => resolve())));

/** Runs the sender until nothing is due any more (waiting out the backoff), as the runner's loop would. */
async function deliverUntilSettled() {
  for (let round = 0; round < 50; round++) {
    await deliverDue();
    if ((await db().notificationDelivery.count({ where: { status: "PENDING" } })) === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
  throw new Error("deliveries did not settle");
}

test("a new notification is pushed, signed; failures are retried with growing delays until it goes through", async ({
  alice,
  bob,
}) => {
  receiver.plan = [500, 503];
  receiver.received = [];
  const post = await createPost(alice);
  await mobile.likePost(bob, { postId: post.gid });
  await processPendingEvents();
  await deliverUntilSettled();

  expect(receiver.received).toHaveLength(3);
  const [first, second, third] = receiver.received;
  // Exponential backoff: at least 50 ms, then at least 100 ms between attempts.
  expect(second!.at - first!.at).toBeGreaterThanOrEqual(50);
  expect(third!.at - second!.at).toBeGreaterThanOrEqual(100);
  const { headers, body } = third!;
  // Every attempt carries the same delivery id (the receiver drops repeats), covered by the signature.
  const deliveryId = headers["x-shutter-delivery"];
  expect(deliveryId).toBeTruthy();
  expect(new Set(receiver.received.map((r) => r.headers["x-shutter-delivery"]))).toEqual(new Set([deliveryId]));
  const expected = createHmac("sha256", "hook-secret-0123456789")
    .update(`${headers["x-shutter-timestamp"]}.${deliveryId}.${body}`)
    .digest("hex");
  expect(headers["x-shutter-signature"]).toBe(`v2=${expected}`);
  expect(JSON.parse(body)).toMatchObject({ kind: "LIKE", actorCount: 1, recipientId: alice.gid, actorId: bob.gid });
  expect(await db().notificationDelivery.findMany()).toMatchObject([{ status: "SENT", attempts: 3, lastError: null }]);
});

test("a delivery that keeps failing is kept as DEAD with its last error; a withdrawn one is never sent", async ({
  alice,
  bob,
  carol,
}) => {
  await db().notificationDelivery.deleteMany();
  receiver.plan = [500, 500, 500, 500];
  receiver.received = [];
  const post = await createPost(alice);
  await mobile.likePost(bob, { postId: post.gid });
  await processPendingEvents();
  await deliverUntilSettled();
  expect(receiver.received).toHaveLength(3);
  expect(await db().notificationDelivery.findMany()).toMatchObject([
    { status: "DEAD", attempts: 3, lastError: "Error: HTTP 500 from the notification hook" },
  ]);
  await deliverDue();
  expect(receiver.received).toHaveLength(3);

  // Liked and unliked before the sender ran: the notification is gone, and its delivery with it.
  receiver.plan = [];
  const other = await createPost(carol);
  await mobile.likePost(bob, { postId: other.gid });
  await processPendingEvents();
  await mobile.unlikePost(bob, { postId: other.gid });
  await processPendingEvents();
  await deliverUntilSettled();
  expect(receiver.received).toHaveLength(3);
});
