// The floors that decide whether a replica may answer a read (src/platform/replicas.ts): LSNs compare as WAL
// positions, and a version proves only what it carries.
import { expect, test } from "vitest";
import { floorOf, PRIMARY, parseLsn } from "../../src/platform/replicas.ts";

test("LSNs compare as positions in the WAL, not as text", () => {
  expect(parseLsn("0/3001150")).toBe(0x3001150n);
  expect(parseLsn("16/B374D848")).toBe((0x16n << 32n) | 0xb374d848n);
  expect(parseLsn("9/FFFFFFFF") < parseLsn("A/0")).toBe(true);
  expect("9/FFFFFFFF" < "A/0").toBe(true); // (text happens to agree here…)
  expect(parseLsn("10/0") > parseLsn("9/FFFFFFFF")).toBe(true);
  expect("10/0" > "9/FFFFFFFF").toBe(false); // …and not here
  for (const nonsense of ["", "0x10", "1/2/3", null, undefined]) expect(parseLsn(nonsense)).toBe(0n);
});

test("a read's floor is the highest LSN its versions carry; one without an LSN falls back to where versions begin", () => {
  expect(floorOf(["3@0/500", "7@0/900", "1@0/100"], "0/50")).toBe(0x900n);
  // Absent ("0") or written before replicas were configured ("12"): no write after where the versions begin.
  expect(floorOf(["0", "12"], "0/700")).toBe(0x700n);
  expect(floorOf(["0", "2@0/800"], "0/700")).toBe(0x800n);
  // Where they begin unknown (a fresh or emptied keyspace): only the primary can answer.
  expect(floorOf(["0"], null)).toBe(PRIMARY);
  expect(floorOf(["2@0/800"], null)).toBe(0x800n);
  // A version this instance is still invalidating stands for a write no replica may be known to hold.
  expect(floorOf(["2@0/800", "pending"], "0/100")).toBe(PRIMARY);
  expect(floorOf([], null)).toBe(0n);
});
