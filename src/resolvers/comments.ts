import { encodeGlobalID } from "@pothos/plugin-relay";
import { builder } from "../../schema/builder.ts";
import { byCreation, paginate } from "../domain/pagination.ts";
import { commentRule } from "../domain/validation.ts";
import { ForbiddenError, NotFoundError } from "../errors.ts";
import { type CommentRecord, postCommentsPage } from "../loaders/comments.ts";
import { addComment, deleteComment } from "../services/comments.ts";
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
      const { comment, post } = await addComment(context.actor!, { postId: input.postId.id, body: input.body });
      context.loaders.post.prime(post.id, post); // what the write left (it made the loader forget the post)
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
      await deleteComment(context.actor!, input.commentId.id);
      return encodeGlobalID("Comment", input.commentId.id);
    },
  }),
);
