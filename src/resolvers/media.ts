import * as z from "zod/mini";
import { builder } from "../../schema/builder.ts";
import { ForbiddenError, NotFoundError } from "../errors.ts";
import type { MediaRecord } from "../loaders/media.ts";
import { photoUrl } from "../platform/storage.ts";
import {
  completeUpload,
  isPhotoType,
  PHOTO_TYPES,
  type PhotoType,
  QuotaExceededError,
  startUpload,
  UploadError,
  type UploadTarget,
} from "../services/media.ts";
import { ErrorInterface } from "./errors.ts";

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
    purpose: t.field({ type: PhotoPurposeEnum, resolve: (media) => media.purpose }),
  }),
});

const PhotoPurposeEnum = builder.enumType("PhotoPurpose", {
  values: {
    POST_PHOTO: { description: "A photo for a post." },
    AVATAR: { description: "A profile picture." },
  },
});

const HttpHeaderRef = builder.objectRef<{ name: string; value: string }>("HttpHeader").implement({
  fields: (t) => ({ name: t.exposeString("name"), value: t.exposeString("value") }),
});

const UploadTargetRef = builder.objectRef<UploadTarget>("UploadTarget").implement({
  description: "Where and how to send the file: straight to object storage, never through the API.",
  fields: (t) => ({
    url: t.exposeString("url"),
    method: t.exposeString("method"),
    headers: t.field({
      type: [HttpHeaderRef],
      description: "Send exactly these headers with the PUT: they are part of the signature.",
      extensions: { maxItems: 3 },
      resolve: (target) => target.headers,
    }),
    expiresAt: t.expose("expiresAt", { type: "DateTime" }),
  }),
});

const UploadErrorProblem = builder.enumType("UploadProblem", {
  values: ["NOT_RECEIVED", "EXPIRED", "SIZE_MISMATCH", "TYPE_MISMATCH", "NOT_AN_IMAGE"] as const,
});

builder.objectType(UploadError, {
  name: "UploadError",
  interfaces: [ErrorInterface],
  description: "The uploaded file can't be used. Unless it is NOT_RECEIVED, start a new upload.",
  isTypeOf: (value) => value instanceof UploadError,
  fields: (t) => ({ problem: t.field({ type: UploadErrorProblem, resolve: (error) => error.problem }) }),
});

builder.objectType(QuotaExceededError, {
  name: "QuotaExceededError",
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof QuotaExceededError,
});

const CreateUploadInput = builder.inputType("CreateUploadInput", {
  fields: (t) => ({
    contentType: t.string({
      required: true,
      description: "image/jpeg, image/png, image/webp or image/heic.",
      validate: z
        .string()
        .check(
          z.refine(isPhotoType, `Upload a JPEG, PNG, WebP or HEIC image (${Object.keys(PHOTO_TYPES).join(", ")}).`),
        ),
    }),
    byteSize: t.int({ required: true, description: "The file's exact size in bytes." }),
    purpose: t.field({ type: PhotoPurposeEnum, required: true }),
  }),
});

const CreateUploadSuccess = builder
  .objectRef<{ media: MediaRecord; upload: UploadTarget }>("CreateUploadSuccess")
  .implement({
    fields: (t) => ({
      photo: t.field({ type: PhotoRef, description: "PENDING until the file is verified.", resolve: (r) => r.media }),
      upload: t.field({ type: UploadTargetRef, resolve: (r) => r.upload }),
    }),
  });

builder.mutationField("createUpload", (t) =>
  t.field({
    type: CreateUploadSuccess,
    description:
      "Starts a photo upload: PUT the file to the returned URL with its headers, then use the photo in createPost or " +
      "updateProfile (or call completeUpload to check it first).",
    args: { input: t.arg({ type: CreateUploadInput, required: true }) },
    errors: { types: [QuotaExceededError], directResult: true },
    resolve: (_root, { input }, context) =>
      startUpload(context.viewer!, {
        contentType: input.contentType as PhotoType,
        byteSize: input.byteSize,
        purpose: input.purpose,
      }),
  }),
);

const CompleteUploadInput = builder.inputType("CompleteUploadInput", {
  fields: (t) => ({ photoId: t.globalID({ required: true, for: PhotoRef }) }),
});

builder.mutationField("completeUpload", (t) =>
  t.field({
    type: PhotoRef,
    description: "Verifies an uploaded file and makes the photo READY (createPost and updateProfile do it too).",
    args: { input: t.arg({ type: CompleteUploadInput, required: true }) },
    errors: { types: [NotFoundError, ForbiddenError, UploadError], dataField: { name: "photo" } },
    resolve: async (_root, { input }, context) => {
      const ready = await completeUpload(context.viewer!, input.photoId.id);
      context.loaders.media.clear(ready.id).prime(ready.id, ready);
      return ready;
    },
  }),
);
