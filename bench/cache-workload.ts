// Runs a seeded read/write workload through the function's Fetch entry and reports, per screen, SQL statements
// per operation (first request for its data vs. steady state), the cache hit ratio and cache round trips.
//   DATABASE_URL=… REDIS_URL=… node bench/cache-workload.ts [--requests 3000] [--viewers 200] [--write-ratio 0.05]
// The database must hold a seed (npm run db:seed); nothing but likes is written.
import { parseArgs } from "node:util";
import pg from "pg";

const { values: options } = parseArgs({
  options: {
    requests: { type: "string", default: "3000" },
    viewers: { type: "string", default: "200" },
    "write-ratio": { type: "string", default: "0.05" },
  },
});
process.env.NODE_ENV = "development"; // responses report their statement and cache counts
process.env.LOG_LEVEL ??= "warn";
process.env.LOG_FORMAT ??= "json";
// Photo URLs are presigned without contacting storage: a placeholder bucket is enough here.
process.env.S3_BUCKET ??= "bench";
process.env.S3_ACCESS_KEY_ID ??= "bench";
process.env.S3_SECRET_ACCESS_KEY ??= "bench";

const { fetch } = await import("../functions/graphql.ts");
const { startSession } = await import("../src/services/auth.ts");
const { encodeGlobalID } = await import("@pothos/plugin-relay");
const { closeCache } = await import("../src/caching/store.ts");
const { disconnectDb } = await import("../src/platform/db.ts");

const SCREENS = {
  feed: `query Feed { feed(first: 20) { edges { node { id caption createdAt likeCount commentCount viewerHasLiked
    author { handle displayName } photos { url width height }
    comments(first: 3) { edges { node { body author { handle } } } } } } } }`,
  profile: `query Profile($handle: String!) { user(handle: $handle) { handle displayName bio followerCount followingCount
    postCount viewerIsFollowing posts(first: 12) { edges { node { id likeCount commentCount photos { url } } } } } }`,
  postDetail: `query Post($id: ID!) { post(id: $id) { caption createdAt likeCount commentCount viewerHasLiked
    author { handle displayName } photos { url width height }
    comments(first: 20) { edges { node { body createdAt author { handle } } } } } }`,
  explore: `query Explore { explore(first: 20) { edges { node { id likeCount commentCount author { handle } photos { url } } } } }`,
  like: `mutation Like($id: ID!) { likePost(input: { postId: $id }) { __typename } }`,
} as const;
type Screen = keyof typeof SCREENS;

const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
await client.connect();
const viewers = (
  await client.query<{ id: string }>(`SELECT id FROM users ORDER BY follower_count DESC, id LIMIT $1`, [
    Number(options.viewers),
  ])
).rows;
const handles = (
  await client.query<{ handle: string }>(`SELECT handle FROM users ORDER BY follower_count DESC LIMIT 500`)
).rows.map((r) => r.handle);
const posts = (await client.query<{ id: string }>(`SELECT id FROM posts ORDER BY like_count DESC LIMIT 2000`)).rows.map(
  (r) => r.id,
);
await client.end();
const tokens = await Promise.all(viewers.map(async (v) => (await startSession(v.id)).accessToken));

// A skewed choice (hot items are asked for more), deterministic so runs compare.
let seed = 7;
const rand = () => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31;
};
const skewed = <T>(items: T[]): T => items[Math.floor(items.length * rand() ** 2)] as T;

interface Sample {
  sql: number;
  roundTrips: number;
  hits: number;
  misses: number;
}
const stats = new Map<string, Sample[]>();
const seen = new Set<string>();

async function run(screen: Screen, variables: Record<string, unknown>, token?: string) {
  const response = await fetch(
    new Request("http://bench/graphql", {
      method: "POST",
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query: SCREENS[screen], variables }),
    }),
  );
  const body = (await response.json()) as {
    errors?: unknown[];
    extensions?: { sqlStatements: number; cache?: { roundTrips: number; hits: number; misses: number } };
  };
  if (body.errors) throw new Error(`${screen}: ${JSON.stringify(body.errors)}`);
  const key = `${screen}:${JSON.stringify(variables)}:${token ?? ""}`;
  const phase = seen.has(key) ? "repeat" : "first";
  seen.add(key);
  const cache = body.extensions?.cache ?? { roundTrips: 0, hits: 0, misses: 0 };
  const sample = { sql: body.extensions?.sqlStatements ?? 0, ...cache };
  for (const name of [`${screen}`, `${screen}/${phase}`]) stats.set(name, [...(stats.get(name) ?? []), sample]);
}

const total = Number(options.requests);
const started = performance.now();
for (let i = 0; i < total; i++) {
  const token = skewed(tokens);
  const roll = rand();
  if (roll < Number(options["write-ratio"])) await run("like", { id: encodeGlobalID("Post", skewed(posts)) }, token);
  else if (roll < 0.45) await run("feed", {}, token);
  else if (roll < 0.65) await run("profile", { handle: skewed(handles) }, token);
  else if (roll < 0.85) await run("postDetail", { id: encodeGlobalID("Post", skewed(posts)) }, token);
  else await run("explore", {});
  if ((i + 1) % 500 === 0) console.error(`  ${i + 1}/${total} requests`);
}
const seconds = (performance.now() - started) / 1000;

const mean = (samples: Sample[], field: keyof Sample) => samples.reduce((sum, s) => sum + s[field], 0) / samples.length;
const max = (samples: Sample[], field: keyof Sample) => Math.max(...samples.map((s) => s[field]));
console.log(
  `\n${total} requests in ${seconds.toFixed(1)} s (${process.env.REDIS_URL ? "Redis" : "in-process cache"})\n`,
);
console.log("| operation | requests | SQL/op (mean) | SQL/op (max) | cache round trips/op | cache hit ratio |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
for (const [name, samples] of [...stats.entries()].sort()) {
  const hits = samples.reduce((s, x) => s + x.hits, 0);
  const lookups = hits + samples.reduce((s, x) => s + x.misses, 0);
  console.log(
    `| ${name} | ${samples.length} | ${mean(samples, "sql").toFixed(2)} | ${max(samples, "sql")} | ${mean(samples, "roundTrips").toFixed(2)} | ${lookups ? `${((100 * hits) / lookups).toFixed(1)}%` : "–"} |`,
  );
}
const all = [...stats.entries()].filter(([name]) => !name.includes("/")).flatMap(([, s]) => s);
const hits = all.reduce((s, x) => s + x.hits, 0);
const lookups = hits + all.reduce((s, x) => s + x.misses, 0);
console.log(
  `\nall: ${mean(all, "sql").toFixed(2)} SQL statements/request, ${mean(all, "roundTrips").toFixed(2)} cache round trips/request, entity cache hit ratio ${lookups ? ((100 * hits) / lookups).toFixed(1) : "–"}%`,
);
await Promise.all([closeCache(), disconnectDb()]);
