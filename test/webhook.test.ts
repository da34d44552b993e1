// The operations webhook and source subscriptions: a signed, recent, new, well-formed event from a configured
// source notifies everyone subscribed to it, once; anything else is refused with a clear error and changes
// nothing.
import { createHmac } from "node:crypto";
import { describe, expect, vi } from "vitest";

vi.hoisted(() => {
  process.env.OPS_WEBHOOK_SECRETS = "ci=ci-secret-0123456789abcdef, monitoring=monitoring-secret-0123456789";
  process.env.OPS_WEBHOOK_MAX_BYTES = "1024";
});

import { db } from "../src/db.ts";
import { gql, ok, processPendingEvents, rowCounts, type TestUser, test, send as toFunction } from "./helpers.ts";

const SECRET = "ci-secret-0123456789abcdef";
const EVENT = { type: "build.failed", title: "main #412 failed", url: "https://ci.example.com/412" };
let delivery = 0;

interface Send {
  source?: string;
  body?: string;
  secret?: string;
  timestamp?: number;
  deliveryId?: string | null;
  signature?: string;
}

/** POSTs to the webhook as a CI system would: signed over "<timestamp>.<body>" with the source's secret. */
async function send(options: Send = {}) {
  const body = options.body ?? JSON.stringify(EVENT);
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const signature =
    options.signature ??
    `v1=${createHmac("sha256", options.secret ?? SECRET)
      .update(`${timestamp}.${body}`)
      .digest("hex")}`;
  const deliveryId = options.deliveryId === undefined ? `build-${++delivery}-${Date.now()}` : options.deliveryId;
  const response = await toFunction(
    new Request(`http://shutter.test/webhooks/ops/${options.source ?? "ci"}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-shutter-timestamp": String(timestamp),
        "x-shutter-signature": signature,
        ...(deliveryId === null ? {} : { "x-shutter-delivery": deliveryId }),
      },
      body,
    }),
  );
  return { status: response.status, body: (await response.json()) as any, deliveryId };
}

const SUBSCRIBE = `mutation ($source: String!) { subscribeToSource(input: { source: $source }) {
  __typename ... on SubscribeToSourceSuccess { viewer { sourceSubscriptions { source } } } ... on Error { code message } } }`;
const UNSUBSCRIBE = `mutation ($source: String!) { unsubscribeFromSource(input: { source: $source }) {
  ... on UnsubscribeFromSourceSuccess { viewer { sourceSubscriptions { source } } } } }`;
const systemNotes = (user: TestUser) =>
  db().notification.findMany({ where: { recipientId: user.id, kind: "SYSTEM" }, orderBy: { createdAt: "asc" } });

describe("source subscriptions", () => {
  test("people subscribe to configured sources only, idempotently, and unsubscribe", async ({ alice }) => {
    expect((await ok(`{ notificationSources }`)).notificationSources).toEqual(["ci", "monitoring"]);
    for (let i = 0; i < 2; i++) {
      expect((await ok(SUBSCRIBE, { source: "ci" }, { token: alice.token })).subscribeToSource).toEqual({
        __typename: "SubscribeToSourceSuccess",
        viewer: { sourceSubscriptions: [{ source: "ci" }] },
      });
    }
    const before = await rowCounts();
    expect((await ok(SUBSCRIBE, { source: "jenkins" }, { token: alice.token })).subscribeToSource).toEqual({
      __typename: "NotFoundError",
      code: "NOT_FOUND",
      message: 'There is no source "jenkins": choose one of notificationSources.',
    });
    expect(await rowCounts()).toEqual(before);
    await ok(SUBSCRIBE, { source: "monitoring" }, { token: alice.token });
    expect((await ok(UNSUBSCRIBE, { source: "ci" }, { token: alice.token })).unsubscribeFromSource).toEqual({
      viewer: { sourceSubscriptions: [{ source: "monitoring" }] },
    });
    const signedOut = await gql(`{ viewer { sourceSubscriptions { source } } }`);
    expect(signedOut.data).toEqual({ viewer: null });
  });
});

describe("the operations webhook", () => {
  test("an accepted event notifies every subscriber of its source once, and nobody else", async ({
    alice,
    bob,
    carol,
  }) => {
    await ok(SUBSCRIBE, { source: "ci" }, { token: alice.token });
    await ok(SUBSCRIBE, { source: "ci" }, { token: bob.token });
    await ok(SUBSCRIBE, { source: "monitoring" }, { token: carol.token });
    const accepted = await send();
    expect(accepted).toMatchObject({ status: 202, body: { accepted: true, deliveryId: accepted.deliveryId } });
    await processPendingEvents();
    await processPendingEvents();
    for (const user of [alice, bob]) {
      expect(await systemNotes(user)).toMatchObject([
        { kind: "SYSTEM", actorId: null, message: "ci: main #412 failed (https://ci.example.com/412)", readAt: null },
      ]);
    }
    expect(await systemNotes(carol)).toEqual([]);
    const shown = await ok(
      `{ viewer { notifications(first: 5) { edges { node { kind message actor { id } } } } } }`,
      {},
      {
        token: alice.token,
      },
    );
    expect(shown.viewer.notifications.edges[0].node).toEqual({
      kind: "SYSTEM",
      message: "ci: main #412 failed (https://ci.example.com/412)",
      actor: null,
    });

    // The same delivery again (a retry, or an attacker replaying it within the window): refused.
    const before = await rowCounts();
    const replay = await send({ deliveryId: accepted.deliveryId });
    expect(replay.status).toBe(409);
    expect(replay.body.error).toMatchObject({ code: "REPLAYED" });
    await processPendingEvents();
    expect(await rowCounts()).toEqual(before);
  });

  test("refused requests say why and change nothing", async () => {
    const now = Math.floor(Date.now() / 1000);
    const body = JSON.stringify(EVENT);
    const cases: [Send, number, string][] = [
      [{ source: "jenkins" }, 404, "UNKNOWN_SOURCE"],
      [{ secret: "monitoring-secret-0123456789" }, 401, "BAD_SIGNATURE"],
      [{ signature: "v1=00" }, 401, "BAD_SIGNATURE"],
      [{ signature: "" }, 401, "BAD_SIGNATURE"],
      // Signed over a different body than the one sent.
      [
        {
          body: JSON.stringify({ ...EVENT, title: "all good" }),
          signature: `v1=${createHmac("sha256", SECRET).update(`${now}.${body}`).digest("hex")}`,
          timestamp: now,
        },
        401,
        "BAD_SIGNATURE",
      ],
      [{ timestamp: now - 301 }, 400, "STALE_TIMESTAMP"],
      [{ timestamp: now + 301 }, 400, "STALE_TIMESTAMP"],
      [{ deliveryId: null }, 400, "MISSING_DELIVERY_ID"],
      [{ deliveryId: "has spaces" }, 400, "MISSING_DELIVERY_ID"],
      [{ body: "{not json" }, 400, "INVALID_JSON"],
      [{ body: JSON.stringify({ type: "coffee.ready", title: "" }) }, 422, "INVALID_EVENT"],
      [{ body: JSON.stringify({ ...EVENT, url: "javascript:alert(1)" }) }, 422, "INVALID_EVENT"],
      [{ body: JSON.stringify({ ...EVENT, details: "x".repeat(1100) }) }, 413, "PAYLOAD_TOO_LARGE"],
    ];
    const before = await rowCounts();
    for (const [options, status, code] of cases) {
      const response = await send(options);
      expect([response.status, response.body.error.code], JSON.stringify(options)).toEqual([status, code]);
      expect(response.body.error.message.length).toBeGreaterThan(10);
    }
    const invalid = await send({ body: JSON.stringify({ type: "coffee.ready", title: "" }) });
    expect(invalid.body.error.details).toEqual([
      {
        path: "type",
        message: "type must be one of build.succeeded, build.failed, deployment.finished, server.restarted",
      },
      { path: "title", message: "title can't be empty" },
    ]);
    await processPendingEvents();
    expect(await rowCounts()).toEqual(before);
  });
});
