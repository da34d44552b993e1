// Which variants a photo gets, where they live, and which one a client is served.
import { describe, expect, test } from "vitest";
import { LADDERS, ladderWidths, objectKeys, pickVariant, type Variant, variantKey } from "../../src/images/variants.ts";

const variants = (widths: number[], formats: Variant["format"][]): Variant[] =>
  widths.flatMap((width) => formats.map((format) => ({ width, height: width, format, bytes: 1 })));

describe("the ladder", () => {
  test("post photos: every rung below the photo's width, then its own size capped at 2048 on the long side", () => {
    expect(ladderWidths(LADDERS.POST_PHOTO, 4032, 3024)).toEqual([320, 640, 1080, 1440, 2048]);
    // Portrait: the cap applies to the height, so the largest is narrower.
    expect(ladderWidths(LADDERS.POST_PHOTO, 3024, 4032)).toEqual([320, 640, 1080, 1440, 1536]);
    // Never upscaled: a small photo gets the rungs below it and itself.
    expect(ladderWidths(LADDERS.POST_PHOTO, 700, 500)).toEqual([320, 640, 700]);
    expect(ladderWidths(LADDERS.POST_PHOTO, 200, 200)).toEqual([200]);
  });

  test("avatars are square crops up to 512", () => {
    expect(ladderWidths(LADDERS.AVATAR, 4000, 3000)).toEqual([64, 128, 256, 512]);
    expect(ladderWidths(LADDERS.AVATAR, 300, 100)).toEqual([64, 100]);
  });
});

describe("serving", () => {
  const ready = variants([320, 640, 1080], ["avif", "webp", "jpeg"]);

  test("the smallest variant at least as wide as asked, in the format asked", () => {
    expect(pickVariant(ready, 600, "webp")).toMatchObject({ width: 640, format: "webp" });
    expect(pickVariant(ready, 640, "avif")).toMatchObject({ width: 640, format: "avif" });
    expect(pickVariant(ready, 1, "jpeg")).toMatchObject({ width: 320, format: "jpeg" });
  });

  test("wider than any: the largest there is (never upscaled)", () => {
    expect(pickVariant(ready, 4000, "webp")).toMatchObject({ width: 1080, format: "webp" });
  });

  test("a format the photo lacks falls back to JPEG; no variants, nothing", () => {
    expect(pickVariant(variants([320, 640], ["jpeg"]), 500, "avif")).toMatchObject({ width: 640, format: "jpeg" });
    expect(pickVariant([], 500, "jpeg")).toBeUndefined();
  });

  test("keys: variants under the owner's and photo's prefix, with every object a photo has", () => {
    const media = { id: "m1", ownerId: "u1", storageKey: "o/u1/m1.jpg", variants: variants([320], ["webp", "jpeg"]) };
    expect(variantKey(media, { width: 320, format: "jpeg" })).toBe("v/u1/m1/320.jpg");
    expect(objectKeys(media)).toEqual(["o/u1/m1.jpg", "v/u1/m1/320.webp", "v/u1/m1/320.jpg"]);
    expect(objectKeys({ ...media, variants: null })).toEqual(["o/u1/m1.jpg"]);
  });
});
