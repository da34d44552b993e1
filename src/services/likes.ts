import type { Viewer } from "../domain/auth.ts";
import { NotFoundError, rethrowPrismaError } from "../errors.ts";
import { notified, recordEvent } from "../events/outbox.ts";
import { one } from "../loaders/batch.ts";
import { isVisibleTo, type PostRecord, postEntity, postsById } from "../loaders/posts.ts";
import { commitChanges } from "../platform/changes.ts";
import { db } from "../platform/db.ts";

/** A post after a like or an unlike, and whether the viewer now likes it. */
export interface LikeOutcome {
  post: PostRecord;
  liked: boolean;
}

/**
 * Likes a post: one like per person (liking twice is liking once), the post's counter, and an outbox event
 * that notifies its author. @throws NotFoundError
 */
export function likePost(viewer: Viewer, postId: string): Promise<LikeOutcome> {
  return toggleLike(viewer, postId, true);
}

/** Withdraws a like (and, through the event, its notification). Unliking a post not liked does nothing. */
export function unlikePost(viewer: Viewer, postId: string): Promise<LikeOutcome> {
  return toggleLike(viewer, postId, false);
}

async function toggleLike(viewer: Viewer, postId: string, like: boolean): Promise<LikeOutcome> {
  const post = await one(postsById, postId);
  if (!post || !isVisibleTo(post, viewer.id)) throw new NotFoundError("That post doesn't exist.");
  const { updated, changed } = await db()
    .$transaction(async (tx) => {
      const { count } = like
        ? await tx.like.createMany({ data: [{ postId: post.id, userId: viewer.id }], skipDuplicates: true })
        : await tx.like.deleteMany({ where: { postId: post.id, userId: viewer.id } });
      if (count === 0) return { updated: await tx.post.findUniqueOrThrow({ where: { id: post.id } }), changed: false };
      await recordEvent(tx, like ? "post.liked" : "post.unliked", notified(post.authorId, viewer.id), {
        postId: post.id,
        actorId: viewer.id,
      });
      const updated = await tx.post.update({
        where: { id: post.id },
        data: { likeCount: like ? { increment: 1 } : { decrement: 1 } },
      });
      return { updated, changed: true };
    })
    .catch((error) => rethrowPrismaError(error, { notFound: "That post doesn't exist." }));
  if (changed) await commitChanges(postEntity.changed(post.id, "post-counts"));
  return { post: updated, liked: like };
}
