// The images function's pixel work: one uploaded original in, its variants out (sharp/libvips; HEVC-coded HEIC
// through libheif compiled to WebAssembly, which sharp's prebuilt libvips lacks). Pure: bytes in, bytes out, no
// storage or database, so it is measured and tested on its own.
//
// Memory stays bounded whatever arrives: the pixel count is checked from the header before anything is decoded
// (a decompression bomb is refused, not allocated), JPEGs shrink while they decode, and every variant is made
// from one intermediate no larger than the ladder's cap, not from the original.
import type { Sharp } from "sharp";
import {
  CONTENT_TYPES,
  IMAGE_FORMATS,
  type ImageFormat,
  type Ladder,
  ladderWidths,
  MAX_PIXELS,
  type PhotoFailure,
  type Variant,
} from "./variants.ts";

export type ImageProblemCode = Exclude<PhotoFailure, "PROCESSING_FAILED">;

/** The file cannot become a photo, whatever the retries: the same bytes fail the same way. */
export class ImageProblem extends Error {
  readonly code: ImageProblemCode;

  constructor(code: ImageProblemCode, message: string) {
    super(message);
    this.name = "ImageProblem";
    this.code = code;
  }
}

export interface MadeVariant extends Variant {
  data: Buffer;
  contentType: string;
}

export interface Made {
  /** The photo as displayed (orientation applied). */
  width: number;
  height: number;
  variants: MadeVariant[];
  /** ThumbHash, base64. */
  placeholder: string;
  /** Dominant colour, #rrggbb. */
  color: string;
}

let sharpModule: Promise<typeof import("sharp")> | undefined;

/** sharp, loaded on first use (the GraphQL function never loads it), without libvips' operation cache. */
async function loadSharp() {
  sharpModule ??= import("sharp").then((module) => {
    // Each invocation processes other files: a cache of earlier operations only holds memory.
    module.default.cache(false);
    return module;
  });
  return (await sharpModule).default;
}

const ENCODERS: Record<ImageFormat, (image: Sharp) => Sharp> = {
  // Effort 0 of 9 (libaom's fastest): on a 12 MP photo it encoded ~8× faster than effort 2 for files within a few
  // per cent of the size (npm run bench:images), and AVIF is still the smallest format.
  avif: (image) => image.avif({ quality: 55, effort: 0 }),
  // Effort 2 of 6: half the time of the default 4 on a 12 MP photo, for files ~2 % larger.
  webp: (image) => image.webp({ quality: 80, effort: 2 }),
  // JPEG has no transparency: a transparent PNG's fallback is drawn on white.
  jpeg: (image) => image.flatten({ background: "#ffffff" }).jpeg({ quality: 80, progressive: true }),
};

const isHeif = (bytes: Buffer) => bytes.toString("latin1", 4, 8) === "ftyp";

/** Decodes a HEIC/HEIF file to RGBA (libheif applies its rotation and mirroring), after checking its size. */
async function decodeHeif(bytes: Buffer): Promise<{ data: Uint8ClampedArray; width: number; height: number }> {
  const { all } = (await import("heic-decode")).default;
  let images: Awaited<ReturnType<typeof all>>;
  try {
    images = await all({ buffer: bytes });
  } catch (error) {
    throw new ImageProblem("UNREADABLE", `Not a readable HEIC image (${(error as Error).message}).`);
  }
  try {
    const [primary] = images;
    if (!primary) throw new ImageProblem("UNREADABLE", "The HEIC file holds no image.");
    checkPixels(primary.width, primary.height);
    return await primary.decode().catch((error: Error) => {
      throw new ImageProblem("UNREADABLE", `The HEIC image could not be decoded (${error.message}).`);
    });
  } finally {
    images.dispose();
  }
}

function checkPixels(width: number, height: number) {
  if (width * height > MAX_PIXELS) {
    throw new ImageProblem(
      "TOO_LARGE",
      `The image has ${Math.round((width * height) / 1e6)} megapixels; at most ${MAX_PIXELS / 1e6} are accepted.`,
    );
  }
}

/**
 * Makes every variant of a photo: orientation applied, converted to sRGB, metadata stripped (nothing of the
 * original's EXIF, GPS, XMP or ICC profile is written), at the ladder's widths (never upscaled) in AVIF, WebP and
 * JPEG; plus its ThumbHash placeholder and dominant colour.
 * @throws ImageProblem when the file is not a usable image (damaged, truncated, too many pixels).
 */
export async function makeVariants(bytes: Buffer, ladder: Ladder): Promise<Made> {
  const sharp = await loadSharp();
  let input: Sharp;
  if (isHeif(bytes) && !isAvif(bytes)) {
    const decoded = await decodeHeif(bytes);
    input = sharp(Buffer.from(decoded.data.buffer, decoded.data.byteOffset, decoded.data.byteLength), {
      raw: { width: decoded.width, height: decoded.height, channels: 4 },
    });
  } else {
    input = sharp(bytes, { limitInputPixels: MAX_PIXELS, failOn: "truncated", sequentialRead: true });
  }
  let base: { data: Buffer; info: { width: number; height: number; channels: 1 | 2 | 3 | 4 } };
  let displayed: { width: number; height: number };
  try {
    const meta = await input.metadata();
    if (!meta.width || !meta.height) throw new Error("no dimensions");
    checkPixels(meta.width, meta.height);
    // EXIF orientations 5–8 turn the image a quarter: its displayed width is its stored height.
    const turned = (meta.orientation ?? 1) >= 5;
    displayed = turned ? { width: meta.height, height: meta.width } : { width: meta.width, height: meta.height };
    const side = Math.min(ladder.cap, displayed.width, displayed.height);
    const resize = ladder.square
      ? { width: side, height: side, fit: "cover" as const }
      : { width: ladder.cap, height: ladder.cap, fit: "inside" as const, withoutEnlargement: true };
    base = await input
      .rotate() // by the EXIF orientation, which goes with the rest of the metadata
      .resize(resize)
      .toColourspace("srgb")
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (error) {
    if (error instanceof ImageProblem) throw error;
    const message = (error as Error).message;
    if (/pixel limit/i.test(message)) throw new ImageProblem("TOO_LARGE", `The image is too large (${message}).`);
    throw new ImageProblem("UNREADABLE", `Not a readable image (${message.split("\n")[0]}).`);
  }
  const raw = { raw: { width: base.info.width, height: base.info.height, channels: base.info.channels } };
  const widths = ladderWidths(ladder, base.info.width, base.info.height).reverse();
  const variants: MadeVariant[] = [];
  for (const width of widths) {
    const scaled =
      width === base.info.width
        ? base
        : await sharp(base.data, raw)
            .resize({ width, height: ladder.square ? width : undefined })
            .raw()
            .toBuffer({ resolveWithObject: true });
    const scaledRaw = { raw: { width: scaled.info.width, height: scaled.info.height, channels: scaled.info.channels } };
    for (const format of IMAGE_FORMATS) {
      const data = await ENCODERS[format](sharp(scaled.data, scaledRaw)).toBuffer();
      variants.push({
        width: scaled.info.width,
        height: scaled.info.height,
        format,
        bytes: data.length,
        data,
        contentType: CONTENT_TYPES[format],
      });
    }
  }
  const small = await sharp(base.data, raw)
    .resize({ width: 100, height: 100, fit: "inside" })
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const { rgbaToThumbHash } = await import("thumbhash");
  const placeholder = Buffer.from(rgbaToThumbHash(small.info.width, small.info.height, small.data)).toString("base64");
  // From the thumbnail: the same colour as from the whole photo, in a millisecond instead of ~90.
  const { dominant } = await sharp(small.data, {
    raw: { width: small.info.width, height: small.info.height, channels: 4 },
  }).stats();
  const hex = (n: number) => n.toString(16).padStart(2, "0");
  return {
    width: displayed.width,
    height: displayed.height,
    variants: variants.sort((a, b) => a.width - b.width),
    placeholder,
    color: `#${hex(dominant.r)}${hex(dominant.g)}${hex(dominant.b)}`,
  };
}

/** AVIF is HEIF with AV1, which libvips reads itself (and checks the size of before decoding). */
function isAvif(bytes: Buffer): boolean {
  const brand = bytes.toString("latin1", 8, 12);
  return brand === "avif" || brand === "avis";
}
