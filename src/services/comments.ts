import { ForbiddenError, NotFoundError, rethrowPrismaError } from "../errors.ts";
import { notified } from "../events/outbox.ts";
import { one } from "../loaders/batch.ts";
import { type CommentRecord, commentsById, firstCommentsChanged } from "../loaders/comments.ts";
import { isVisibleTo, type PostRecord, postEntity, postsById } from "../loaders/posts.ts";
import { type SignedIn, write } from "./write.ts";

/**
 * Comments on a post (the body is validated at the input), counts it, and records the event that notifies the
 * post's author. @throws NotFoundError
 */
export async function addComment(
  actor: SignedIn,
  input: { postId: string; body: string },
): Promise<{ comment: CommentRecord; post: PostRecord }> {
  const { viewer } = actor;
  const post = await one(postsById, input.postId);
  if (!post || !isVisibleTo(post, viewer.id)) throw new NotFoundError("That post doesn't exist.");
  return write(actor, async ({ tx, event, changed }) => {
    const comment = await tx.comment.create({ data: { postId: post.id, authorId: viewer.id, body: input.body } });
    const updated = await tx.post.update({ where: { id: post.id }, data: { commentCount: { increment: 1 } } });
    await event("comment.added", notified(post.authorId, viewer.id), {
      postId: post.id,
      commentId: comment.id,
      actorId: viewer.id,
    });
    changed(postEntity.changed(post.id, "post-counts"), firstCommentsChanged(post.id));
    return { comment, post: updated };
  }).catch((error) => rethrowPrismaError(error, { notFound: "That post doesn't exist." }));
}

/**
 * Deletes a comment: its author may, and so may the author of the post it is on. Its notification goes with it
 * (foreign key cascade). @throws NotFoundError, ForbiddenError
 */
export async function deleteComment(actor: SignedIn, commentId: string): Promise<void> {
  const { viewer } = actor;
  const comment = await one(commentsById, commentId);
  if (!comment) throw new NotFoundError("That comment doesn't exist.");
  const post = await one(postsById, comment.postId);
  if (comment.authorId !== viewer.id && post?.authorId !== viewer.id) {
    throw new ForbiddenError("Only the comment's author or the post's author can delete it.");
  }
  await write(actor, async ({ tx, event, changed }) => {
    // Counted only by the request that deleted it (two deletes may race).
    const deleted = await tx.comment.deleteMany({ where: { id: comment.id } });
    if (deleted.count === 0) throw new NotFoundError("That comment doesn't exist.");
    await tx.post.updateMany({ where: { id: comment.postId }, data: { commentCount: { decrement: 1 } } });
    await event("comment.deleted", post ? notified(post.authorId, comment.authorId) : null, {
      postId: comment.postId,
      commentId: comment.id,
      actorId: viewer.id,
    });
    changed(postEntity.changed(comment.postId, "post-counts"), firstCommentsChanged(comment.postId));
  });
}
