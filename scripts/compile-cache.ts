// Makes the bundle's V8 compile cache (scripts/build.ts runs it; the container image runs it again with the image's
// own Node.js): loads the GraphQL function, answers one request with it (the bundle must work before its cache is
// shipped) and loads every chunk, with Node's compile cache on; then writes the cache to <dir>/compile-cache. V8
// caches what it compiled with each module's top level only: functions compiled later, when first called, are not in
// it. Nothing is reached over the network: the settings below are placeholders.
//   node [--expose-gc] scripts/compile-cache.ts <dir>
import { generateKeyPairSync } from "node:crypto";
import { chmodSync, readdirSync, statSync } from "node:fs";
import { enableCompileCache, flushCompileCache } from "node:module";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const dir = resolve(process.argv[2] ?? "dist/functions");
/**
 * Chunks left out: GraphiQL's page, its assets inline (9 MB; opened by developers only), whose cache would be larger
 * than all the rest.
 */
const LARGEST_CHUNK = 2 * 1024 * 1024;
const enabled = enableCompileCache({ directory: join(dir, "compile-cache"), portable: true });
if (!enabled.directory) throw new Error(`the compile cache could not be enabled: ${enabled.message}`);

// Production's configuration with nothing behind it: the request below needs neither a database nor Redis.
const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
Object.assign(process.env, {
  NODE_ENV: "production",
  LOG_LEVEL: "silent",
  DATABASE_URL: "postgresql://compile-cache@127.0.0.1:9/none",
  JWT_PRIVATE_KEY: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
  S3_BUCKET: "compile-cache",
});

const graphql = await import(pathToFileURL(join(dir, "graphql.app.mjs")).href);
const response: Response = await graphql.fetch(
  new Request("http://localhost/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({ query: "query CompileCache { __typename }" }),
  }),
);
const body = await response.text();
if (!body.includes('"__typename"')) throw new Error(`the GraphQL function did not answer: ${response.status} ${body}`);
for (const file of readdirSync(join(dir, "chunks"))) {
  const path = join(dir, "chunks", file);
  if (file.endsWith(".mjs") && statSync(path).size <= LARGEST_CHUNK) await import(pathToFileURL(path).href);
}
flushCompileCache();
// Node writes it for its own user only: the function may run as another (the container's non-root user).
for (const entry of readdirSync(join(dir, "compile-cache"), { recursive: true, withFileTypes: true })) {
  chmodSync(join(entry.parentPath, entry.name), entry.isDirectory() ? 0o755 : 0o644);
}
process.exit(0);
