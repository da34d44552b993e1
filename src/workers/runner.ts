// The events runner for long-running processes (`npm run events`, `npm run dev`, the container): consumes the
// Redis stream as one member of the consumer group, sweeps the outbox for events nobody announced, and sends
// due notification deliveries. Without Redis it sweeps every half second instead. It also does the images
// function's work: the variants of verified photos (services/images.ts).
import { hostname } from "node:os";
import { deliverDue } from "../events/delivery.ts";
import { consume } from "../events/stream.ts";
import { config } from "../platform/config.ts";
import { db } from "../platform/db.ts";
import { pruneKeys } from "../platform/idempotency.ts";
import { logger } from "../platform/logger.ts";
import { processEvents, unprocessedEvents } from "./notifications.ts";

/** Processes what is pending and older than `minAgeMs` (a schedule's job where no stream runs). */
export async function sweep(minAgeMs = 0): Promise<{ processed: number; failed: number }> {
  const ids = await unprocessedEvents(500, minAgeMs);
  const failed = await processEvents(ids);
  return { processed: ids.length - failed.length, failed: failed.length };
}

/**
 * Forgets what is no longer needed, a bounded amount at a time: events processed a week ago, webhook delivery ids
 * older than twice the replay window (their timestamps alone now get a replay refused), and expired idempotency
 * keys.
 */
export async function prune(): Promise<void> {
  const window = config().opsWebhook.toleranceSeconds * 2;
  await db().$executeRaw`
    DELETE FROM outbox_events WHERE id IN (
      SELECT id FROM outbox_events WHERE processed_at < now() - interval '7 days' ORDER BY processed_at LIMIT 5000)`;
  await db().$executeRaw`
    DELETE FROM webhook_deliveries WHERE received_at < now() - make_interval(secs => ${window})`;
  await pruneKeys();
}

const pause = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });

/** Runs until `signal` aborts. */
export async function runEvents(signal: AbortSignal, consumer = `${hostname()}-${process.pid}`): Promise<void> {
  const streaming = Boolean(config().redisUrl);
  logger().info({ consumer, streaming }, "events: runner started");
  const stream = async () => {
    while (!signal.aborted) {
      try {
        await consume({ consumer, handle: (ids) => processEvents(ids), signal });
      } catch (error) {
        logger().warn({ err: error }, "events: stream unavailable; retrying in 1 s (the sweep goes on)");
        await pause(1_000, signal);
      }
    }
  };
  let pruned = 0;
  const housekeeping = async () => {
    while (!signal.aborted) {
      try {
        // With a stream, only what it missed (older than a few seconds); without one, everything.
        await sweep(streaming ? 5_000 : 0);
        await deliverDue();
        if (Date.now() - pruned > 60_000) {
          pruned = Date.now();
          await prune();
        }
      } catch (error) {
        logger().warn({ err: error }, "events: sweep failed; retrying");
      }
      await pause(streaming ? 2_000 : 500, signal);
    }
  };
  // Photos' variants (the images function's work, in this process): whatever is waiting, then a look every half
  // second. One photo at a time, so a 48 MP original never shares the process's memory with another.
  const images = async () => {
    const { processWaitingPhotos } = await import("../services/images.ts");
    while (!signal.aborted) {
      try {
        await processWaitingPhotos(signal);
      } catch (error) {
        logger().warn({ err: error }, "images: sweep failed; retrying");
      }
      await pause(500, signal);
    }
  };
  await Promise.all([streaming ? stream() : undefined, housekeeping(), config().s3 ? images() : undefined]);
  logger().info({ consumer }, "events: runner stopped");
}
