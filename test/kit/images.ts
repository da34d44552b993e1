// Real image bytes for upload tests: each is a valid file of its format as far as format detection and
// dimension reading go (the HEIC one is a header only: its ftyp and its ispe dimensions).
import { readFileSync } from "node:fs";
import { deflateSync } from "node:zlib";
import sharp from "sharp";
import { encodePng, PNG_SIGNATURE, pngChunk } from "../../prisma/png.ts";

export const png = (width = 4, height = 3): Buffer => encodePng(width, height, () => [0x7f, 0x7f, 0x7f]);

/** A 1×1 progressive JPEG. */
export const jpeg = (): Buffer =>
  Buffer.from(
    "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////////////////////////////////////////////wgALCAABAAEBAREA/8QAFBABAAAAAAAAAAAAAAAAAAAAAP/aAAgBAQABPxA=",
    "base64",
  );

/** A 1×1 lossless WebP. */
export const webp = (): Buffer => Buffer.from("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==", "base64");

/** The start of a HEIC file: ftyp (heic) and a meta box whose ispe gives the dimensions. */
export function heic(width = 640, height = 480): Buffer {
  const box = (type: string, ...parts: Buffer[]) => {
    const body = Buffer.concat(parts);
    const head = Buffer.alloc(8);
    head.writeUInt32BE(8 + body.length);
    head.write(type, 4, "ascii");
    return Buffer.concat([head, body]);
  };
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const fullBox = (type: string, ...parts: Buffer[]) => box(type, u32(0), ...parts);
  const ftyp = box("ftyp", Buffer.from("heic"), u32(0), Buffer.from("mif1heic"));
  const hdlr = fullBox("hdlr", u32(0), Buffer.from("pict"), Buffer.alloc(12), Buffer.from("\0"));
  const meta = fullBox("meta", hdlr, box("iprp", box("ipco", fullBox("ispe", u32(width), u32(height)))));
  return Buffer.concat([ftyp, meta]);
}

// Real photos for the images function (test/photos.test.ts), made with sharp so each is what a camera or an app
// would send: EXIF with GPS and an orientation, transparency, other formats, too many pixels, damage.
/** Red in the stored image's top-left quadrant, blue-grey elsewhere: where it lands shows the orientation. */
async function quadrant(width: number, height: number) {
  const red = await sharp({ create: { width: width / 2, height: height / 2, channels: 3, background: "#f01010" } })
    .png()
    .toBuffer();
  return sharp({ create: { width, height, channels: 3, background: "#3050a0" } }).composite([
    { input: red, left: 0, top: 0 },
  ]);
}

export const GPS = { latitude: 48.85666666666667, longitude: 2.3508333333333336 };

/** A phone's JPEG: stored landscape (width × height) with EXIF orientation 6 (shown turned a quarter clockwise), camera make and model, and a GPS position. */
export async function phoneJpeg(width = 1600, height = 1200): Promise<Buffer> {
  return (await quadrant(width, height))
    .jpeg({ quality: 90 })
    .withExif({
      IFD0: { Make: "Shutter Phone", Model: "Test 1", DateTime: "2026:11:30 10:00:00" },
      IFD3: {
        GPSLatitudeRef: "N",
        GPSLatitude: "48/1 51/1 2400/100",
        GPSLongitudeRef: "E",
        GPSLongitude: "2/1 21/1 300/100",
      },
    })
    .withMetadata({ orientation: 6 })
    .toBuffer();
}

/** A PNG with an alpha channel: opaque red on the left half, fully transparent on the right. */
export async function transparentPng(width = 800, height = 600): Promise<Buffer> {
  const red = await sharp({ create: { width: width / 2, height, channels: 4, background: "#f01010ff" } })
    .png()
    .toBuffer();
  return sharp({ create: { width, height, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } })
    .composite([{ input: red, left: 0, top: 0 }])
    .png()
    .toBuffer();
}

export async function photoWebp(width = 1000, height = 1000): Promise<Buffer> {
  return (await quadrant(width, height)).webp({ quality: 80 }).toBuffer();
}

/** A 48-megapixel JPEG (8000 × 6000), as the main camera of a recent phone takes them. */
export async function hugeJpeg(): Promise<Buffer> {
  return (await quadrant(8000, 6000)).jpeg({ quality: 85 }).toBuffer();
}

/** A JPEG cut off halfway: its header (and dimensions) intact, most of its pixels missing. */
export async function truncatedJpeg(): Promise<Buffer> {
  const noise = Buffer.alloc(1200 * 900 * 3);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
  const whole = await sharp(noise, { raw: { width: 1200, height: 900, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer();
  return whole.subarray(0, Math.floor(whole.length / 2));
}

/**
 * A decompression bomb: a 1-bit greyscale PNG of 20000 × 20000 pixels (400 megapixels, gigabytes once decoded)
 * in about 50 KB.
 */
export function bombPng(side = 20_000): Buffer {
  const row = 1 + Math.ceil(side / 8);
  const header = Buffer.alloc(13);
  header.writeUInt32BE(side, 0);
  header.writeUInt32BE(side, 4);
  header.set([1, 0, 0, 0, 0], 8); // 1-bit greyscale
  return Buffer.concat([
    PNG_SIGNATURE,
    pngChunk("IHDR", header),
    pngChunk("IDAT", deflateSync(Buffer.alloc(row * side), { level: 9 })),
    pngChunk("IEND", Buffer.alloc(0)),
  ]);
}

/**
 * A HEIC as phones write them: HEVC-coded (which sharp's libvips cannot decode), 1200 × 900, with EXIF naming the
 * camera and a GPS position. Made with libheif's heif-enc (x265) from a JPEG carrying that EXIF; no camera's own
 * file could be fetched here (see test/kit/fixtures/README.md).
 */
export const phoneHeic = (): Buffer => readFileSync(new URL("./fixtures/phone.heic", import.meta.url));
