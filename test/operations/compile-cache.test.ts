// The bundle ships V8's compile cache (scripts/build.ts, scripts/compile-cache.ts): a cold start of the GraphQL
// function deserializes compiled code instead of compiling it, as the container runs it and as Lambda's Node.js
// runtime does (--expose-gc); nothing is written next to the code at run time; a cache made by another Node.js is
// left alone, with one warning.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { bundleDir } from "../kit/bundle.ts";

let bundle: string;
beforeAll(() => {
  bundle = bundleDir();
});

/** Loads `<dir>/graphql.mjs` in a new process with Node's compile cache reporting what it does. */
function load(dir: string, flags: string[] = []) {
  const run = spawnSync(
    process.execPath,
    [...flags, "--input-type=module", "-e", `await import(${JSON.stringify(`${dir}/graphql.mjs`)}); process.exit(0);`],
    { encoding: "utf8", env: { ...process.env, LOG_LEVEL: "silent", NODE_DEBUG_NATIVE: "COMPILE_CACHE" } },
  );
  expect(run.status, run.stderr.slice(-2000)).toBe(0);
  return run.stdout + run.stderr;
}

describe("the bundle's compile cache", () => {
  test.each([
    ["as the container runs it", []],
    ["with the flags of Lambda's Node.js runtime", ["--expose-gc"]],
  ])("is used %s: accepted for the function and its chunks, none compiled again or written", (_, flags) => {
    const report = load(bundle, flags);
    expect(report).toMatch(/V8 code cache for ESM file:\/\/\S+\/graphql\.app\.mjs was accepted/);
    const accepted = report.match(/code cache for ESM \S+\/chunks\/\S+ was accepted/g) ?? [];
    expect(accepted.length).toBeGreaterThan(10);
    expect(report).not.toMatch(/was rejected|no cache found|writing cache/);
  });

  describe("made by another Node.js", () => {
    let copy: string;
    beforeAll(() => {
      // The bundle's files, but a compile cache that another version made.
      copy = mkdtempSync(join(tmpdir(), "shutter-foreign-cache-"));
      for (const entry of readdirSync(bundle)) {
        // The loader itself copied (a link would be loaded from where it points, next to the real cache).
        if (entry === "graphql.mjs") copyFileSync(join(bundle, entry), join(copy, entry));
        else if (entry !== "compile-cache") symlinkSync(join(bundle, entry), join(copy, entry));
      }
      mkdirSync(join(copy, "compile-cache", "v1.0.0-x64-0badcafe-0"), { recursive: true });
    });
    afterAll(() => rmSync(copy, { recursive: true, force: true }));

    test("is not turned on, and says so once", () => {
      const report = load(copy);
      expect(report).not.toMatch(/\[compile cache\]/);
      const warnings = report.split("\n").filter((line) => line.includes("compile cache not used"));
      expect(warnings).toHaveLength(1);
      expect(JSON.parse(warnings[0] as string)).toMatchObject({
        level: 40,
        msg: `compile cache not used: made by Node.js v1.0.0-x64-0badcafe-0, this is ${process.version}-${process.arch}; build with the Node.js that runs the function`,
      });
    });
  });
});
