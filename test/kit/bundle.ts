// The bundle as `npm run build` makes it, built once per test run by the global setup into a folder of its own
// (never dist/, which a developer may be building meanwhile); bundled targets and the container and gateway
// tests all run that one copy.
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";

const root = new URL("../..", import.meta.url).pathname;

/** Bundles the handlers; returns the folder holding graphql.mjs, server.mjs, migrate.mjs, cleanup.mjs. */
export function buildFunctions(): string {
  const outdir = mkdtempSync(join(tmpdir(), "shutter-bundle-"));
  const built = spawnSync(process.execPath, ["scripts/build.ts", "--outdir", outdir], { cwd: root, encoding: "utf8" });
  if (built.status !== 0) throw new Error(`npm run build failed:\n${built.stderr}`);
  return outdir;
}

/** The folder of this run's bundle. */
export function bundleDir(): string {
  return inject("bundleDir");
}
