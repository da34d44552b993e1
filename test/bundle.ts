// Builds the functions the way `npm run build` does, into a folder of the test file's own (test files run in
// parallel, and a shared dist/ would be rebuilt under another file's feet).
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;

/** Bundles the handlers; returns the folder holding graphql.mjs, server.mjs, migrate.mjs, cleanup.mjs. */
export function buildFunctions(): string {
  const outdir = mkdtempSync(join(tmpdir(), "shutter-bundle-"));
  const built = spawnSync(process.execPath, ["scripts/build.ts", "--outdir", outdir], { cwd: root, encoding: "utf8" });
  if (built.status !== 0) throw new Error(`npm run build failed:\n${built.stderr}`);
  return outdir;
}
