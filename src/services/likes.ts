import { NotFoundError, rethrowPrismaError } from "../errors.ts";
import { notified } from "../events/outbox.ts";
import { one } from "../loaders/batch.ts";
import { viewerLike } from "../loaders/likes.ts";
import { isVisibleTo, type PostRecord, postEntity, postsById } from "../loaders/posts.ts";
import { type SignedIn, write } from "./write.ts";

/** A post after a like or an unlike, and whether the viewer now likes it. */
export interface LikeOutcome {
  post: PostRecord;
  liked: boolean;
}

/**
 * Likes a post: one like per person (liking twice is liking once), the post's counter, and an outbox event
 * that notifies its author. @throws NotFoundError
 */
export function likePost(actor: SignedIn, postId: string): Promise<LikeOutcome> {
  return toggleLike(actor, postId, true);
}

/** Withdraws a like (and, through the event, its notification). Unliking a post not liked does nothing. */
export function unlikePost(actor: SignedIn, postId: string): Promise<LikeOutcome> {
  return toggleLike(actor, postId, false);
}

async function toggleLike(actor: SignedIn, postId: string, like: boolean): Promise<LikeOutcome> {
  const { viewer } = actor;
  const post = await one(postsById, postId);
  if (!post || !isVisibleTo(post, viewer.id)) throw new NotFoundError("That post doesn't exist.");
  const updated = await write(actor, async ({ tx, event, changed }) => {
    const { count } = like
      ? await tx.like.createMany({ data: [{ postId: post.id, userId: viewer.id }], skipDuplicates: true })
      : await tx.like.deleteMany({ where: { postId: post.id, userId: viewer.id } });
    // Whether the viewer likes it is what the statement set, even when it already was so (cached per viewer).
    changed(viewerLike.changed(viewer.id, post.id));
    if (count === 0) return tx.post.findUniqueOrThrow({ where: { id: post.id } });
    await event(like ? "post.liked" : "post.unliked", notified(post.authorId, viewer.id), {
      postId: post.id,
      actorId: viewer.id,
    });
    changed(postEntity.changed(post.id, "post-counts"));
    return tx.post.update({ where: { id: post.id }, data: { likeCount: like ? { increment: 1 } : { decrement: 1 } } });
  }).catch((error) => rethrowPrismaError(error, { notFound: "That post doesn't exist." }));
  return { post: updated, liked: like };
}
