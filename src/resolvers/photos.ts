import * as z from "zod/mini";
import { builder } from "../../schema/builder.ts";
import { ForbiddenError, NotFoundError } from "../errors.ts";
import {
  FAILURE_MESSAGES,
  LADDERS,
  MAX_PIXELS,
  type PhotoFailure,
  pickVariant,
  type Variant,
  variantKey,
  variantsOf,
} from "../images/variants.ts";
import type { PhotoRecord } from "../loaders/photos.ts";
import { config } from "../platform/config.ts";
import { photoUrl, presignedGet } from "../platform/storage.ts";
import {
  completeUpload,
  isPhotoType,
  PHOTO_TYPES,
  type PhotoType,
  QuotaExceededError,
  startUpload,
  UploadError,
  type UploadTarget,
} from "../services/uploads.ts";
import { ErrorInterface } from "./errors.ts";

export const PhotoRef = builder.objectRef<PhotoRecord>("Photo");

/** The photo if it may be shown (verified and READY), else null. */
export function readyPhoto(photo: PhotoRecord | null | undefined): PhotoRecord | null {
  return photo?.status === "READY" ? photo : null;
}

const PhotoStatus = builder.enumType("PhotoStatus", {
  values: {
    PENDING: { description: "Upload URL handed out; the file has not been verified yet." },
    PROCESSING: {
      description: "Verified and usable in a post or as an avatar; its variants are being made (a second or two).",
    },
    READY: { description: "Its variants exist: shown to everyone who can see what it is part of." },
    FAILED: { description: "The file could not be made into a photo: `failure` says why. Upload it again." },
  },
});

const ImageFormatEnum = builder.enumType("ImageFormat", {
  description: "Formats every variant exists in. AVIF is the smallest; JPEG is what every client decodes.",
  values: {
    AVIF: { value: "avif" },
    WEBP: { value: "webp" },
    JPEG: { value: "jpeg" },
  } as const,
});

const PhotoFailureReason = builder.enumType("PhotoFailureReason", {
  values: {
    UNREADABLE: { description: "The file is damaged, truncated or not an image." },
    TOO_LARGE: { description: `The image has more than ${MAX_PIXELS / 1e6} megapixels.` },
    PROCESSING_FAILED: { description: "Processing kept failing for reasons of ours." },
  },
});

const PhotoFailureRef = builder.objectRef<PhotoFailure>("PhotoFailure").implement({
  description: "Why a photo FAILED, for its owner.",
  fields: (t) => ({
    reason: t.field({ type: PhotoFailureReason, resolve: (failure) => failure }),
    message: t.string({ resolve: (failure) => FAILURE_MESSAGES[failure] }),
  }),
});

const PhotoVariantRef = builder.objectRef<{ photo: PhotoRecord; variant: Variant }>("PhotoVariant").implement({
  description: "One size of a photo in one format, for `srcset` / `<picture>`.",
  fields: (t) => ({
    width: t.int({ resolve: ({ variant }) => variant.width }),
    height: t.int({ resolve: ({ variant }) => variant.height }),
    format: t.field({ type: ImageFormatEnum, resolve: ({ variant }) => variant.format }),
    byteSize: t.int({ resolve: ({ variant }) => variant.bytes }),
    url: t.string({ resolve: ({ photo, variant }) => photoUrl(variantKey(photo, variant)) }),
  }),
});

/** Widths a client may ask for: a screen's width in device pixels, at most. */
const WIDTH = { min: 1, max: 8192 };

builder.node(PhotoRef, {
  description:
    "An uploaded image. Others only ever see READY photos, and only their variants: the original (with whatever " +
    "metadata the camera wrote) stays private to its owner.",
  id: { resolve: (photo) => photo.id },
  loadMany: (ids, context) =>
    ids.map(async (id) => {
      const photo = await context.loaders.photo.load(id);
      return photo && (photo.status === "READY" || photo.ownerId === context.viewer?.id) ? photo : null;
    }),
  fields: (t) => ({
    status: t.field({ type: PhotoStatus, resolve: (photo) => photo.status }),
    url: t.string({
      nullable: true,
      description:
        "The smallest variant at least `width` pixels wide (or the largest there is: never upscaled) in `format` " +
        `(WEBP when not given). \`width\` defaults to ${LADDERS.POST_PHOTO.defaultWidth} for post photos and ` +
        `${LADDERS.AVATAR.defaultWidth} for avatars. Null until the photo is READY. Stable for about an hour.`,
      args: {
        width: t.arg.int({
          validate: z.int().check(z.gte(WIDTH.min), z.lte(WIDTH.max, `A width is at most ${WIDTH.max} pixels.`)),
        }),
        format: t.arg({ type: ImageFormatEnum }),
      },
      resolve: (photo, args) => {
        if (photo.status !== "READY") return null;
        const width = args.width ?? LADDERS[photo.purpose].defaultWidth;
        const variant = pickVariant(variantsOf(photo), width, args.format ?? "webp");
        return variant ? photoUrl(variantKey(photo, variant)) : null;
      },
    }),
    variants: t.field({
      type: [PhotoVariantRef],
      description: "Every size in `format` (every format when not given), smallest first. Empty until READY.",
      args: { format: t.arg({ type: ImageFormatEnum }) },
      extensions: { maxItems: 15 },
      resolve: (photo, args) =>
        photo.status === "READY"
          ? variantsOf(photo)
              .filter((variant) => !args.format || variant.format === args.format)
              .map((variant) => ({ photo, variant }))
          : [],
    }),
    placeholder: t.string({
      nullable: true,
      description:
        "A ThumbHash (https://evanw.github.io/thumbhash/), base64: ~25 bytes that decode to a blurred preview of " +
        "the photo, to draw while its variant loads. Null until READY.",
      resolve: (photo) => (photo.status === "READY" ? photo.placeholder : null),
    }),
    color: t.string({
      nullable: true,
      description: "The photo's dominant colour (#rrggbb), for a background before anything loads.",
      resolve: (photo) => (photo.status === "READY" ? photo.color : null),
    }),
    aspectRatio: t.float({
      nullable: true,
      description: "Width / height as displayed (avatars are square), to lay out before anything loads.",
      resolve: (photo) => {
        if (photo.purpose === "AVATAR" && photo.status === "READY") return 1;
        return photo.width && photo.height ? photo.width / photo.height : null;
      },
    }),
    width: t.exposeInt("width", { nullable: true, description: "Of the original, as displayed." }),
    height: t.exposeInt("height", { nullable: true, description: "Of the original, as displayed." }),
    contentType: t.exposeString("contentType", { description: "The type of the uploaded original." }),
    byteSize: t.exposeInt("byteSize", { description: "The size of the uploaded original." }),
    purpose: t.field({ type: PhotoPurposeEnum, resolve: (photo) => photo.purpose }),
    failure: t.field({
      type: PhotoFailureRef,
      nullable: true,
      description: "Why the photo FAILED (only its owner ever sees a photo that did).",
      resolve: (photo) => (photo.status === "FAILED" ? ((photo.failure as PhotoFailure) ?? "PROCESSING_FAILED") : null),
    }),
    originalUrl: t.string({
      nullable: true,
      extensions: { personal: true },
      description:
        "The uploaded original, as it arrived (metadata included): for its owner only (null for anyone else), " +
        "never through the CDN. Null when originals are not kept (IMAGE_ORIGINALS=delete) once READY.",
      resolve: (photo, _args, context) => {
        if (photo.ownerId !== context.viewer?.id || photo.status === "PENDING") return null;
        if (photo.status === "READY" && config().images.originals === "delete") return null;
        return presignedGet(photo.storageKey);
      },
    }),
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
  .objectRef<{ photo: PhotoRecord; upload: UploadTarget }>("CreateUploadSuccess")
  .implement({
    fields: (t) => ({
      photo: t.field({ type: PhotoRef, description: "PENDING until the file is verified.", resolve: (r) => r.photo }),
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
      startUpload(context.actor!, {
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
      const ready = await completeUpload(context.actor!, input.photoId.id);
      context.loaders.photo.prime(ready.id, ready); // what the write left (it made the loader forget the photo)
      return ready;
    },
  }),
);
