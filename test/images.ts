// Real image bytes for upload tests: each is a valid file of its format as far as format detection and
// dimension reading go (the HEIC one is a header only: its ftyp and its ispe dimensions).
import { encodePng } from "../prisma/png.ts";

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
