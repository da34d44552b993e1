import { LIMITS } from "../domain/validation.ts";
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from "../errors.ts";
import { objectKeys } from "../images/variants.ts";
import { one } from "../loaders/batch.ts";
import { firstCommentsChanged } from "../loaders/comments.ts";
import { type PhotoRecord, photoEntity, photosById, postPhotosEntity } from "../loaders/photos.ts";
import { type PostRecord, postEntity, postsById } from "../loaders/posts.ts";
import { userEntity } from "../loaders/users.ts";
import { logger } from "../platform/logger.ts";
import { deleteObjects } from "../platform/storage.ts";
import { verifyUpload } from "./uploads.ts";
import { type SignedIn, type UnitOfWork, write } from "./write.ts";

/**
 * Publishes a post: one to ten of the viewer's own post photos (uploads not verified yet are verified now, before
 * anyone sees them), in the order given, with a caption (validated at the input).
 * @throws ValidationError, NotFoundError, ForbiddenError, ConflictError, UploadError
 */
export async function createPost(
  actor: SignedIn,
  input: { caption?: string | null; photoIds: string[] },
): Promise<{ post: PostRecord; photos: PhotoRecord[] }> {
  const { viewer } = actor;
  const { photoIds } = input;
  if (photoIds.length < LIMITS.photos.min || photoIds.length > LIMITS.photos.max) {
    throw ValidationError.field(
      ["input", "photoIds"],
      `A post has ${LIMITS.photos.min} to ${LIMITS.photos.max} photos; you sent ${photoIds.length}.`,
    );
  }
  if (new Set(photoIds).size !== photoIds.length) {
    throw ValidationError.field(["input", "photoIds"], "Each photo can appear only once in a post.");
  }
  const found = await photosById(photoIds);
  for (const photo of found) {
    if (!photo) throw new NotFoundError("One of those photos doesn't exist.");
    if (photo.ownerId !== viewer.id) throw new ForbiddenError("You can only post your own photos.");
    if (photo.purpose !== "POST_PHOTO") throw new ConflictError("That photo was uploaded as an avatar.");
  }
  const photos = await Promise.all(found.map((photo) => verifyUpload(actor, photo as PhotoRecord)));
  const post = await write(actor, async (w) => {
    const { tx } = w;
    // Lock the photos, then re-check what another request could have changed since they were loaded. The images
    // function locks a photo before its post too: whichever commits second sees the other's work.
    const locked = await tx.$queryRaw<{ id: string; status: string; post_id: string | null }[]>`
      SELECT id, status, post_id FROM media WHERE id = ANY(${photoIds}::uuid[]) FOR UPDATE`;
    if (locked.length !== photoIds.length) throw new NotFoundError("One of those photos doesn't exist.");
    if (locked.some((m) => m.status === "FAILED")) {
      throw new ConflictError("A photo couldn't be processed: choose another one.");
    }
    if (locked.some((m) => m.status === "PENDING")) throw new ConflictError("A photo hasn't finished uploading yet.");
    if (locked.some((m) => m.post_id !== null)) throw new ConflictError("A photo is already part of a post.");
    // Published now if every photo already has its variants; otherwise by the images function, once they do
    // (until then only its author sees it).
    const published = locked.every((m) => m.status === "READY");
    const post = await tx.post.create({ data: { authorId: viewer.id, caption: input.caption ?? "", published } });
    await tx.$executeRaw`
      UPDATE media SET post_id = ${post.id}::uuid, position = v.ord - 1
      FROM unnest(${photoIds}::uuid[]) WITH ORDINALITY AS v(id, ord) WHERE media.id = v.id`;
    w.changed(
      postPhotosEntity.changed(post.id),
      photoIds.map((id) => photoEntity.changed(id)),
    );
    if (published) await publishedPost(w, post);
    return post;
  });
  return { post, photos: photos.map((photo, position) => ({ ...photo, postId: post.id, position })) };
}

/**
 * What publishing a post changes, in its write: its author's post count, the event others consume, and its followers'
 * timelines.
 */
export async function publishedPost(
  { tx, event, changed, published }: UnitOfWork,
  post: { id: string; authorId: string },
) {
  await tx.user.update({ where: { id: post.authorId }, data: { postCount: { increment: 1 } } });
  await event("post.created", null, { postId: post.id, actorId: post.authorId });
  changed(userEntity.changed(post.authorId, "user-counts"));
  published(post.id);
}

/**
 * Deletes one of the viewer's posts, its photos' records with it (foreign key cascade) and, after the commit,
 * their objects. @returns the id of the deleted post. @throws NotFoundError, ForbiddenError
 */
export async function deletePost(actor: SignedIn, postId: string): Promise<string> {
  const post = await one(postsById, postId);
  if (!post) throw new NotFoundError("That post doesn't exist.");
  if (post.authorId !== actor.viewer.id) throw new ForbiddenError("Only its author can delete a post.");
  const photos = await write(actor, async ({ tx, changed }) => {
    const photos = await tx.photo.findMany({
      where: { postId: post.id },
      select: { id: true, ownerId: true, storageKey: true, variants: true },
    });
    // Counted only if this request is the one that deleted it (two deletes may race), and if it was published.
    const [deleted] = await tx.$queryRaw<{ published: boolean }[]>`
      DELETE FROM posts WHERE id = ${post.id}::uuid RETURNING published`;
    if (!deleted) throw new NotFoundError("That post doesn't exist.");
    if (deleted.published) {
      await tx.user.update({ where: { id: post.authorId }, data: { postCount: { decrement: 1 } } });
    }
    changed(
      postEntity.changed(post.id),
      postPhotosEntity.changed(post.id),
      userEntity.changed(post.authorId, "user-counts"),
      photos.map((photo) => photoEntity.changed(photo.id)),
      // Its comments went with it (foreign key cascade).
      firstCommentsChanged(post.id),
    );
    return photos;
  });
  const keys = photos.flatMap(objectKeys);
  // After commit: the rows are gone either way; an object left behind is logged for cleanup, not an error.
  await deleteObjects(keys).catch((error) =>
    logger().error({ err: error, keys }, "could not delete the photos of a deleted post"),
  );
  return post.id;
}
