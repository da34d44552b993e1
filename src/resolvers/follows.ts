import { builder } from "../../schema/builder.ts";
import { NotFoundError, rethrowPrismaError, ValidationError } from "../errors.ts";
import { recordEvent } from "../events/outbox.ts";
import type { Prisma } from "../generated/prisma/client.ts";
import type { UserRecord } from "../loaders/users.ts";
import { invalidate } from "../platform/cache.ts";
import { db } from "../platform/db.ts";
import { UserRef } from "./users.ts";

const FollowInput = builder.inputType("FollowInput", {
  fields: (t) => ({ userId: t.globalID({ required: true, for: UserRef }) }),
});

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

const omitPrivate = { passwordHash: true, email: true } as const;

builder.mutationFields((t) => ({
  follow: t.field({
    type: UserRef,
    description: "Follows someone: their posts join your feed. Following twice is the same as once.",
    args: { input: t.arg({ type: FollowInput, required: true }) },
    errors: { types: [NotFoundError], dataField: { name: "user" } },
    resolve: async (_root, { input }, context) => {
      const viewerId = context.viewer!.id;
      const target = await context.loaders.user.load(input.userId.id);
      if (!target) throw new NotFoundError("That person doesn't exist.");
      if (target.id === viewerId) throw ValidationError.field(["input", "userId"], "You can't follow yourself.");
      const { user, changed } = await db()
        .$transaction(async (tx) => {
          const { count } = await tx.follow.createMany({
            data: [{ followerId: viewerId, followeeId: target.id }],
            skipDuplicates: true,
          });
          if (count === 1) {
            await adjustFollowCounts(tx, viewerId, target.id, 1);
            await recordEvent(tx, "user.followed", target.id, { actorId: viewerId });
          }
          const user: UserRecord = await tx.user.findUniqueOrThrow({ where: { id: target.id }, omit: omitPrivate });
          return { user, changed: count === 1 };
        })
        .catch((error) => rethrowPrismaError(error, { notFound: "That person doesn't exist." }));
      if (changed) await invalidate(["user-counts", viewerId], ["user-counts", target.id]);
      context.loaders.user.clear(target.id).prime(target.id, user).clear(viewerId);
      context.loaders.viewerIsFollowing.clear(target.id).prime(target.id, true);
      return user;
    },
  }),
  unfollow: t.field({
    type: UserRef,
    description: "Stops following someone. Unfollowing someone not followed does nothing.",
    args: { input: t.arg({ type: FollowInput, required: true }) },
    errors: { types: [NotFoundError], dataField: { name: "user" } },
    resolve: async (_root, { input }, context) => {
      const viewerId = context.viewer!.id;
      const target = await context.loaders.user.load(input.userId.id);
      if (!target) throw new NotFoundError("That person doesn't exist.");
      const { user, changed } = await db().$transaction(async (tx) => {
        const { count } = await tx.follow.deleteMany({ where: { followerId: viewerId, followeeId: target.id } });
        if (count === 1) {
          await adjustFollowCounts(tx, viewerId, target.id, -1);
          await recordEvent(tx, "user.unfollowed", target.id, { actorId: viewerId });
        }
        const user: UserRecord = await tx.user.findUniqueOrThrow({ where: { id: target.id }, omit: omitPrivate });
        return { user, changed: count === 1 };
      });
      if (changed) await invalidate(["user-counts", viewerId], ["user-counts", target.id]);
      context.loaders.user.clear(target.id).prime(target.id, user).clear(viewerId);
      context.loaders.viewerIsFollowing.clear(target.id).prime(target.id, false);
      return user;
    },
  }),
}));
