// The event flow with its real moving parts: PostgreSQL, the Redis stream and consumer group, Redis pub/sub,
// function instances and Server-Sent Events. Events are processed exactly once when messages are repeated,
// when a consumer dies holding messages, and when the handler process is killed mid-batch; a message that
// keeps failing ends in the dead-letter stream; a like made through one instance reaches a subscriber of
// another as an SSE event.
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import pg from "pg";
import { afterAll, afterEach, beforeEach, describe, expect, vi } from "vitest";

vi.hoisted(() => {
  process.env.EVENTS_CLAIM_IDLE_MS = "200";
  process.env.EVENTS_MAX_DELIVERIES = "3";
});

import { closePubSub } from "../../src/events/pubsub.ts";
import { announce, closePublisher, streamKeys } from "../../src/events/stream.ts";
import { config } from "../../src/platform/config.ts";
import { db } from "../../src/platform/db.ts";
import { runEvents } from "../../src/workers/runner.ts";
import { createPost, createUser, gql, ok, test } from "../kit/helpers.ts";
import { startInstance } from "../kit/instances.ts";
import { mobile } from "../kit/operations.ts";

const root = new URL("../..", import.meta.url).pathname;
const redis = new Redis(process.env.REDIS_URL as string);
// A comment's notification is created, not merged into one: an event applied twice would show twice.
const COMMENT = `mutation ($id: ID!) { addComment(input: { postId: $id, body: "nice" }) { __typename } }`;

afterAll(async () => {
  redis.disconnect();
  closePubSub();
  await closePublisher();
});

/** Waits for a condition the system reaches asynchronously (the runner, another instance). */
async function eventually<T>(check: () => Promise<T | undefined | false>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const pendingMessages = async () => {
  const [count] = (await redis.xpending(streamKeys().stream, "notifier")) as [number];
  return count;
};
const likesOf = (recipientId: string) => db().notification.findMany({ where: { recipientId, kind: "LIKE" } });
const commentsOf = (recipientId: string) => db().notification.findMany({ where: { recipientId, kind: "COMMENT" } });

describe("with the runner consuming the stream", () => {
  let stop: AbortController;
  let running: Promise<void>;
  beforeEach(() => {
    stop = new AbortController();
    running = runEvents(stop.signal, `runner-${randomUUID().slice(0, 8)}`);
  });
  afterEach(async () => {
    stop.abort();
    await running;
  });

  test("an announced event is handled once, however often its message comes", async ({ alice, bob }) => {
    const post = await createPost(alice);
    await ok(COMMENT, { id: post.gid }, { token: bob.token }); // announced by the function after the operation
    await eventually(async () => (await commentsOf(alice.id)).length === 1, "the comment's notification");
    const event = await db().outboxEvent.findFirstOrThrow({ where: { recipientId: alice.id } });
    await announce([event.id, event.id, event.id]);
    await eventually(
      async () => (await pendingMessages()) === 0 && (await redis.xlen(streamKeys().stream)) >= 4,
      "acks",
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await commentsOf(alice.id)).toMatchObject([{ actorId: bob.id }]);
  });

  test("messages a dead consumer read are claimed by another and handled once", async ({ alice, bob, carol }) => {
    stop.abort(); // the regular runner steps aside while the doomed consumer reads
    await running;
    const post = await createPost(alice);
    await mobile.likePost(bob, { postId: post.gid });
    await mobile.likePost(carol, { postId: post.gid });
    const read = (await redis.xreadgroup(
      "GROUP",
      "notifier",
      "doomed",
      "COUNT",
      10,
      "STREAMS",
      streamKeys().stream,
      ">",
    )) as [string, [string, string[]][]][] | null;
    expect(read?.[0]?.[1].length).toBeGreaterThanOrEqual(2);
    // The doomed consumer dies here without acknowledging. A new runner claims what it held once idle.
    stop = new AbortController();
    running = runEvents(stop.signal, "survivor");
    await eventually(async () => (await pendingMessages()) === 0, "the claimed messages to be acknowledged");
    expect(await likesOf(alice.id)).toMatchObject([{ actorCount: 2 }]);
    expect(await db().outboxEvent.count({ where: { recipientId: alice.id, processedAt: null } })).toBe(0);
  });

  test("a message that keeps failing, or cannot be read, ends in the dead-letter stream", async ({ alice }) => {
    const post = await createPost(alice);
    // An event the handler cannot apply: its actor does not exist (the notification's foreign key refuses it).
    const poison = await db().outboxEvent.create({
      data: { kind: "post.liked", recipientId: alice.id, payload: { postId: post.id, actorId: randomUUID() } },
    });
    await announce([poison.id]);
    await redis.xadd(streamKeys().stream, "*", "event", "not-a-number");
    const dead = await eventually(async () => {
      const entries = (await redis.xrange(streamKeys().dead, "-", "+")) as [string, string[]][];
      return entries.length >= 2 && entries.map(([, fields]) => Object.fromEntries(pairs(fields)));
    }, "two dead letters");
    expect(dead).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ reason: "malformed message", event: "not-a-number" }),
        expect.objectContaining({ reason: "failed 3 times", event: poison.id.toString() }),
      ]),
    );
    expect(await pendingMessages()).toBe(0);
    expect(await db().outboxEvent.findUniqueOrThrow({ where: { id: poison.id } })).toMatchObject({
      processedAt: null,
      attempts: 3,
    });
  });
});

const pairs = (fields: string[]) => fields.flatMap((value, i) => (i % 2 ? [] : [[value, fields[i + 1]] as const]));

test("a handler killed mid-batch loses nothing and repeats nothing", async () => {
  const recipients = await Promise.all(Array.from({ length: 5 }, () => createUser()));
  const commenter = await createUser();
  for (const recipient of recipients) {
    const post = await createPost(recipient);
    await ok(COMMENT, { id: post.gid }, { token: commenter.token });
  }
  const events = await db().outboxEvent.findMany({
    where: { recipientId: { in: recipients.map((r) => r.id) } },
    orderBy: { id: "asc" },
  });
  expect(events).toHaveLength(5);
  // Another session holds the third event's row: the handler blocks there, after committing others.
  const blocker = new pg.Client({ connectionString: config().database.url });
  await blocker.connect();
  await blocker.query("BEGIN");
  await blocker.query("SELECT id FROM outbox_events WHERE id = $1 FOR UPDATE", [events[2]!.id.toString()]);
  const child = spawn(
    process.execPath,
    ["--input-type=module", "-e", `const { sweep } = await import("./src/workers/runner.ts"); await sweep(0);`],
    { cwd: root, env: process.env, stdio: "ignore" },
  );
  const exited = new Promise((resolve) => child.once("exit", resolve));
  await eventually(
    async () =>
      (await db().outboxEvent.count({ where: { id: { in: events.map((e) => e.id) }, processedAt: { not: null } } })) ===
      4,
    "four of the five events",
  );
  child.kill("SIGKILL");
  await exited;
  await blocker.query("ROLLBACK");
  await blocker.end();
  expect(await db().outboxEvent.findUniqueOrThrow({ where: { id: events[2]!.id } })).toMatchObject({
    processedAt: null,
  });

  const { sweep } = await import("../../src/workers/runner.ts");
  await sweep(0);
  await sweep(0);
  for (const recipient of recipients) {
    expect(await commentsOf(recipient.id)).toMatchObject([{ actorId: commenter.id }]);
  }
});

test("a like made through one instance reaches another instance's SSE subscriber", async ({ alice, bob }) => {
  const subscriberSide = await startInstance();
  const url = await subscriberSide.url();
  const writerSide = await startInstance();
  const stop = new AbortController();
  const running = runEvents(stop.signal, "sse-runner");
  try {
    const post = await createPost(alice);
    const response = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "text/event-stream",
        authorization: `Bearer ${alice.token}`,
      },
      body: JSON.stringify({
        query: `subscription { notificationAdded { kind actorCount actor { handle } post { id } } }`,
      }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    const channel = `${config().redisKeyPrefix}:pubsub:notification:added:${alice.id}`;
    await eventually(async () => {
      const [, subscribers] = (await redis.pubsub("NUMSUB", channel)) as [string, number];
      return subscribers > 0;
    }, "the subscription to reach Redis");

    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    const liked = performance.now();
    const result = await writerSide.query(mobile.likePost.text, { postId: post.gid }, bob.token);
    expect(result.errors).toBeUndefined();
    let text = "";
    while (!/event: next\ndata: .*\n\n/.test(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the stream ended: ${text}`);
      text += value;
    }
    const latencyMs = performance.now() - liked;
    const data = JSON.parse(/event: next\ndata: (.*)\n\n/.exec(text)![1]!);
    expect(data).toEqual({
      data: {
        notificationAdded: { kind: "LIKE", actorCount: 1, actor: { handle: bob.handle }, post: { id: post.gid } },
      },
    });
    console.info(`like → SSE event: ${latencyMs.toFixed(1)} ms`);
    await reader.cancel();

    // Signed out, there is no subscription at all.
    const signedOut = await gql(`subscription { notificationAdded { kind } }`);
    expect(signedOut.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
  } finally {
    stop.abort();
    await running;
    await Promise.all([subscriberSide.close(), writerSide.close()]);
  }
});
