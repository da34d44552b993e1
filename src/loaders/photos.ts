import { defineEntity, loadThroughCache } from "../caching/entities.ts";
import type { Photo } from "../generated/prisma/client.ts";
import { db } from "../platform/db.ts";

export type PhotoRecord = Photo;

const PHOTO_FIELDS = [
  "id",
  "ownerId",
  "purpose",
  "storageKey",
  "contentType",
  "byteSize",
  "width",
  "height",
  "status",
  "variants",
  "placeholder",
  "color",
  "failure",
  "postId",
  "position",
  "createdAt",
] as const satisfies readonly (keyof PhotoRecord)[];

export const photoEntity = defineEntity({
  name: "photo",
  table: "media",
  loader: "photo",
  parts: { photo: { ttlSeconds: 600, fields: PHOTO_FIELDS } },
  load: (ids): Promise<PhotoRecord[]> => db().photo.findMany({ where: { id: { in: ids } } }),
});

export function photosById(ids: readonly string[]): Promise<(PhotoRecord | null)[]> {
  return loadThroughCache(photoEntity, ids);
}

/**
 * A post's photos, in order. They are fixed when the post is created and go when it is deleted (the images
 * function changes their status, and declares it: see services/images.ts).
 */
export const postPhotosEntity = defineEntity<{ id: string; photos: PhotoRecord[] }, "post-photos">({
  name: "post-photos",
  table: "media",
  loader: "photosByPost",
  parts: { "post-photos": { ttlSeconds: 600, fields: ["photos"] } },
  load: async (postIds) => {
    const rows = await db().photo.findMany({
      where: { postId: { in: postIds } },
      orderBy: [{ postId: "asc" }, { position: "asc" }],
    });
    return postIds.map((id) => ({ id, photos: rows.filter((row) => row.postId === id) }));
  },
});

/** The photos of each post, in their order. */
export async function photosByPost(postIds: readonly string[]): Promise<PhotoRecord[][]> {
  return (await loadThroughCache(postPhotosEntity, postIds)).map((entry) => entry?.photos ?? []);
}
