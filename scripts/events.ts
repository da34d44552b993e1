// `npm run events`: the events runner against the configured database and Redis, until Ctrl-C — outbox events
// become notifications, due notification deliveries are sent. (`npm run dev` runs one in-process.)
import { runEvents } from "../functions/events.ts";
import { closeCache } from "../src/caching/store.ts";
import { closePubSub } from "../src/events/pubsub.ts";
import { closePublisher } from "../src/events/stream.ts";
import { disconnectDb } from "../src/platform/db.ts";

const stop = new AbortController();
process.once("SIGINT", () => stop.abort());
process.once("SIGTERM", () => stop.abort());
await runEvents(stop.signal);
closePubSub();
await Promise.all([disconnectDb(), closeCache(), closePublisher()]);
