import { db } from "../platform/db.ts";

/** The operations sources a user is subscribed to, by name. */
export function sourceSubscriptionsOf(userId: string): Promise<{ source: string; createdAt: Date }[]> {
  return db().sourceSubscription.findMany({
    where: { userId },
    orderBy: { source: "asc" },
    select: { source: true, createdAt: true },
  });
}
