// Cursors are opaque to clients and checked when they come back: anything but a cursor this list made is a
// typed BAD_USER_INPUT naming the argument, never a value that reaches SQL.
import { describe, expect, test } from "vitest";
import { decodeCursor, encodeCursor } from "../../src/domain/pagination.ts";
import { ValidationError } from "../../src/errors.ts";

const id = "0192f1c4-7a3e-7000-8000-0123456789ab";

describe("cursors", () => {
  test("round-trip the keyset values of the list that made them", () => {
    const cursor = encodeCursor([1_733_270_400_000, id]);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(cursor, ["time", "uuid"])).toEqual([1_733_270_400_000, id]);
    expect(decodeCursor(encodeCursor([42, "velvet_tram"]), ["count", "handle"])).toEqual([42, "velvet_tram"]);
  });

  test.each([
    ["another list's cursor (wrong kinds)", encodeCursor([id, 1]), ["time", "uuid"]],
    ["another list's cursor (wrong length)", encodeCursor([1]), ["time", "uuid"]],
    ["not base64 JSON", "not a cursor", ["time", "uuid"]],
    ["a time beyond what a Date holds", encodeCursor([8.64e15 + 1, id]), ["time", "uuid"]],
    ["a negative count", encodeCursor([-1, "a"]), ["count", "handle"]],
    ["a count beyond int4", encodeCursor([2_147_483_648, "a"]), ["count", "handle"]],
    ["a handle with SQL in it", encodeCursor([1, "x' OR 1=1 --"]), ["count", "handle"]],
    ["an uppercase uuid", encodeCursor([1, id.toUpperCase()]), ["time", "uuid"]],
    ["an oversized cursor", "A".repeat(401), ["time", "uuid"]],
  ] as const)("refuses %s", (_, cursor, parts) => {
    const thrown = (() => {
      try {
        decodeCursor(cursor, [...parts], "commentsAfter");
      } catch (error) {
        return error;
      }
    })();
    expect(thrown).toBeInstanceOf(ValidationError);
    expect(thrown).toMatchObject({
      message: '"commentsAfter" is not a cursor from this list. Start again without it.',
      fieldErrors: [{ path: ["commentsAfter"], message: expect.stringContaining("commentsAfter") }],
    });
  });
});
