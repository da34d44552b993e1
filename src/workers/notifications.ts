// The events handler's work: outbox events → notifications, exactly once. Each event is applied in one
// transaction that also marks it processed, so a redelivered event is a no-op and a crash leaves it for the
// next delivery. Events of one recipient are applied in outbox order (a lock per recipient, earlier events
// first), so an unlike never overtakes its like. Likes of a post aggregate into one notification per
// recipient ("Ana and 12 others liked your photo"); undoing the cause (unlike, unfollow, deleting a comment)
// updates or removes it.

import { fanOut, TimelinesUnavailable } from "../caching/timelines.ts";
import type { DomainEvents, EventKind } from "../events/outbox.ts";
import { notificationsPubSub } from "../events/pubsub.ts";
import type { Prisma } from "../generated/prisma/client.ts";
import { config } from "../platform/config.ts";
import { db } from "../platform/db.ts";
import { logger } from "../platform/logger.ts";
import { unavailableService } from "../platform/outage.ts";
import { sql } from "../platform/sql.ts";
import { inSpan } from "../platform/telemetry.ts";
import { write } from "../services/write.ts";

type Tx = Prisma.TransactionClient;

interface EventRow {
  id: bigint;
  kind: EventKind;
  recipientId: string | null;
  payload: unknown;
  createdAt: Date;
}

/** A notification that appeared (or came back to the top) for its recipient. */
interface Added {
  id: string;
  recipientId: string;
}

/** Processes events by id, a few at a time; returns the ids that failed (to be retried). */
export async function processEvents(ids: readonly bigint[], concurrency = 4): Promise<bigint[]> {
  const failed: bigint[] = [];
  const queue = [...ids];
  const worker = async () => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      try {
        const added = await inSpan("events.process", { "shutter.event_id": id.toString() }, () => processEvent(id));
        for (const note of added) {
          notificationsPubSub().publish("notification:added", note.recipientId, { id: note.id });
        }
      } catch (error) {
        failed.push(id);
        // An outage (the database, mostly) is not the event's fault: it must not bring it closer to the dead
        // letters, which are for events that fail by themselves.
        const service = error instanceof TimelinesUnavailable ? "cache" : unavailableService(error);
        if (service) {
          logger().warn({ err: error, service, eventId: id.toString() }, "events: service unavailable; will retry");
          continue;
        }
        logger().error({ err: error, eventId: id.toString() }, "events: processing failed; will retry");
        await db().$executeRaw`UPDATE outbox_events SET attempts = attempts + 1 WHERE id = ${id}`.catch(
          () => undefined,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, ids.length) }, worker));
  return failed;
}

/**
 * Unprocessed events at least `minAgeMs` old (not announced, or announced and lost), oldest first; not those
 * that failed EVENTS_MAX_DELIVERIES times (dead-lettered: they wait for someone to look at the logs).
 */
export async function unprocessedEvents(limit = 500, minAgeMs = 0): Promise<bigint[]> {
  const rows = await db().$queryRaw<{ id: bigint }[]>`
    SELECT id FROM outbox_events
    WHERE processed_at IS NULL AND created_at <= now() - make_interval(secs => ${minAgeMs / 1000})
      AND attempts < ${config().events.maxDeliveries}
    ORDER BY id LIMIT ${limit}`;
  return rows.map((row) => row.id);
}

async function processEvent(id: bigint): Promise<Added[]> {
  const [head] = await db().$queryRaw<{ recipientId: string | null }[]>`
    SELECT recipient_id AS "recipientId" FROM outbox_events WHERE id = ${id} AND processed_at IS NULL`;
  if (!head) return []; // already processed (a redelivery), or never committed
  // The events handler's own write: the event rows' processed_at is its idempotency.
  return write(null, async ({ tx }) => {
    // The recipient's lock comes before any event row's: two handlers never wait on each other in reverse.
    if (head.recipientId) {
      await tx.$queryRaw`SELECT 1 AS locked FROM pg_advisory_xact_lock(hashtextextended(${head.recipientId}, 0))`;
    }
    const events = await tx.$queryRaw<EventRow[]>`
      SELECT id, kind, recipient_id AS "recipientId", payload, created_at AS "createdAt" FROM outbox_events
      WHERE processed_at IS NULL AND ${
        head.recipientId ? sql`recipient_id = ${head.recipientId}::uuid AND id <= ${id}` : sql`id = ${id}`
      }
      ORDER BY id FOR UPDATE`;
    const added: Added[] = [];
    for (const event of events) added.push(...(await apply(tx, event)));
    if (events.length) {
      await tx.outboxEvent.updateMany({
        where: { id: { in: events.map((e) => e.id) } },
        data: { processedAt: new Date() },
      });
    }
    if (added.length && config().notifyHook) {
      await tx.notificationDelivery.createMany({ data: added.map((note) => ({ notificationId: note.id })) });
    }
    return added;
  });
}

function apply(tx: Tx, event: EventRow): Promise<Added[]> {
  const recipientId = event.recipientId;
  const at = event.createdAt;
  switch (event.kind) {
    case "post.liked": {
      const { postId, actorId } = event.payload as DomainEvents["post.liked"];
      return recipientId ? like(tx, recipientId, postId, actorId, at) : none;
    }
    case "post.unliked": {
      const { postId, actorId } = event.payload as DomainEvents["post.unliked"];
      return recipientId ? unlike(tx, recipientId, postId, actorId) : none;
    }
    case "comment.added": {
      const { postId, commentId, actorId } = event.payload as DomainEvents["comment.added"];
      return recipientId ? commented(tx, recipientId, postId, commentId, actorId, at) : none;
    }
    case "comment.deleted": {
      const { commentId } = event.payload as DomainEvents["comment.deleted"];
      return tx.notification.deleteMany({ where: { commentId } }).then(() => []);
    }
    case "user.followed": {
      const { actorId } = event.payload as DomainEvents["user.followed"];
      return recipientId ? followed(tx, recipientId, actorId, at) : none;
    }
    case "user.unfollowed": {
      const { actorId } = event.payload as DomainEvents["user.unfollowed"];
      if (!recipientId) return none;
      return tx.notification.deleteMany({ where: { recipientId, actorId, kind: "FOLLOW" } }).then(() => []);
    }
    case "ops.event":
      return opsEvent(tx, event.payload as DomainEvents["ops.event"], at);
    case "post.created": {
      // Into its followers' timelines: the publishing write did it, unless Redis could not take it then (adding
      // twice is adding once). Redis failing throws: the event is retried.
      const { postId } = event.payload as DomainEvents["post.created"];
      return fanOut(postId).then(() => []);
    }
    case "media.ready":
      // Recorded for other consumers (the outbound hook's integrations, analytics); nobody is notified.
      return none;
  }
}

const none = Promise.resolve([] as Added[]);

async function like(tx: Tx, recipientId: string, postId: string, actorId: string, at: Date): Promise<Added[]> {
  const groupKey = `like:${postId}`;
  const existing = await tx.notification.findUnique({
    where: { recipientId_groupKey: { recipientId, groupKey } },
    select: { id: true },
  });
  if (!existing) {
    // Liked, then deleted before the handler ran: nothing left to notify about.
    if (!(await tx.post.findUnique({ where: { id: postId }, select: { id: true } }))) return [];
    const created = await tx.notification.create({
      data: {
        recipientId,
        kind: "LIKE",
        actorId,
        postId,
        groupKey,
        createdAt: at,
        actors: { create: { actorId, createdAt: at } },
      },
      select: { id: true },
    });
    return [{ id: created.id, recipientId }];
  }
  const { count } = await tx.notificationActor.createMany({
    data: [{ notificationId: existing.id, actorId, createdAt: at }],
    skipDuplicates: true,
  });
  if (count === 0) return [];
  // Back to the top, unread, under its newest actor.
  await tx.notification.update({
    where: { id: existing.id },
    data: { actorId, actorCount: { increment: 1 }, createdAt: at, readAt: null },
  });
  return [{ id: existing.id, recipientId }];
}

async function unlike(tx: Tx, recipientId: string, postId: string, actorId: string): Promise<Added[]> {
  const existing = await tx.notification.findUnique({
    where: { recipientId_groupKey: { recipientId, groupKey: `like:${postId}` } },
    select: { id: true },
  });
  if (!existing) return [];
  const { count } = await tx.notificationActor.deleteMany({ where: { notificationId: existing.id, actorId } });
  if (count === 0) return [];
  const latest = await tx.notificationActor.findFirst({
    where: { notificationId: existing.id },
    orderBy: { createdAt: "desc" },
  });
  if (!latest) await tx.notification.delete({ where: { id: existing.id } });
  else {
    await tx.notification.update({
      where: { id: existing.id },
      data: { actorId: latest.actorId, actorCount: { decrement: 1 } },
    });
  }
  return [];
}

async function commented(
  tx: Tx,
  recipientId: string,
  postId: string,
  commentId: string,
  actorId: string,
  at: Date,
): Promise<Added[]> {
  // Deleted before the handler ran: its notification would point at nothing.
  if (!(await tx.comment.findUnique({ where: { id: commentId }, select: { id: true } }))) return [];
  const created = await tx.notification.create({
    data: { recipientId, kind: "COMMENT", actorId, postId, commentId, createdAt: at },
    select: { id: true },
  });
  return [{ id: created.id, recipientId }];
}

async function followed(tx: Tx, recipientId: string, actorId: string, at: Date): Promise<Added[]> {
  const existing = await tx.notification.findFirst({ where: { recipientId, actorId, kind: "FOLLOW" } });
  if (existing) return [];
  const created = await tx.notification.create({
    data: { recipientId, kind: "FOLLOW", actorId, createdAt: at },
    select: { id: true },
  });
  return [{ id: created.id, recipientId }];
}

/** An accepted operations webhook event: a SYSTEM notification for everyone subscribed to its source. */
async function opsEvent(tx: Tx, event: DomainEvents["ops.event"], at: Date): Promise<Added[]> {
  const subscribers = await tx.sourceSubscription.findMany({
    where: { source: event.source },
    select: { userId: true },
  });
  if (subscribers.length === 0) return [];
  const message = `${event.source}: ${event.title}${event.url ? ` (${event.url})` : ""}`;
  return tx.notification.createManyAndReturn({
    data: subscribers.map(({ userId }) => ({ recipientId: userId, kind: "SYSTEM" as const, message, createdAt: at })),
    select: { id: true, recipientId: true },
  });
}
