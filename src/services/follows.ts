import { timelineOf } from "../caching/timelines.ts";
import { NotFoundError, rethrowPrismaError, ValidationError } from "../errors.ts";
import type { Prisma } from "../generated/prisma/client.ts";
import { one } from "../loaders/batch.ts";
import { omitPrivate, type UserRecord, userEntity, usersById, viewerFollow } from "../loaders/users.ts";
import { type SignedIn, write } from "./write.ts";

/** The person followed or unfollowed, as they are now, and whether the viewer now follows them. */
export interface FollowOutcome {
  user: UserRecord;
  following: boolean;
}

/** Follows someone: their posts join the viewer's feed. Following twice is following once. @throws NotFoundError, ValidationError */
export function follow(actor: SignedIn, userId: string): Promise<FollowOutcome> {
  return toggleFollow(actor, userId, true);
}

/** Stops following someone. Unfollowing someone not followed does nothing. @throws NotFoundError */
export function unfollow(actor: SignedIn, userId: string): Promise<FollowOutcome> {
  return toggleFollow(actor, userId, false);
}

async function toggleFollow(actor: SignedIn, userId: string, start: boolean): Promise<FollowOutcome> {
  const { viewer } = actor;
  const target = await one(usersById, userId);
  if (!target) throw new NotFoundError("That person doesn't exist.");
  if (start && target.id === viewer.id) throw ValidationError.field(["input", "userId"], "You can't follow yourself.");
  const user = await write(actor, async ({ tx, event, changed }) => {
    const { count } = start
      ? await tx.follow.createMany({ data: [{ followerId: viewer.id, followeeId: target.id }], skipDuplicates: true })
      : await tx.follow.deleteMany({ where: { followerId: viewer.id, followeeId: target.id } });
    // Whether the viewer follows them is what the statement set, even when it already was so (cached per viewer).
    changed(viewerFollow.changed(viewer.id, target.id));
    if (count === 1) {
      await adjustFollowCounts(tx, viewer.id, target.id, start ? 1 : -1);
      await event(start ? "user.followed" : "user.unfollowed", target.id, { actorId: viewer.id });
      changed(
        userEntity.changed(viewer.id, "user-counts"),
        userEntity.changed(target.id, "user-counts"),
        // Their posts join or leave the viewer's feed: the timeline is rebuilt (caching/timelines.ts).
        timelineOf.changed(viewer.id),
      );
    }
    const user: UserRecord = await tx.user.findUniqueOrThrow({ where: { id: target.id }, omit: omitPrivate });
    return user;
  }).catch((error) => rethrowPrismaError(error, { notFound: "That person doesn't exist." }));
  return { user, following: start };
}

/**
 * Adjusts both follow counters in one statement: its row locks are taken in index order, so two people
 * following each other at the same moment cannot deadlock.
 */
async function adjustFollowCounts(tx: Prisma.TransactionClient, followerId: string, followeeId: string, delta: 1 | -1) {
  await tx.$executeRaw`
    UPDATE users SET
      following_count = following_count + CASE WHEN id = ${followerId}::uuid THEN ${delta}::int ELSE 0 END,
      follower_count = follower_count + CASE WHEN id = ${followeeId}::uuid THEN ${delta}::int ELSE 0 END
    WHERE id IN (${followerId}::uuid, ${followeeId}::uuid)`;
}
