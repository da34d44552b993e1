// `npm run cleanup`: runs the cleanup function once against the configured database and storage.
import { handler } from "../functions/cleanup.ts";
import { closeCache } from "../src/cache.ts";
import { disconnectDb } from "../src/db.ts";

const { deleted } = await handler();
console.log(`deleted ${deleted} abandoned uploads`);
await Promise.all([disconnectDb(), closeCache()]);
