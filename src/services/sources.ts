import type { Viewer } from "../domain/auth.ts";
import { NotFoundError } from "../errors.ts";
import { type DomainEvents, recordEvent } from "../events/outbox.ts";
import { config } from "../platform/config.ts";
import { db } from "../platform/db.ts";

// Operations sources: systems (CI/CD, monitoring) that post events to the operations webhook. People subscribe
// to a source and get each of its events as a SYSTEM notification.

/** The sources one can subscribe to: those the webhook accepts events from (OPS_WEBHOOK_SECRETS), by name. */
export function sources(): string[] {
  return [...config().opsWebhook.secrets.keys()].sort();
}

/** Notifies the viewer of every event of a source. Subscribing twice is subscribing once. @throws NotFoundError */
export async function subscribeToSource(viewer: Viewer, source: string): Promise<void> {
  if (!sources().includes(source)) {
    throw new NotFoundError(`There is no source "${source}": choose one of notificationSources.`);
  }
  await db().sourceSubscription.createMany({ data: [{ userId: viewer.id, source }], skipDuplicates: true });
}

/** Stops notifying the viewer of a source (also one no longer configured). Idempotent. */
export async function unsubscribeFromSource(viewer: Viewer, source: string): Promise<void> {
  await db().sourceSubscription.deleteMany({ where: { userId: viewer.id, source } });
}

/**
 * Accepts an event the webhook verified: its delivery id is recorded and its outbox event written in one
 * transaction, so an event is processed once however often it is delivered.
 * @returns false when that delivery was accepted before.
 */
export async function acceptOpsEvent(
  source: string,
  deliveryId: string,
  event: Omit<DomainEvents["ops.event"], "source" | "deliveryId">,
): Promise<boolean> {
  return db().$transaction(async (tx) => {
    const { count } = await tx.webhookDelivery.createMany({ data: [{ source, deliveryId }], skipDuplicates: true });
    if (count === 0) return false;
    await recordEvent(tx, "ops.event", null, { source, deliveryId, ...event });
    return true;
  });
}
