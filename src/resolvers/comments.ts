import { encodeGlobalID } from "@pothos/plugin-relay";
import { builder } from "../../schema/builder.ts";
import { byCreation, paginate } from "../domain/pagination.ts";
import { commentRule } from "../domain/validation.ts";
import { ForbiddenError, NotFoundError, rethrowPrismaError } from "../errors.ts";
import { notified, recordEvent } from "../events/outbox.ts";
import { type CommentRecord, postCommentsPage } from "../loaders/comments.ts";
import { invalidate } from "../platform/cache.ts";
import { db } from "../platform/db.ts";
import { PostRef } from "./posts.ts";
import { UserRef } from "./users.ts";

export const CommentRef = builder.objectRef<CommentRecord>("Comment");

const CommentConnection = builder.connectionObject({ type: CommentRef, name: "CommentConnection" });

builder.node(CommentRef, {
  id: { resolve: (comment) => comment.id },
  loadMany: (ids, context) => ids.map((id) => context.loaders.comment.load(id)),
  fields: (t) => ({
    body: t.exposeString("body"),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    author: t.field({
      type: UserRef,
      resolve: async (comment, _args, context) => {
        const author = await context.loaders.user.load(comment.authorId);
        if (!author) throw new NotFoundError("The author of this comment no longer exists.");
        return author;
      },
    }),
    post: t.field({
      type: PostRef,
      resolve: async (comment, _args, context) => {
        const post = await context.loaders.post.load(comment.postId);
        if (!post) throw new NotFoundError("This comment's post no longer exists.");
        return post;
      },
    }),
  }),
});

builder.objectFields(PostRef, (t) => ({
  comments: t.connection(
    {
      type: CommentRef,
      description: "Oldest first. The first page of many posts is fetched in one statement.",
      resolve: (post, args, context) =>
        paginate(
          args,
          (page) =>
            page.after || page.before || page.inverted
              ? postCommentsPage(post.id, page)
              : context.loaders.firstCommentsByPost.load({ parentId: post.id, limit: page.limit }),
          byCreation,
        ),
    },
    CommentConnection,
  ),
}));

const AddCommentInput = builder.inputType("AddCommentInput", {
  fields: (t) => ({
    postId: t.globalID({ required: true, for: PostRef }),
    body: t.string({ required: true }).validate(commentRule),
  }),
});

builder.mutationField("addComment", (t) =>
  t.field({
    type: CommentRef,
    args: { input: t.arg({ type: AddCommentInput, required: true }) },
    errors: { types: [NotFoundError], dataField: { name: "comment" } },
    resolve: async (_root, { input }, context) => {
      const viewerId = context.viewer!.id;
      const post = await context.loaders.post.load(input.postId.id);
      if (!post) throw new NotFoundError("That post doesn't exist.");
      const { comment, updated } = await db()
        .$transaction(async (tx) => {
          const comment = await tx.comment.create({ data: { postId: post.id, authorId: viewerId, body: input.body } });
          const updated = await tx.post.update({ where: { id: post.id }, data: { commentCount: { increment: 1 } } });
          await recordEvent(tx, "comment.added", notified(post.authorId, viewerId), {
            postId: post.id,
            commentId: comment.id,
            actorId: viewerId,
          });
          return { comment, updated };
        })
        .catch((error) => rethrowPrismaError(error, { notFound: "That post doesn't exist." }));
      await invalidate(["post-counts", post.id]);
      context.loaders.post.clear(post.id).prime(post.id, updated);
      return comment;
    },
  }),
);

const DeleteCommentInput = builder.inputType("DeleteCommentInput", {
  fields: (t) => ({ commentId: t.globalID({ required: true, for: CommentRef }) }),
});

builder.mutationField("deleteComment", (t) =>
  t.field({
    type: "ID",
    description: "Deletes a comment: its author may, and so may the author of the post it is on.",
    args: { input: t.arg({ type: DeleteCommentInput, required: true }) },
    errors: { types: [NotFoundError, ForbiddenError], dataField: { name: "deletedCommentId" } },
    resolve: async (_root, { input }, context) => {
      const viewerId = context.viewer!.id;
      const comment = await context.loaders.comment.load(input.commentId.id);
      if (!comment) throw new NotFoundError("That comment doesn't exist.");
      const post = await context.loaders.post.load(comment.postId);
      if (comment.authorId !== viewerId && post?.authorId !== viewerId) {
        throw new ForbiddenError("Only the comment's author or the post's author can delete it.");
      }
      await db().$transaction(async (tx) => {
        // Its notification goes with it (foreign key cascade). Counted only by the request that deleted it.
        const deleted = await tx.comment.deleteMany({ where: { id: comment.id } });
        if (deleted.count === 0) throw new NotFoundError("That comment doesn't exist.");
        await tx.post.updateMany({ where: { id: comment.postId }, data: { commentCount: { decrement: 1 } } });
        await recordEvent(tx, "comment.deleted", post ? notified(post.authorId, comment.authorId) : null, {
          postId: comment.postId,
          commentId: comment.id,
          actorId: viewerId,
        });
      });
      await invalidate(["post-counts", comment.postId]);
      context.loaders.post.clear(comment.postId);
      return encodeGlobalID("Comment", comment.id);
    },
  }),
);
