// What the images function makes of a photo, and how readers find it: the ladder of widths per purpose, the
// formats, and where each variant lives. One place, shared by the function that writes variants and the
// resolvers that point at them (keys are derived, never stored).

/** The most pixels an original may have: phones' 48 MP (and their panoramas) pass, a decompression bomb does not. */
export const MAX_PIXELS = 70_000_000;

/** Why a photo FAILED, as its owner reads it. */
export type PhotoFailure = "UNREADABLE" | "TOO_LARGE" | "PROCESSING_FAILED";

export const FAILURE_MESSAGES: Record<PhotoFailure, string> = {
  UNREADABLE: "This file is damaged or incomplete, so it can't be shown. Upload the photo again.",
  TOO_LARGE: `This image has more than ${MAX_PIXELS / 1e6} megapixels. Upload a smaller version.`,
  PROCESSING_FAILED: "We couldn't process this photo. Upload it again.",
};

/** Formats every variant is made in. JPEG is the fallback every client decodes. */
export const IMAGE_FORMATS = ["avif", "webp", "jpeg"] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

export const EXTENSIONS: Record<ImageFormat, string> = { avif: "avif", webp: "webp", jpeg: "jpg" };
export const CONTENT_TYPES: Record<ImageFormat, string> = {
  avif: "image/avif",
  webp: "image/webp",
  jpeg: "image/jpeg",
};

export interface Ladder {
  /** Widths made when the photo is at least that wide (never upscaled). */
  widths: readonly number[];
  /** The largest variant fits in this square (a 48 MP original never travels whole). */
  cap: number;
  /** Avatars are square crops; post photos keep their aspect ratio. */
  square: boolean;
  /** The width `url` picks when a client asks for none. */
  defaultWidth: number;
}

export const LADDERS = {
  POST_PHOTO: { widths: [320, 640, 1080, 1440], cap: 2048, square: false, defaultWidth: 1080 },
  AVATAR: { widths: [64, 128, 256], cap: 512, square: true, defaultWidth: 128 },
} as const satisfies Record<"POST_PHOTO" | "AVATAR", Ladder>;

/** One variant as recorded on the photo row (`variants`). */
export interface Variant {
  width: number;
  height: number;
  format: ImageFormat;
  bytes: number;
}

/** The widths made for a photo this wide (after orientation): the ladder's rungs below it, and its own capped size. */
export function ladderWidths(ladder: Ladder, width: number, height: number): number[] {
  const largest = ladder.square
    ? Math.min(ladder.cap, width, height)
    : Math.max(1, Math.round(width * Math.min(1, ladder.cap / Math.max(width, height))));
  return [...ladder.widths.filter((rung) => rung < largest), largest];
}

/** Where a variant lives: v/<owner>/<photo>/<width>.<ext>. The prefix is all a CDN may serve. */
export const variantKey = (photo: { id: string; ownerId: string }, variant: Pick<Variant, "width" | "format">) =>
  `v/${photo.ownerId}/${photo.id}/${variant.width}.${EXTENSIONS[variant.format]}`;

/** The prefix of a photo's variants (to delete them all). */
export const variantPrefix = (photo: { id: string; ownerId: string }) => `v/${photo.ownerId}/${photo.id}/`;

/** Every object a photo may have: its original (or upload) and its variants. */
export function objectKeys(photo: { id: string; ownerId: string; storageKey: string; variants: unknown }): string[] {
  return [photo.storageKey, ...variantsOf(photo).map((variant) => variantKey(photo, variant))];
}

export function variantsOf(photo: { variants: unknown }): Variant[] {
  return Array.isArray(photo.variants) ? (photo.variants as Variant[]) : [];
}

/**
 * The variant to show at `width` CSS/device pixels in `format`: the smallest at least that wide, or the largest
 * there is (never upscaled). A format the photo lacks falls back to JPEG, which every photo has.
 */
export function pickVariant(variants: readonly Variant[], width: number, format: ImageFormat): Variant | undefined {
  const inFormat = variants.filter((variant) => variant.format === format);
  const candidates = inFormat.length ? inFormat : variants.filter((variant) => variant.format === "jpeg");
  let best: Variant | undefined;
  for (const variant of candidates) {
    const fits = variant.width >= width;
    if (!best) best = variant;
    else if (fits && (best.width < width || variant.width < best.width)) best = variant;
    else if (!fits && best.width < width && variant.width > best.width) best = variant;
  }
  return best;
}
