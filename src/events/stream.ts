// The events trigger on Redis Streams: the function announces new outbox events (their ids) on a stream; the
// events runner reads it through a consumer group, acknowledges what it handled, re-claims what a crashed or
// stuck consumer left pending, and moves a message delivered too often to the dead-letter stream. The stream
// only says "look at event N": the outbox table stays the truth, so a lost or repeated message costs nothing
// but a sweep or a no-op. (On AWS the same role is played by a managed queue; see functions/events.ts.)
import { config } from "../platform/config.ts";
import { logger } from "../platform/logger.ts";
import { connectRedis, type RedisClient } from "../platform/redis.ts";

const GROUP = "notifier";

/** The stream and its dead letters share a hash slot (`{events}`): moving a message is one transaction on a cluster. */
export const streamKeys = () => {
  const prefix = config().redisKeyPrefix;
  return { stream: `${prefix}:{events}`, dead: `${prefix}:{events}:dead` };
};

let publisher: RedisClient | undefined;
let warned = false;

/** The connection for short commands (announcing events, publishing notifications): fails fast when Redis does. */
export function publisherClient(): RedisClient | undefined {
  if (!config().redis) return undefined;
  if (!publisher) {
    publisher = connectRedis({
      lazyConnect: true,
      connectTimeout: 1_000,
      commandTimeout: 500,
      maxRetriesPerRequest: 0,
    });
    publisher.on("error", () => {});
  }
  return publisher;
}

export async function closePublisher(): Promise<void> {
  const client = publisher;
  publisher = undefined;
  if (!client) return;
  // QUIT lets what was sent finish; a node that does not answer (a cluster mid-failover) gets a second, not forever.
  const gaveUp = new Promise((resolve) => setTimeout(resolve, 1_000).unref());
  await Promise.race([client.quit().catch(() => {}), gaveUp]);
  client.disconnect();
}

/**
 * Announces committed events to the events handler: on the SQS queue when EVENTS_QUEUE_URL is set (AWS), else on
 * the Redis stream. Best effort: what is not announced is found by the sweep.
 */
export async function announce(ids: readonly bigint[]): Promise<void> {
  if (ids.length === 0) return;
  const { queueUrl } = config().events;
  if (queueUrl) return announceOnQueue(queueUrl, ids);
  const client = publisherClient();
  if (!client) return;
  try {
    const pipeline = client.pipeline();
    for (const id of ids) pipeline.xadd(streamKeys().stream, "MAXLEN", "~", "100000", "*", "event", id.toString());
    await pipeline.exec();
    warned = false;
  } catch (error) {
    if (!warned) logger().warn({ err: error }, "events: could not announce events on Redis; the sweep will find them");
    warned = true;
  }
}

let sqs: import("@aws-sdk/client-sqs").SQSClient | undefined;

async function announceOnQueue(queueUrl: string, ids: readonly bigint[]) {
  try {
    // Loaded on first use: most requests record no event.
    const { SQSClient, SendMessageBatchCommand } = await import("@aws-sdk/client-sqs");
    sqs ??= new SQSClient({});
    const client = sqs;
    for (let i = 0; i < ids.length; i += 10) {
      const batch = ids.slice(i, i + 10);
      await client.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: batch.map((id) => ({ Id: id.toString(), MessageBody: JSON.stringify({ event: id.toString() }) })),
        }),
      );
    }
  } catch (error) {
    logger().warn({ err: error }, "events: could not announce events on the queue; the sweep will find them");
  }
}

export interface ConsumeOptions {
  /** This consumer's name in the group (one per runner process). */
  consumer: string;
  /** Handles a batch of event ids; returns those that failed (they stay pending and are retried). */
  handle: (ids: bigint[]) => Promise<bigint[]>;
  signal: AbortSignal;
  batchSize?: number;
  blockMs?: number;
}

/**
 * Reads the stream as one consumer of the group until `signal` aborts. Failed messages stay pending; once idle
 * for EVENTS_CLAIM_IDLE_MS any consumer claims them again, and after EVENTS_MAX_DELIVERIES deliveries they are
 * moved to the dead-letter stream (with the reason) and acknowledged.
 */
export async function consume(options: ConsumeOptions): Promise<void> {
  if (options.signal.aborted) return;
  const { events } = config();
  const { stream, dead } = streamKeys();
  const batchSize = options.batchSize ?? 100;
  // Blocking reads need a connection of their own, without command timeouts.
  const client = connectRedis({ maxRetriesPerRequest: null });
  client.on("error", (error) => logger().warn({ err: error }, "events: stream connection error"));
  const stop = () => client.disconnect();
  options.signal.addEventListener("abort", stop, { once: true });
  // Stopping ends the wait for Redis at once: a cluster client still finding its nodes may not fail the commands
  // it holds when disconnected. A message whose reply is dropped stays pending and is claimed again.
  const aborted = new Promise<never>((_, reject) =>
    options.signal.addEventListener("abort", () => reject(new Error("stopped")), { once: true }),
  );
  aborted.catch(() => {});
  const until = <T>(reply: Promise<T>) => Promise.race([reply, aborted]);
  try {
    await until(
      client.xgroup("CREATE", stream, GROUP, "0", "MKSTREAM").catch((error: Error) => {
        if (!String(error.message).includes("BUSYGROUP")) throw error;
      }),
    );
    while (!options.signal.aborted) {
      const messages = [
        ...(await until(reclaim(client, options.consumer, batchSize, events, dead))),
        ...(await until(readNew(client, options.consumer, batchSize, options.blockMs ?? 1_000))),
      ];
      if (messages.length === 0) continue;
      const byEvent = new Map<string, string[]>();
      const malformed: string[] = [];
      for (const [messageId, fields] of messages) {
        const event = fields[fields.indexOf("event") + 1];
        if (event && /^\d{1,19}$/.test(event)) byEvent.set(event, [...(byEvent.get(event) ?? []), messageId]);
        else malformed.push(messageId);
      }
      for (const messageId of malformed) await deadLetter(client, dead, messageId, "malformed message");
      const failed = new Set((await options.handle([...byEvent.keys()].map(BigInt))).map(String));
      const done = [...byEvent].filter(([event]) => !failed.has(event)).flatMap(([, ids]) => ids);
      if (done.length) await until(client.xack(stream, GROUP, ...done));
    }
  } catch (error) {
    if (!options.signal.aborted) throw error;
  } finally {
    options.signal.removeEventListener("abort", stop);
    client.disconnect();
  }
}

type Message = [id: string, fields: string[]];

async function readNew(client: RedisClient, consumer: string, count: number, blockMs: number): Promise<Message[]> {
  const reply = (await client.xreadgroup(
    "GROUP",
    GROUP,
    consumer,
    "COUNT",
    count,
    "BLOCK",
    blockMs,
    "STREAMS",
    streamKeys().stream,
    ">",
  )) as [string, Message[]][] | null;
  return reply?.[0]?.[1] ?? [];
}

/** Pending messages idle for long enough: dead-lettered after too many deliveries, otherwise claimed. */
async function reclaim(
  client: RedisClient,
  consumer: string,
  count: number,
  limits: { maxDeliveries: number; claimIdleMs: number },
  dead: string,
): Promise<Message[]> {
  const { stream } = streamKeys();
  const pending = (await client.xpending(stream, GROUP, "IDLE", limits.claimIdleMs, "-", "+", count)) as [
    string,
    string,
    number,
    number,
  ][];
  const retry: string[] = [];
  for (const [messageId, , , deliveries] of pending) {
    if (deliveries >= limits.maxDeliveries) await deadLetter(client, dead, messageId, `failed ${deliveries} times`);
    else retry.push(messageId);
  }
  if (retry.length === 0) return [];
  // Through call(): the union of a node's and a cluster's overloads of XCLAIM does not accept spread ids.
  return (await client.call("XCLAIM", stream, GROUP, consumer, limits.claimIdleMs, ...retry)) as Message[];
}

async function deadLetter(client: RedisClient, dead: string, messageId: string, reason: string) {
  const { stream } = streamKeys();
  const [message] = (await client.xrange(stream, messageId, messageId)) as Message[];
  await client
    .multi()
    .xadd(dead, "*", "message", messageId, "reason", reason, ...(message?.[1] ?? []))
    .xack(stream, GROUP, messageId)
    .exec();
  logger().error({ messageId, reason, fields: message?.[1] }, "events: message moved to the dead-letter stream");
}
