// `npm run cleanup`: runs the cleanup function once against the configured database and storage.
import { handler } from "../functions/cleanup.ts";
import { closeCache } from "../src/caching/store.ts";
import { disconnectDb } from "../src/platform/db.ts";

const { deleted } = await handler();
console.log(`deleted ${deleted} abandoned uploads`);
await Promise.all([disconnectDb(), closeCache()]);
