import { builder } from "../../schema/builder.ts";
import { NotFoundError } from "../errors.ts";
import type { Context } from "../http/context.ts";
import { type LikeOutcome, likePost, unlikePost } from "../services/likes.ts";
import { PostRef } from "./posts.ts";

const LikeInput = builder.inputType("LikeInput", {
  fields: (t) => ({ postId: t.globalID({ required: true, for: PostRef }) }),
});

/**
 * The post as the like left it: the rest of the operation reads it (and whether the viewer likes it) from here.
 * (The write made the request's loaders forget both: these are what it left.)
 */
function likedPost({ post, liked }: LikeOutcome, context: Context) {
  context.loaders.post.prime(post.id, post);
  context.loaders.viewerHasLiked.prime(post.id, liked);
  return post;
}

builder.mutationFields((t) => ({
  likePost: t.field({
    type: PostRef,
    description: "Likes a post. Liking a post twice is the same as liking it once.",
    args: { input: t.arg({ type: LikeInput, required: true }) },
    errors: { types: [NotFoundError], dataField: { name: "post" } },
    resolve: async (_root, { input }, context) => likedPost(await likePost(context.actor!, input.postId.id), context),
  }),
  unlikePost: t.field({
    type: PostRef,
    description: "Withdraws a like (and its notification). Unliking a post not liked does nothing.",
    args: { input: t.arg({ type: LikeInput, required: true }) },
    errors: { types: [NotFoundError], dataField: { name: "post" } },
    resolve: async (_root, { input }, context) => likedPost(await unlikePost(context.actor!, input.postId.id), context),
  }),
}));
