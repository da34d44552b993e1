// Deploy step: loads persisted-document manifests into Redis as trusted documents, so the apps built from them
// keep working under the `persisted-only` policy even after newer deployments no longer bundle them.
//   REDIS_URL=… node scripts/push-persisted.ts clients/mobile/generated/persisted-documents.json [more.json …]
import { readFileSync } from "node:fs";
import { cacheStore, closeCache } from "../src/caching/store.ts";
import { trustDocuments } from "../src/http/persisted-documents.ts";

const files = process.argv.slice(2);
if (files.length === 0) throw new Error("Name the manifests to load (persisted-documents.json files).");
if (cacheStore().kind !== "redis") throw new Error("Set REDIS_URL: trusted documents are shared through Redis.");
for (const file of files) {
  const count = await trustDocuments(JSON.parse(readFileSync(file, "utf8")));
  console.log(`${file}: ${count} trusted documents loaded`);
}
await closeCache();
