// The transactional outbox: writes record what happened as events in the same transaction as the change
// (`w.event(…)`, services/write.ts), so an event exists if and only if its change committed. Once it committed,
// the write announces the new events on the Redis stream (see stream.ts); whatever is not announced (Redis down,
// a crash in between) is found by the events handler's sweep. The handler (workers/notifications.ts) turns events into notifications exactly once.
import type { Prisma } from "../generated/prisma/client.ts";

/** Every kind of event, with its payload. Ids are database ids (UUIDs), never global ids. */
export interface DomainEvents {
  "post.liked": { postId: string; actorId: string };
  "post.unliked": { postId: string; actorId: string };
  "comment.added": { postId: string; commentId: string; actorId: string };
  "comment.deleted": { postId: string; commentId: string; actorId: string };
  "user.followed": { actorId: string };
  "user.unfollowed": { actorId: string };
  "post.created": { postId: string; actorId: string };
  "media.ready": { mediaId: string; actorId: string };
  "ops.event": { source: string; deliveryId: string; type: string; title: string; url?: string; details?: string };
}
export type EventKind = keyof DomainEvents;

/**
 * Records an event in the caller's transaction (services record through their unit of work: `w.event(…)`). `recipientId` is the person whose notifications it may change
 * (their events are applied in order); null when nobody's (post created) or everyone subscribed (ops events).
 */
export async function recordEvent<K extends EventKind>(
  tx: Prisma.TransactionClient,
  kind: K,
  recipientId: string | null,
  payload: DomainEvents[K],
): Promise<bigint> {
  const { id } = await tx.outboxEvent.create({
    data: { kind, recipientId, payload: payload as Prisma.InputJsonValue },
    select: { id: true },
  });
  return id;
}

/** Who an action notifies: the person concerned, unless they did it themselves (nobody is notified of that). */
export const notified = (recipientId: string, actorId: string): string | null =>
  recipientId === actorId ? null : recipientId;
