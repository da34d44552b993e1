import { builder } from "../../schema/builder.ts";
import type { MediaRecord } from "../loaders/media.ts";
import { photoUrl } from "../storage.ts";

export const PhotoRef = builder.objectRef<MediaRecord>("Photo");

/** The media if it may be shown (verified and READY), else null. */
export function readyMedia(media: MediaRecord | null | undefined): MediaRecord | null {
  return media?.status === "READY" ? media : null;
}

const PhotoStatus = builder.enumType("PhotoStatus", {
  values: {
    PENDING: { description: "Upload URL handed out; the file has not been verified yet." },
    READY: { description: "Verified and usable in posts and as an avatar." },
  },
});

builder.node(PhotoRef, {
  description: "An uploaded image. Others only ever see READY photos.",
  id: { resolve: (media) => media.id },
  loadMany: (ids, context) =>
    ids.map(async (id) => {
      const media = await context.loaders.media.load(id);
      return media && (media.status === "READY" || media.ownerId === context.viewer?.id) ? media : null;
    }),
  fields: (t) => ({
    status: t.field({ type: PhotoStatus, resolve: (media) => media.status }),
    url: t.string({
      nullable: true,
      description: "Where to load the image from; null until the photo is READY. Stable for about an hour.",
      resolve: (media) => (media.status === "READY" ? photoUrl(media.storageKey) : null),
    }),
    width: t.exposeInt("width", { nullable: true }),
    height: t.exposeInt("height", { nullable: true }),
    contentType: t.exposeString("contentType"),
    byteSize: t.exposeInt("byteSize"),
  }),
});
