import { builder } from "../../schema/builder.ts";
import { NotFoundError } from "../errors.ts";
import type { Context } from "../http/context.ts";
import { type FollowOutcome, follow, unfollow } from "../services/follows.ts";
import { UserRef } from "./users.ts";

const FollowInput = builder.inputType("FollowInput", {
  fields: (t) => ({ userId: t.globalID({ required: true, for: UserRef }) }),
});

/**
 * The person as the change left them: the rest of the operation reads them (and the follow) from here. (The write
 * made the request's loaders forget both: these are what it left.)
 */
function followed({ user, following }: FollowOutcome, context: Context) {
  context.loaders.user.prime(user.id, user);
  context.loaders.viewerIsFollowing.prime(user.id, following);
  return user;
}

builder.mutationFields((t) => ({
  follow: t.field({
    type: UserRef,
    description: "Follows someone: their posts join your feed. Following twice is the same as once.",
    args: { input: t.arg({ type: FollowInput, required: true }) },
    errors: { types: [NotFoundError], dataField: { name: "user" } },
    resolve: async (_root, { input }, context) => followed(await follow(context.actor!, input.userId.id), context),
  }),
  unfollow: t.field({
    type: UserRef,
    description: "Stops following someone. Unfollowing someone not followed does nothing.",
    args: { input: t.arg({ type: FollowInput, required: true }) },
    errors: { types: [NotFoundError], dataField: { name: "user" } },
    resolve: async (_root, { input }, context) => followed(await unfollow(context.actor!, input.userId.id), context),
  }),
}));
