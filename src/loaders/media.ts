import { defineEntity, loadThroughCache } from "../caching/entities.ts";
import type { Media } from "../generated/prisma/client.ts";
import { db } from "../platform/db.ts";

export type MediaRecord = Media;

const MEDIA_FIELDS = [
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
] as const satisfies readonly (keyof MediaRecord)[];

export const mediaEntity = defineEntity({
  name: "media",
  table: "media",
  loader: "media",
  parts: { media: { ttlSeconds: 600, fields: MEDIA_FIELDS } },
  load: (ids): Promise<MediaRecord[]> => db().media.findMany({ where: { id: { in: ids } } }),
});

export function mediaById(ids: readonly string[]): Promise<(MediaRecord | null)[]> {
  return loadThroughCache(mediaEntity, ids);
}

/**
 * A post's photos, in order. They are fixed when the post is created and go when it is deleted (the images
 * function changes their status, and declares it: see services/images.ts).
 */
export const postPhotosEntity = defineEntity<{ id: string; photos: MediaRecord[] }, "post-photos">({
  name: "post-photos",
  table: "media",
  loader: "photosByPost",
  parts: { "post-photos": { ttlSeconds: 600, fields: ["photos"] } },
  load: async (postIds) => {
    const rows = await db().media.findMany({
      where: { postId: { in: postIds } },
      orderBy: [{ postId: "asc" }, { position: "asc" }],
    });
    return postIds.map((id) => ({ id, photos: rows.filter((row) => row.postId === id) }));
  },
});

/** The photos of each post, in their order. */
export async function photosByPost(postIds: readonly string[]): Promise<MediaRecord[][]> {
  return (await loadThroughCache(postPhotosEntity, postIds)).map((entry) => entry?.photos ?? []);
}
