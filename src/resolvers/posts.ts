import { encodeGlobalID } from "@pothos/plugin-relay";
import { builder } from "../../schema/builder.ts";
import { byCreation, type ConnectionArgs, type CursorKey, type PageRequest, paginate } from "../domain/pagination.ts";
import { captionRule, LIMITS } from "../domain/validation.ts";
import { ConflictError, ForbiddenError, NotFoundError } from "../errors.ts";
import type { Context } from "../http/context.ts";
import { primed } from "../loaders/index.ts";
import {
  authorPostsPage,
  exploreFirstPageRanking,
  explorePage,
  feedPage,
  isVisibleTo,
  type PostRecord,
  type Ranked,
  rankOf,
} from "../loaders/posts.ts";
import { createPost, deletePost } from "../services/posts.ts";
import { UploadError } from "../services/uploads.ts";
import { PhotoRef } from "./photos.ts";
import { UserRef } from "./users.ts";

export const PostRef = builder.objectRef<PostRecord>("Post");

export const PostConnection = builder.connectionObject({ type: PostRef, name: "PostConnection" });

/** A user's posts; the first page comes through a loader, so a list of users batches into one statement. */
function postsOfAuthor(authorId: string, args: ConnectionArgs, context: Context) {
  return paginate<PostRecord>(
    args,
    (page) =>
      page.after || page.before || page.inverted
        ? authorPostsPage(authorId, page).then((rows) => primed(context.loaders.post, rows))
        : context.loaders.firstPostsByAuthor.load({ parentId: authorId, limit: page.limit }),
    byCreation,
  );
}

builder.node(PostRef, {
  description: "A post: one to ten photos and a caption.",
  id: { resolve: (post) => post.id },
  loadMany: (ids, context) =>
    ids.map(async (id) => {
      const post = await context.loaders.post.load(id);
      return post && isVisibleTo(post, context.viewer?.id) ? post : null;
    }),
  fields: (t) => ({
    author: t.field({
      type: UserRef,
      resolve: async (post, _args, context) => {
        const author = await context.loaders.user.load(post.authorId);
        if (!author) throw new NotFoundError("The author of this post no longer exists.");
        return author;
      },
    }),
    caption: t.exposeString("caption"),
    published: t.exposeBoolean("published", {
      description: "False while its photos are being processed: until then only its author sees it (not in any list).",
    }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    photos: t.field({
      type: [PhotoRef],
      description: "In the order the author chose.",
      extensions: { maxItems: LIMITS.photos.max },
      resolve: (post, _args, context) => context.loaders.photosByPost.load(post.id),
    }),
    likeCount: t.exposeInt("likeCount"),
    commentCount: t.exposeInt("commentCount"),
    viewerHasLiked: t.boolean({
      extensions: { personal: true },
      description: "Whether the signed-in viewer likes this post (false when signed out).",
      resolve: (post, _args, context) => (context.viewer ? context.loaders.viewerHasLiked.load(post.id) : false),
    }),
  }),
});

builder.queryFields((t) => ({
  post: t.field({
    type: PostRef,
    nullable: true,
    args: { id: t.arg.globalID({ required: true, for: PostRef }) },
    description: "A post by id; one whose photos are still being processed is its author's alone.",
    resolve: async (_root, args, context) => {
      const post = await context.loaders.post.load(args.id.id);
      return post && isVisibleTo(post, context.viewer?.id) ? post : null;
    },
  }),
  feed: t.connection(
    {
      extensions: { personal: true },
      type: PostRef,
      description: "Posts by the people the viewer follows, and their own, newest first.",
      authScopes: { viewer: true },
      resolve: (_root, args, context) =>
        paginate<PostRecord>(
          args,
          (page) => feedPage(context.viewer!.id, page).then((rows) => primed(context.loaders.post, rows)),
          byCreation,
        ),
    },
    PostConnection,
  ),
  explore: t.connection(
    {
      type: PostRef,
      description: "Recent posts, most liked first. The same for everyone.",
      resolve: (_root, args, context) => {
        // Cursors place a post by its rank (likes when ranked), not by its live like count.
        const ranks = new Map<string, CursorKey>();
        return paginate(
          args,
          async (page) => {
            const ranked = await exploreRanking(page, context);
            for (const r of ranked) ranks.set(r.id, [r.likeCount, r.createdAt.getTime(), r.id]);
            const posts = await context.loaders.post.loadMany(ranked.map((r) => r.id));
            // A post deleted since the ranking was cached drops out.
            return posts.filter((post): post is PostRecord => post !== null && !(post instanceof Error));
          },
          {
            key: (post) => ranks.get(post.id) ?? [post.likeCount, post.createdAt.getTime(), post.id],
            parts: ["count", "time", "uuid"],
          },
        );
      },
    },
    PostConnection,
  ),
}));

/** The posts of an explore page in rank order: the first page's ranking is shared (see exploreFirstPageRanking). */
async function exploreRanking(page: PageRequest, context: Context): Promise<Ranked[]> {
  if (page.after || page.before || page.inverted) return rankOf(primed(context.loaders.post, await explorePage(page)));
  return exploreFirstPageRanking(page);
}

const CreatePostInput = builder.inputType("CreatePostInput", {
  fields: (t) => ({
    caption: t.string({ required: false }).validate(captionRule),
    photoIds: t.globalIDList({
      required: true,
      for: PhotoRef,
      description: `${LIMITS.photos.min} to ${LIMITS.photos.max} of your READY photos, in display order.`,
      extensions: { maxItems: LIMITS.photos.max },
    }),
  }),
});

builder.mutationField("createPost", (t) =>
  t.field({
    type: PostRef,
    args: { input: t.arg({ type: CreatePostInput, required: true }) },
    errors: { types: [NotFoundError, ForbiddenError, ConflictError, UploadError], dataField: { name: "post" } },
    resolve: async (_root, { input }, context) => {
      const { post, photos } = await createPost(context.actor!, {
        caption: input.caption,
        photoIds: input.photoIds.map((id) => id.id),
      });
      context.loaders.photosByPost.prime(post.id, photos);
      return post;
    },
  }),
);

const DeletePostInput = builder.inputType("DeletePostInput", {
  fields: (t) => ({ postId: t.globalID({ required: true, for: PostRef }) }),
});

builder.mutationField("deletePost", (t) =>
  t.field({
    type: "ID",
    args: { input: t.arg({ type: DeletePostInput, required: true }) },
    errors: { types: [NotFoundError, ForbiddenError], dataField: { name: "deletedPostId" } },
    resolve: async (_root, { input }, context) =>
      encodeGlobalID("Post", await deletePost(context.actor!, input.postId.id)),
  }),
);

// A user's posts are added from here, the module that owns posts: users.ts need not know about posts (Pothos's
// patterns guide), so the two modules import in one direction only.
builder.objectFields(UserRef, (t) => ({
  posts: t.connection(
    {
      type: PostRef,
      description: "Newest first.",
      resolve: (user, args, context) => postsOfAuthor(user.id, args, context),
    },
    PostConnection,
  ),
}));
