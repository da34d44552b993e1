// How fast events become notifications, on the real PostgreSQL and Redis:
//   node bench/events.ts [--events 5000] [--likes 50]
// 1. Handler throughput: N like events recorded in the outbox (real likes of the small seed, many recipients),
//    then processed by the events handler as the runner does (batches of 100, 4 at a time): events/s.
// 2. Delivery latency: the bundled container entry with its events runner (EVENTS_RUNNER=true) serves a
//    signed-in SSE subscription to `notificationAdded`; another person likes the subscriber's posts one at a
//    time over HTTP; time from sending the like to receiving its SSE event (p50, p95, max).
import { execFileSync } from "node:child_process";
import { parseArgs } from "node:util";
import pg from "pg";
import { ensureDatabase } from "./data.ts";
import { functionEnv, startServer } from "./servers.ts";

const { values: options } = parseArgs({
  options: { events: { type: "string", default: "5000" }, likes: { type: "string", default: "50" } },
});
const serverUrl = process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const step = (line: string) => process.stderr.write(`${line}\n`);
const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((p / 100) * values.length))] as number;

const databaseUrl = await ensureDatabase(serverUrl, "shutter_bench_events", "small", 300);
const env = await functionEnv(databaseUrl, redisUrl, "shutter_bench_events");
Object.assign(process.env, env);
const client = new pg.Client({ connectionString: databaseUrl });
await client.connect();

// 1. Throughput.
await client.query(
  "TRUNCATE outbox_events, notification_actors; DELETE FROM notifications WHERE group_key IS NOT NULL",
);
const count = Number(options.events);
await client.query(
  `INSERT INTO outbox_events (kind, recipient_id, payload)
   SELECT 'post.liked', p.author_id, jsonb_build_object('postId', l.post_id, 'actorId', l.user_id)
   FROM likes l JOIN posts p ON p.id = l.post_id WHERE p.author_id <> l.user_id
   ORDER BY l.created_at LIMIT $1`,
  [count],
);
const recipients = (await client.query("SELECT count(DISTINCT recipient_id) AS n FROM outbox_events")).rows[0].n;
step(`throughput: ${count} like events for ${recipients} recipients recorded; processing`);
const { processEvents, unprocessedEvents } = await import("../src/workers/notifications.ts");
const started = performance.now();
let processed = 0;
for (let ids = await unprocessedEvents(100); ids.length; ids = await unprocessedEvents(100)) {
  const failed = await processEvents(ids);
  if (failed.length) throw new Error(`${failed.length} events failed`);
  processed += ids.length;
  if (processed % 1000 === 0) step(`  ${processed} / ${count}`);
}
const seconds = (performance.now() - started) / 1000;
const notifications = (await client.query("SELECT count(*) AS n FROM notifications WHERE group_key IS NOT NULL"))
  .rows[0].n;
const throughput = {
  events: processed,
  seconds: Math.round(seconds * 100) / 100,
  eventsPerSecond: Math.round(processed / seconds),
  notifications: Number(notifications),
};
step(`throughput: ${JSON.stringify(throughput)}`);
const { disconnectDb } = await import("../src/platform/db.ts");
const { closePubSub } = await import("../src/events/pubsub.ts");
closePubSub();
await disconnectDb();

// 2. Latency, through the container entry with its runner.
step("latency: bundling, then starting the container entry with its events runner");
execFileSync(process.execPath, ["scripts/build.ts", "--outdir", "/tmp/shutter-bench-events-dist"], {
  cwd: new URL("..", import.meta.url).pathname,
});
const server = await startServer("shutter", ["/tmp/shutter-bench-events-dist/server.mjs"], {
  ...env,
  EVENTS_RUNNER: "true",
});
const { signAccessToken } = await import("../src/domain/auth.ts");
const { encodeGlobalID } = await import("@pothos/plugin-relay");
// The author of the most posts, and someone who likes none of them yet: the like of each is a new notification
// (and after its unlike, the next like of it is a new one again).
const [author] = (await client.query("SELECT id FROM users ORDER BY post_count DESC, id LIMIT 1")).rows.map(
  (row) => row.id as string,
);
const [liker] = (
  await client.query(
    `SELECT id FROM users u WHERE id <> $1 AND NOT EXISTS (
       SELECT 1 FROM likes l JOIN posts p ON p.id = l.post_id WHERE p.author_id = $1 AND l.user_id = u.id)
     ORDER BY id LIMIT 1`,
    [author],
  )
).rows.map((row) => row.id as string);
const authorPosts = (await client.query("SELECT id FROM posts WHERE author_id = $1", [author])).rows.map((row) =>
  encodeGlobalID("Post", row.id),
);
const posts = Array.from({ length: Number(options.likes) }, (_, i) => authorPosts[i % authorPosts.length] as string);
const token = async (userId: string) =>
  (await signAccessToken({ userId: userId, sessionId: crypto.randomUUID() })).token;
const [authorToken, likerToken] = await Promise.all([token(author as string), token(liker as string)]);
const graphql = (body: unknown, bearer: string, accept = "application/json") =>
  fetch(`${server.url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", accept, authorization: `Bearer ${bearer}` },
    body: JSON.stringify(body),
  });
// Production runs persisted queries in apq mode: documents go with their hash.
const { createHash } = await import("node:crypto");
const apq = (query: string, variables = {}) => ({
  query,
  variables,
  extensions: { persistedQuery: { version: 1, sha256Hash: createHash("sha256").update(query).digest("hex") } },
});
const subscription = await graphql(
  apq("subscription Live { notificationAdded { id kind actorCount } }"),
  authorToken,
  "text/event-stream",
);
const reader = subscription.body!.pipeThrough(new TextDecoderStream()).getReader();
await new Promise((resolve) => setTimeout(resolve, 500)); // the subscription reaches Redis
const LIKE = "mutation LikeBench($id: ID!) { likePost(input: { postId: $id }) { __typename } }";
const UNLIKE = "mutation UnlikeBench($id: ID!) { unlikePost(input: { postId: $id }) { __typename } }";
const latencies: number[] = [];
let buffer = "";
for (const [i, post] of posts.entries()) {
  const sent = performance.now();
  const response = await graphql(apq(LIKE, { id: post }), likerToken);
  if (!(await response.text()).includes("LikePostSuccess")) throw new Error("the like failed");
  while (!buffer.includes("event: next")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the SSE stream ended");
    buffer += value;
  }
  latencies.push(performance.now() - sent);
  buffer = buffer.slice(buffer.indexOf("\n\n", buffer.indexOf("event: next")) + 2);
  await (await graphql(apq(UNLIKE, { id: post }), likerToken)).text();
  if ((i + 1) % 10 === 0) step(`  latency: ${i + 1} / ${posts.length} likes`);
}
await reader.cancel();
await server.stop();
await client.end();
const round = (ms: number) => Math.round(ms * 10) / 10;
const latency = {
  likes: latencies.length,
  p50Ms: round(percentile(latencies, 50)),
  p95Ms: round(percentile(latencies, 95)),
  maxMs: round(Math.max(...latencies)),
};
step(`latency like → SSE event: ${JSON.stringify(latency)}`);
process.stdout.write(`${JSON.stringify({ throughput, latency })}\n`);
process.exit(0);
