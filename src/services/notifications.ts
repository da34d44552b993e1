import { LIMITS } from "../domain/validation.ts";
import { ValidationError } from "../errors.ts";
import { isUuid } from "../platform/sql.ts";
import { type SignedIn, write } from "./write.ts";

/**
 * Marks the viewer's notifications as read: the ones given, or all. Scoped to the viewer: ids of other people's
 * notifications simply match nothing. @throws ValidationError (too many ids)
 */
export async function markNotificationsRead(actor: SignedIn, ids?: string[] | null): Promise<void> {
  if (ids && ids.length > LIMITS.notificationIds.max) {
    throw ValidationError.field(
      ["input", "ids"],
      `Mark at most ${LIMITS.notificationIds.max} notifications at once, or omit ids for all.`,
    );
  }
  const valid = ids?.filter(isUuid);
  await write(
    actor,
    ({ tx }) =>
      tx.notification.updateMany({
        where: { recipientId: actor.viewer.id, readAt: null, ...(valid ? { id: { in: valid } } : {}) },
        data: { readAt: new Date() },
      }),
    { singleStatement: true },
  );
}
