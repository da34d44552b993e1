import { builder } from "../../schema/builder.ts";
import { NotFoundError, rethrowPrismaError } from "../errors.ts";
import { notified, recordEvent } from "../events/outbox.ts";
import { invalidate } from "../platform/cache.ts";
import { db } from "../platform/db.ts";
import { PostRef } from "./posts.ts";

const LikeInput = builder.inputType("LikeInput", {
  fields: (t) => ({ postId: t.globalID({ required: true, for: PostRef }) }),
});

builder.mutationFields((t) => ({
  likePost: t.field({
    type: PostRef,
    description: "Likes a post. Liking a post twice is the same as liking it once.",
    args: { input: t.arg({ type: LikeInput, required: true }) },
    errors: { types: [NotFoundError], dataField: { name: "post" } },
    resolve: async (_root, { input }, context) => {
      const viewerId = context.viewer!.id;
      const post = await context.loaders.post.load(input.postId.id);
      if (!post) throw new NotFoundError("That post doesn't exist.");
      const { updated, changed } = await db()
        .$transaction(async (tx) => {
          const { count } = await tx.like.createMany({
            data: [{ postId: post.id, userId: viewerId }],
            skipDuplicates: true,
          });
          if (count === 0)
            return { updated: await tx.post.findUniqueOrThrow({ where: { id: post.id } }), changed: false };
          await recordEvent(tx, "post.liked", notified(post.authorId, viewerId), {
            postId: post.id,
            actorId: viewerId,
          });
          const updated = await tx.post.update({ where: { id: post.id }, data: { likeCount: { increment: 1 } } });
          return { updated, changed: true };
        })
        .catch((error) => rethrowPrismaError(error, { notFound: "That post doesn't exist." }));
      if (changed) await invalidate(["post-counts", post.id]);
      context.loaders.post.clear(post.id).prime(post.id, updated);
      context.loaders.viewerHasLiked.clear(post.id).prime(post.id, true);
      return updated;
    },
  }),
  unlikePost: t.field({
    type: PostRef,
    description: "Withdraws a like (and its notification). Unliking a post not liked does nothing.",
    args: { input: t.arg({ type: LikeInput, required: true }) },
    errors: { types: [NotFoundError], dataField: { name: "post" } },
    resolve: async (_root, { input }, context) => {
      const viewerId = context.viewer!.id;
      const post = await context.loaders.post.load(input.postId.id);
      if (!post) throw new NotFoundError("That post doesn't exist.");
      const { updated, changed } = await db()
        .$transaction(async (tx) => {
          const { count } = await tx.like.deleteMany({ where: { postId: post.id, userId: viewerId } });
          if (count === 0)
            return { updated: await tx.post.findUniqueOrThrow({ where: { id: post.id } }), changed: false };
          await recordEvent(tx, "post.unliked", notified(post.authorId, viewerId), {
            postId: post.id,
            actorId: viewerId,
          });
          const updated = await tx.post.update({ where: { id: post.id }, data: { likeCount: { decrement: 1 } } });
          return { updated, changed: true };
        })
        .catch((error) => rethrowPrismaError(error, { notFound: "That post doesn't exist." }));
      if (changed) await invalidate(["post-counts", post.id]);
      context.loaders.post.clear(post.id).prime(post.id, updated);
      context.loaders.viewerHasLiked.clear(post.id).prime(post.id, false);
      return updated;
    },
  }),
}));
