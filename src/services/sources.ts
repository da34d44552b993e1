import { NotFoundError } from "../errors.ts";
import type { DomainEvents } from "../events/outbox.ts";
import { config } from "../platform/config.ts";
import { type SignedIn, write } from "./write.ts";

// Operations sources: systems (CI/CD, monitoring) that post events to the operations webhook. People subscribe
// to a source and get each of its events as a SYSTEM notification.

/** The sources one can subscribe to: those the webhook accepts events from (OPS_WEBHOOK_SECRETS), by name. */
export function sources(): string[] {
  return [...config().opsWebhook.secrets.keys()].sort();
}

/** Notifies the viewer of every event of a source. Subscribing twice is subscribing once. @throws NotFoundError */
export async function subscribeToSource(actor: SignedIn, source: string): Promise<void> {
  if (!sources().includes(source)) {
    throw new NotFoundError(`There is no source "${source}": choose one of notificationSources.`);
  }
  await write(
    actor,
    ({ tx }) => tx.sourceSubscription.createMany({ data: [{ userId: actor.viewer.id, source }], skipDuplicates: true }),
    { singleStatement: true },
  );
}

/** Stops notifying the viewer of a source (also one no longer configured). Idempotent. */
export async function unsubscribeFromSource(actor: SignedIn, source: string): Promise<void> {
  await write(actor, ({ tx }) => tx.sourceSubscription.deleteMany({ where: { userId: actor.viewer.id, source } }), {
    singleStatement: true,
  });
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
  // The webhook's own deliveries are its idempotency: the system's write, no request key to claim.
  return write(null, async ({ tx, event: record }) => {
    const { count } = await tx.webhookDelivery.createMany({ data: [{ source, deliveryId }], skipDuplicates: true });
    if (count === 0) return false;
    await record("ops.event", null, { source, deliveryId, ...event });
    return true;
  });
}
