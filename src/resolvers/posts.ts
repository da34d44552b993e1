import { encodeGlobalID } from "@pothos/plugin-relay";
import { builder, type Context } from "../../schema/builder.ts";
import { byCreation, type ConnectionArgs, type CursorKey, type PageRequest, paginate } from "../domain/pagination.ts";
import { captionRule, LIMITS } from "../domain/validation.ts";
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from "../errors.ts";
import { recordEvent } from "../events/outbox.ts";
import { primed } from "../loaders/index.ts";
import type { MediaRecord } from "../loaders/media.ts";
import { authorPostsPage, explorePage, feedPage, type PostRecord } from "../loaders/posts.ts";
import { cachedValue, invalidate } from "../platform/cache.ts";
import { db } from "../platform/db.ts";
import { logger } from "../platform/logger.ts";
import { deleteObjects } from "../platform/storage.ts";
import { UploadError, verifyUpload } from "../services/media.ts";
import { PhotoRef } from "./media.ts";
import { UserRef } from "./users.ts";

export const PostRef = builder.objectRef<PostRecord>("Post");

export const PostConnection = builder.connectionObject({ type: PostRef, name: "PostConnection" });

/** A user's posts; the first page comes through a loader, so a list of users batches into one statement. */
export function postsOfAuthor(authorId: string, args: ConnectionArgs, context: Context) {
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
  loadMany: (ids, context) => ids.map((id) => context.loaders.post.load(id)),
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
    resolve: (_root, args, context) => context.loaders.post.load(args.id.id),
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

/** How long everyone shares the first explore page's ranking; the posts' counters are never older than a write. */
const EXPLORE_TTL_SECONDS = 15;

type Ranked = Pick<PostRecord, "id" | "likeCount" | "createdAt">;

/**
 * The posts of an explore page in rank order. The first page's ranking is computed once and shared, and its
 * posts then come through the entity cache (not primed from the ranking query), so every later request for it
 * is served without touching PostgreSQL.
 */
async function exploreRanking(page: PageRequest, context: Context): Promise<Ranked[]> {
  const rank = (rows: PostRecord[]): Ranked[] =>
    rows.map(({ id, likeCount, createdAt }) => ({ id, likeCount, createdAt }));
  if (page.after || page.before || page.inverted) return rank(primed(context.loaders.post, await explorePage(page)));
  return cachedValue(`explore:first:${page.limit}`, EXPLORE_TTL_SECONDS, async () => rank(await explorePage(page)));
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
      const viewerId = context.viewer!.id;
      const photoIds = input.photoIds.map((id) => id.id);
      if (photoIds.length < LIMITS.photos.min || photoIds.length > LIMITS.photos.max) {
        throw ValidationError.field(
          ["input", "photoIds"],
          `A post has ${LIMITS.photos.min} to ${LIMITS.photos.max} photos; you sent ${photoIds.length}.`,
        );
      }
      if (new Set(photoIds).size !== photoIds.length) {
        throw ValidationError.field(["input", "photoIds"], "Each photo can appear only once in a post.");
      }
      const found = await context.loaders.media.loadMany(photoIds);
      for (const media of found) {
        if (!media || media instanceof Error) throw new NotFoundError("One of those photos doesn't exist.");
        if (media.ownerId !== viewerId) throw new ForbiddenError("You can only post your own photos.");
        if (media.purpose !== "POST_PHOTO") throw new ConflictError("That photo was uploaded as an avatar.");
      }
      // Uploads not verified yet are checked now (what arrived in storage, before anyone sees it).
      for (const ready of await Promise.all(found.map((media) => verifyUpload(media as MediaRecord)))) {
        context.loaders.media.clear(ready.id).prime(ready.id, ready);
      }
      const created = await db().$transaction(async (tx) => {
        // Lock the photos, then re-check what another request could have changed since they were loaded.
        const locked = await tx.$queryRaw<{ id: string; status: string; post_id: string | null }[]>`
          SELECT id, status, post_id FROM media WHERE id = ANY(${photoIds}::uuid[]) FOR UPDATE`;
        if (locked.length !== photoIds.length) throw new NotFoundError("One of those photos doesn't exist.");
        if (locked.some((m) => m.status !== "READY")) throw new ConflictError("A photo hasn't finished uploading yet.");
        if (locked.some((m) => m.post_id !== null)) throw new ConflictError("A photo is already part of a post.");
        const post = await tx.post.create({ data: { authorId: viewerId, caption: input.caption ?? "" } });
        await tx.$executeRaw`
          UPDATE media SET post_id = ${post.id}::uuid, position = v.ord - 1
          FROM unnest(${photoIds}::uuid[]) WITH ORDINALITY AS v(id, ord) WHERE media.id = v.id`;
        await tx.user.update({ where: { id: viewerId }, data: { postCount: { increment: 1 } } });
        await recordEvent(tx, "post.created", null, { postId: post.id, actorId: viewerId });
        return post;
      });
      await invalidate(
        ["user-counts", viewerId],
        ["post-photos", created.id],
        ...photoIds.map((id): [string, string] => ["media", id]),
      );
      context.loaders.user.clear(viewerId);
      for (const id of photoIds) context.loaders.media.clear(id);
      return created;
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
    resolve: async (_root, { input }, context) => {
      const post = await context.loaders.post.load(input.postId.id);
      if (!post) throw new NotFoundError("That post doesn't exist.");
      if (post.authorId !== context.viewer!.id) throw new ForbiddenError("Only its author can delete a post.");
      const photos = await db().$transaction(async (tx) => {
        const photos = await tx.media.findMany({ where: { postId: post.id }, select: { id: true, storageKey: true } });
        // Counted only if this request is the one that deleted it (two deletes may race).
        const deleted = await tx.post.deleteMany({ where: { id: post.id } });
        if (deleted.count === 0) throw new NotFoundError("That post doesn't exist.");
        await tx.user.update({ where: { id: post.authorId }, data: { postCount: { decrement: 1 } } });
        return photos;
      });
      await invalidate(
        ["post", post.id],
        ["post-counts", post.id],
        ["post-photos", post.id],
        ["user-counts", post.authorId],
        ...photos.map((photo): [string, string] => ["media", photo.id]),
      );
      const keys = photos.map((photo) => photo.storageKey);
      context.loaders.post.clear(post.id);
      context.loaders.user.clear(post.authorId);
      // After commit: the rows are gone either way; an object left behind is logged for cleanup, not an error.
      await deleteObjects(keys).catch((error) =>
        logger().error({ err: error, keys }, "could not delete the photos of a deleted post"),
      );
      return encodeGlobalID("Post", post.id);
    },
  }),
);
