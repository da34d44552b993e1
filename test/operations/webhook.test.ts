// The operations webhook and source subscriptions: a signed, recent, new, well-formed event from a configured
// source notifies everyone subscribed to it, once; anything else is refused with a clear error and changes
// nothing.
import { createHmac } from "node:crypto";
import { describe, expect, vi } from "vitest";

vi.hoisted(() => {
  process.env.OPS_WEBHOOK_SECRETS = "ci=ci-secret-0123456789abcdef, monitoring=monitoring-secret-0123456789";
  process.env.OPS_WEBHOOK_MAX_BYTES = "1024";
});

import { db } from "../../src/platform/db.ts";
import { gql, ok, processPendingEvents, rowCounts, type TestUser, test, send as toFunction } from "../kit/helpers.ts";
import { type Instance, startInstance } from "../kit/instances.ts";

const SECRET = "ci-secret-0123456789abcdef";
const EVENT = { type: "build.failed", title: "main #412 failed", url: "https://ci.example.com/412" };
let delivery = 0;

interface Send {
  /** Another instance than the file's (other limits). */
  instance?: Instance;
  /** The sender's (loopback) address. */
  from?: string;
  source?: string;
  body?: string;
  secret?: string;
  timestamp?: number;
  deliveryId?: string | null;
  signature?: string;
}

/** The v2 signature: hex HMAC-SHA256 of "<timestamp>.<delivery id>.<body>" with the source's secret. */
const v2 = (secret: string, timestamp: number, deliveryId: string, body: string) =>
  `v2=${createHmac("sha256", secret).update(`${timestamp}.${deliveryId}.${body}`).digest("hex")}`;

/** POSTs to the webhook as a CI system would, signed with the source's secret. */
async function send(options: Send = {}) {
  const body = options.body ?? JSON.stringify(EVENT);
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const deliveryId = options.deliveryId === undefined ? `build-${++delivery}-${Date.now()}` : options.deliveryId;
  const signature = options.signature ?? v2(options.secret ?? SECRET, timestamp, deliveryId ?? "", body);
  const response = await (options.instance?.fetch ?? toFunction)(
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
    { from: options.from },
  );
  return { status: response.status, body: (await response.json()) as any, deliveryId, signature, timestamp };
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
    // A captured request replayed under a new delivery id: its signature does not cover that id.
    const recaptured = await send({
      deliveryId: `${accepted.deliveryId}-again`,
      signature: accepted.signature,
      timestamp: accepted.timestamp,
    });
    expect([recaptured.status, recaptured.body.error.code]).toEqual([401, "BAD_SIGNATURE"]);
    await processPendingEvents();
    expect(await rowCounts()).toEqual(before);
  });

  test("refused requests say why and change nothing", async () => {
    const now = Math.floor(Date.now() / 1000);
    const body = JSON.stringify(EVENT);
    const cases: [Send, number, string][] = [
      [{ source: "jenkins" }, 404, "UNKNOWN_SOURCE"],
      // Names of an object's properties, and broken percent-encoding, are unknown sources too (not a crash).
      [{ source: "constructor" }, 404, "UNKNOWN_SOURCE"],
      [{ source: "__proto__" }, 404, "UNKNOWN_SOURCE"],
      [{ source: "toString" }, 404, "UNKNOWN_SOURCE"],
      [{ source: "%E0%A4%A" }, 404, "UNKNOWN_SOURCE"],
      [{ source: "ci%" }, 404, "UNKNOWN_SOURCE"],
      [{ secret: "monitoring-secret-0123456789" }, 401, "BAD_SIGNATURE"],
      [{ signature: "v2=00" }, 401, "BAD_SIGNATURE"],
      [{ signature: "" }, 401, "BAD_SIGNATURE"],
      // Signed over a different body than the one sent.
      [
        {
          body: JSON.stringify({ ...EVENT, title: "all good" }),
          signature: v2(SECRET, now, "d-1", body),
          deliveryId: "d-1",
          timestamp: now,
        },
        401,
        "BAD_SIGNATURE",
      ],
      // The v1 scheme signed no delivery id: a captured request could be replayed under any new id.
      [
        {
          signature: `v1=${createHmac("sha256", SECRET).update(`${now}.${body}`).digest("hex")}`,
          deliveryId: "d-2",
          timestamp: now,
        },
        401,
        "BAD_SIGNATURE",
      ],
      // Well outside the 300 s window, however long the requests before take.
      [{ timestamp: now - 400 }, 400, "STALE_TIMESTAMP"],
      [{ timestamp: now + 400 }, 400, "STALE_TIMESTAMP"],
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

describe("the webhook's limits", () => {
  test("every request is charged to its sender's address, signed or not", async () => {
    const instance = await startInstance({ RATE_LIMIT_ANONYMOUS_POINTS: "30" });
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      statuses.push((await send({ instance, from: "127.8.0.1", signature: "v2=00" })).status);
    }
    // 10 points each: three fit in 30.
    expect(statuses).toEqual([401, 401, 401, 429]);
    expect((await send({ instance, from: "127.8.0.2", signature: "v2=00" })).status).toBe(401);
    await instance.close();
  });

  test("accepted events are counted per source: a leaked secret cannot flood the subscribers", async () => {
    // Counts of its own (the file's other tests accepted events from "ci" under the default limit).
    const instance = await startInstance({
      OPS_WEBHOOK_EVENTS_PER_MINUTE: "2",
      REDIS_KEY_PREFIX: `${process.env.REDIS_KEY_PREFIX}-limits`,
    });
    const before = await rowCounts();
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await send({ instance, from: `127.9.0.${i + 1}` }));
    expect(results.map((r) => r.status)).toEqual([202, 202, 429]);
    expect(results[2]?.body.error.code).toBe("RATE_LIMITED");
    expect((await rowCounts()).events).toBe(before.events + 2);
    // Another source has its own count.
    const monitoring = await send({ instance, source: "monitoring", secret: "monitoring-secret-0123456789" });
    expect(monitoring.status).toBe(202);
    await instance.close();
  });
});
