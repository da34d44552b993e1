// The outbound delivery hook: every new notification is pushed to NOTIFY_HOOK_URL (a push provider's bridge,
// a chat webhook), signed like the operations webhook, with retries and exponential backoff; after
// NOTIFY_HOOK_MAX_ATTEMPTS the delivery is marked DEAD, its last error kept (the dead-letter record). A real
// push provider plugs in as another `NotificationSender`.
import { encodeGlobalID } from "@pothos/plugin-relay";
import { sign } from "../domain/webhook-signature.ts";
import type { Notification } from "../generated/prisma/client.ts";
import { config } from "../platform/config.ts";
import { db } from "../platform/db.ts";
import { logger } from "../platform/logger.ts";

export interface NotificationSender {
  /** Sends a notification; `deliveryId` is the same on every retry, so the receiver can drop repeats. */
  send(notification: Notification, deliveryId: string): Promise<void>;
}

/** POSTs the notification as JSON (global ids, as the API shows them); anything but a 2xx is a failure. */
export function webhookSender(url: string, secret?: string): NotificationSender {
  return {
    async send(notification, deliveryId) {
      const body = JSON.stringify({
        id: encodeGlobalID("Notification", notification.id),
        recipientId: encodeGlobalID("User", notification.recipientId),
        kind: notification.kind,
        actorId: notification.actorId && encodeGlobalID("User", notification.actorId),
        actorCount: notification.actorCount,
        postId: notification.postId && encodeGlobalID("Post", notification.postId),
        message: notification.message,
        createdAt: notification.createdAt.toISOString(),
      });
      const timestamp = Math.floor(Date.now() / 1000);
      const response = await fetch(url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-shutter-timestamp": String(timestamp),
          "x-shutter-delivery": deliveryId,
          ...(secret ? { "x-shutter-signature": sign(secret, timestamp, deliveryId, body) } : {}),
        },
        body,
        signal: AbortSignal.timeout(5_000),
      });
      if (!response.ok) throw new Error(`HTTP ${response.status} from the notification hook`);
    },
  };
}

/**
 * Sends the deliveries that are due, each claimed by one runner at a time (SKIP LOCKED, then leased for a
 * minute), and reschedules or buries the failures. Returns how many were sent and how many died.
 */
export async function deliverDue(sender?: NotificationSender, limit = 50): Promise<{ sent: number; dead: number }> {
  const hook = config().notifyHook;
  if (!hook) return { sent: 0, dead: 0 };
  const send = sender ?? webhookSender(hook.url, hook.secret);
  const due = await db().$queryRaw<{ id: string; notificationId: string; attempts: number }[]>`
    UPDATE notification_deliveries d SET attempts = d.attempts + 1, next_attempt_at = now() + interval '1 minute'
    WHERE d.id IN (
      SELECT id FROM notification_deliveries WHERE status = 'PENDING' AND next_attempt_at <= now()
      ORDER BY next_attempt_at LIMIT ${limit} FOR UPDATE SKIP LOCKED
    )
    RETURNING d.id, d.notification_id AS "notificationId", d.attempts`;
  if (due.length === 0) return { sent: 0, dead: 0 };
  let sent = 0;
  let dead = 0;
  const notifications = new Map(
    (await db().notification.findMany({ where: { id: { in: due.map((d) => d.notificationId) } } })).map((n) => [
      n.id,
      n,
    ]),
  );
  for (const delivery of due) {
    const notification = notifications.get(delivery.notificationId);
    try {
      if (notification) await send.send(notification, delivery.id);
      await db().notificationDelivery.update({ where: { id: delivery.id }, data: { status: "SENT", lastError: null } });
      sent++;
    } catch (error) {
      const last = delivery.attempts >= hook.maxAttempts;
      const delayMs = Math.min(hook.backoffMs * 2 ** (delivery.attempts - 1), 3_600_000);
      await db().notificationDelivery.update({
        where: { id: delivery.id },
        data: last
          ? { status: "DEAD", lastError: String(error) }
          : { nextAttemptAt: new Date(Date.now() + delayMs), lastError: String(error) },
      });
      if (last) {
        dead++;
        logger().error({ err: error, deliveryId: delivery.id }, "notify hook: delivery dead after its last attempt");
      }
    }
  }
  return { sent, dead };
}
