import { createdAtAndId, keyset, type PageRequest } from "../domain/pagination.ts";
import type { Notification } from "../generated/prisma/client.ts";
import { db } from "../platform/db.ts";
import { sql } from "../platform/sql.ts";
import { byIds } from "./batch.ts";

export type NotificationRecord = Notification;

export function notificationsById(ids: readonly string[]): Promise<(NotificationRecord | null)[]> {
  return byIds(ids, (valid) => db().notification.findMany({ where: { id: { in: valid } } }));
}

/** One page of a recipient's notifications, newest first. */
export function notificationsPage(recipientId: string, page: PageRequest): Promise<NotificationRecord[]> {
  const { where, direction } = keyset(sql`n.created_at, n.id`, "desc", page, createdAtAndId);
  return db().$queryRaw`
    SELECT n.id, n.recipient_id AS "recipientId", n.kind::text AS kind, n.actor_id AS "actorId",
      n.post_id AS "postId", n.comment_id AS "commentId", n.message, n.group_key AS "groupKey",
      n.actor_count AS "actorCount", n.created_at AS "createdAt", n.read_at AS "readAt"
    FROM notifications n
    WHERE n.recipient_id = ${recipientId}::uuid AND ${where}
    ORDER BY n.created_at ${direction}, n.id ${direction} LIMIT ${page.limit}`;
}

/** How many of a recipient's notifications are unread (cheap to poll: an index-only count). */
export function unreadCount(recipientId: string): Promise<number> {
  return db().notification.count({ where: { recipientId, readAt: null } });
}
