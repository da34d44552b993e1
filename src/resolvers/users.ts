import { builder } from "../../schema/builder.ts";
import { type Ordering, paginate } from "../domain/pagination.ts";
import { bioRule, displayNameRule, handleRule, searchPrefixRule } from "../domain/validation.ts";
import { ConflictError, ForbiddenError, NotFoundError } from "../errors.ts";
import type { Viewer } from "../http/context.ts";
import { primed } from "../loaders/index.ts";
import { emailOf, followPage, handleSearchPage, type UserRecord } from "../loaders/users.ts";
import { updateProfile } from "../services/profile.ts";
import { UploadError } from "../services/uploads.ts";
import { PhotoRef, readyPhoto } from "./photos.ts";

export const UserRef = builder.objectRef<UserRecord>("User");

export const UserConnection = builder.connectionObject({ type: UserRef, name: "UserConnection" });

/** Place of a user in a follow list: when the follow happened, then who. */
const byFollow: Ordering<UserRecord & { followedAt: Date }> = {
  key: (user) => [user.followedAt.getTime(), user.id],
  parts: ["time", "uuid"],
};

builder.node(UserRef, {
  description: "A person on Shutter. Everything here is public.",
  id: { resolve: (user) => user.id },
  loadMany: (ids, context) => ids.map((id) => context.loaders.user.load(id)),
  fields: (t) => ({
    handle: t.exposeString("handle"),
    displayName: t.exposeString("displayName"),
    bio: t.exposeString("bio"),
    avatar: t.field({
      type: PhotoRef,
      nullable: true,
      resolve: async (user, _args, context) =>
        user.avatarId ? readyPhoto(await context.loaders.photo.load(user.avatarId)) : null,
    }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    followerCount: t.exposeInt("followerCount"),
    followingCount: t.exposeInt("followingCount"),
    postCount: t.exposeInt("postCount"),
    viewerIsFollowing: t.boolean({
      extensions: { personal: true },
      description: "Whether the signed-in viewer follows this user (false when signed out).",
      resolve: (user, _args, context) => (context.viewer ? context.loaders.viewerIsFollowing.load(user.id) : false),
    }),
    followers: t.connection(
      {
        type: UserRef,
        description: "Newest followers first.",
        resolve: (user, args, context) =>
          paginate(
            args,
            (page) => followPage(user.id, "followers", page).then((rows) => primed(context.loaders.user, rows)),
            byFollow,
          ),
      },
      UserConnection,
    ),
    following: t.connection(
      {
        type: UserRef,
        description: "Most recently followed first.",
        resolve: (user, args, context) =>
          paginate(
            args,
            (page) => followPage(user.id, "following", page).then((rows) => primed(context.loaders.user, rows)),
            byFollow,
          ),
      },
      UserConnection,
    ),
  }),
});

export const ViewerRef = builder.objectRef<Viewer>("Viewer").implement({
  extensions: { personal: true },
  description: "The signed-in person and what only they may see.",
  fields: (t) => ({
    user: t.field({
      type: UserRef,
      resolve: async (viewer, _args, context) => {
        const user = await context.loaders.user.load(viewer.id);
        if (!user) throw new NotFoundError("Your account no longer exists.");
        return user;
      },
    }),
    email: t.string({ resolve: (viewer) => emailOf(viewer.id) }),
  }),
});

builder.queryFields((t) => ({
  viewer: t.field({
    extensions: { personal: true },
    type: ViewerRef,
    nullable: true,
    description: "The signed-in person, or null when nobody is signed in.",
    resolve: (_root, _args, context) => context.viewer,
  }),
  user: t.field({
    type: UserRef,
    nullable: true,
    args: { handle: t.arg.string({ required: true }).validate(handleRule) },
    resolve: (_root, args, context) => context.loaders.userByHandle.load(args.handle),
  }),
  searchUsers: t.connection(
    {
      type: UserRef,
      description: "Users whose handle starts with the prefix, alphabetically.",
      args: { prefix: t.arg.string({ required: true }).validate(searchPrefixRule) },
      resolve: (_root, args, context) =>
        paginate(
          args,
          (page) => handleSearchPage(args.prefix, page).then((rows) => primed(context.loaders.user, rows)),
          {
            key: (user) => [user.handle],
            parts: ["handle"],
          },
        ),
    },
    UserConnection,
  ),
}));

const UpdateProfileInput = builder.inputType("UpdateProfileInput", {
  fields: (t) => ({
    displayName: t.string().validate(displayNameRule),
    bio: t.string().validate(bioRule),
    avatarPhotoId: t.globalID({
      for: PhotoRef,
      description: "An avatar upload of yours (verified now if it is still PENDING). Null removes the avatar.",
    }),
  }),
});

builder.mutationField("updateProfile", (t) =>
  t.field({
    type: UserRef,
    description: "Changes the viewer's public profile. Only the fields given change.",
    args: { input: t.arg({ type: UpdateProfileInput, required: true }) },
    errors: { types: [NotFoundError, ForbiddenError, ConflictError, UploadError], dataField: { name: "user" } },
    resolve: async (_root, { input }, context) => {
      const { user, avatar } = await updateProfile(context.actor!, {
        displayName: input.displayName,
        bio: input.bio,
        avatarPhotoId: input.avatarPhotoId === null ? null : input.avatarPhotoId?.id,
      });
      if (avatar) context.loaders.photo.prime(avatar.id, avatar);
      context.loaders.user.prime(user.id, user);
      return user;
    },
  }),
);
