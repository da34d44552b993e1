// `npm run bench`: how fast Shutter is, against floors measured in the same run.
//   npm run bench [-- --scenario feed,explore] [--duration 15] [--warmup 5] [--connections 10]
//                 [--compare bench/results/latest.json] [--out bench/results] [--smoke]
//                 [--database shutter_bench] [--dist dist/functions] [--viewers 500] [--cold-runs 7]
// Builds the bundle, seeds the `large` data set once (reused later), starts the bundled server (as a container
// runs it) against the real PostgreSQL (DATABASE_URL) and Redis (REDIS_URL), then drives each scenario from a
// separate autocannon process: warm-up, then the measured period. The floors run the same way. Cold starts are
// measured last. Writes latest.json, latest.md and latest.svg to the output directory.
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join, resolve as resolvePath } from "node:path";
import { isDeepStrictEqual, parseArgs, promisify } from "node:util";
import { Redis } from "ioredis";
import pg from "pg";
import { measureColdStarts } from "./cold-start.ts";
import { ensureDatabase, type Fixtures, loadFixtures, mobileDocuments } from "./data.ts";
import { drive } from "./drive.ts";
import { canonical } from "./peer/compare.ts";
import { PEER_DOCUMENTS } from "./peer/documents.ts";
import { type FloorResult, markdown, type PeerResult, type Results, type ScenarioResult, svg } from "./report.ts";
import { type Documents, PEER_SCREENS, peerVariables, SCENARIOS, type Scenario } from "./scenarios.ts";
import { functionEnv, type Server, startServer } from "./servers.ts";

const root = new URL("..", import.meta.url).pathname;
const { values: options } = parseArgs({
  options: {
    scenario: { type: "string" },
    duration: { type: "string" },
    warmup: { type: "string" },
    connections: { type: "string", default: "10" },
    viewers: { type: "string" },
    "cold-runs": { type: "string" },
    compare: { type: "string" },
    out: { type: "string", default: join(root, "bench/results") },
    smoke: { type: "boolean", default: false },
    // Where the data set lives (a database on DATABASE_URL's server; also the Redis key prefix) and the bundle.
    database: { type: "string" },
    dist: { type: "string", default: join(root, "dist/functions") },
  },
});
const smoke = options.smoke;
const durationSec = Number(options.duration ?? (smoke ? 2 : 15));
const warmupSec = Number(options.warmup ?? (smoke ? 1 : 5));
const connections = Number(options.connections);
const viewerCount = Number(options.viewers ?? (smoke ? 50 : 500));
const coldRuns = Number(options["cold-runs"] ?? (smoke ? 1 : 7));
const scenarios = (options.scenario?.split(",") ?? Object.keys(SCENARIOS)) as Scenario[];
for (const name of scenarios) {
  if (!(name in SCENARIOS)) throw new Error(`unknown scenario ${name}; known: ${Object.keys(SCENARIOS).join(", ")}`);
}
const previous: Results | undefined = options.compare ? JSON.parse(readFileSync(options.compare, "utf8")) : undefined;

const step = (line: string) => process.stderr.write(`${line}\n`);
const serverUrl = process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

step("build: bundling the functions");
const dist = resolvePath(options.dist);
const bundle = (await promisify(execFile)(process.execPath, ["scripts/build.ts", "--outdir", dist], { cwd: root }))
  .stdout;

step("data: preparing the database");
const database = options.database ?? (smoke ? "shutter_bench_smoke" : "shutter_bench");
const databaseUrl = smoke
  ? await ensureDatabase(serverUrl, database, "small", 300)
  : await ensureDatabase(serverUrl, database, "large", 10_000);

const env: Record<string, string> = await functionEnv(databaseUrl, redisUrl, database);
Object.assign(process.env, env); // the tokens below are signed with the function's own code and key
const { signAccessToken } = await import("../src/domain/auth.ts");
const fixtures: Fixtures = await loadFixtures(
  databaseUrl,
  viewerCount,
  async (userId) => (await signAccessToken({ userId, sessionId: crypto.randomUUID() })).token,
);
const documents: Documents = mobileDocuments();

// Every run starts from a cold cache; each scenario's warm-up fills what it needs.
const redis = new Redis(redisUrl);
for await (const keys of redis.scanStream({ match: `${env.REDIS_KEY_PREFIX}:*`, count: 1000 })) {
  if (keys.length) await redis.del(...keys);
}
redis.disconnect();

const servers: Server[] = [];
process.once("SIGINT", () => void Promise.all(servers.map((s) => s.stop())).then(() => process.exit(130)));

step("servers: starting Shutter (the bundled server.mjs), the floors and the peer (PostGraphile)");
const shutter = await startServer("shutter", [join(dist, "server.mjs")], env);
const dataFloor = await startServer("data floor", ["bench/floors.ts", "data"], env);
const transportFloor = await startServer("transport floor", ["bench/floors.ts", "transport"], env);
const peer = await startServer("PostGraphile", ["bench/peer.ts"], { ...env, GRAPHILE_ENV: "production" });
servers.push(shutter, dataFloor, transportFloor, peer);

try {
  await checkFloorAnswersLikeShutter();
  await checkPeerAnswersLikeShutter();

  // Every server warmed on every screen before anything is measured: the first scenario measured would otherwise
  // pay for a cold database and cache that the later ones (and the other servers) are served warm.
  step("warm-up: every screen on each server once");
  const warmedOnPeer = new Set<string>();
  for (const name of scenarios) {
    const screen = PEER_SCREENS[name];
    if (screen && !warmedOnPeer.has(screen)) {
      warmedOnPeer.add(screen);
      await runLoad(`${name} (PostGraphile)`, peer, name, warmupSec, true, true);
    }
    await runLoad(name, shutter, name, warmupSec, true, false);
  }

  const floors: FloorResult[] = [];
  for (const [name, server, description] of [
    ["transport", transportFloor, "constant JSON from node:http + @whatwg-node/server (Shutter's HTTP stack)"],
    ["data", dataFloor, "the feed JSON from one hand-written SQL statement via pg on node:http"],
  ] as const) {
    const { load, maxRssMiB } = await measure(`${name} floor`, server, "feed");
    floors.push({ name, description, load, maxRssMiB });
  }

  const results: ScenarioResult[] = [];
  // The peer is measured once per screen: its GET scenarios are its POST ones (it has no persisted documents).
  const peerByScreen = new Map<string, PeerResult>();
  for (const name of scenarios) {
    const screen = PEER_SCREENS[name];
    if (screen && !peerByScreen.has(screen)) {
      peerByScreen.set(screen, { screen, ...(await measure(`${name} (PostGraphile)`, peer, name, true)) });
    }
    const { load, maxRssMiB } = await measure(name, shutter, name);
    const logged = shutter.logs.filter((line) => line.msg === "request" && line.path === "/graphql");
    const sum = (field: string) => logged.reduce((total, line) => total + Number(line[field] ?? 0), 0);
    const hits = sum("cacheHits");
    const misses = sum("cacheMisses");
    results.push({
      name,
      description: SCENARIOS[name],
      load,
      sqlPerRequest: sum("sqlStatements") / Math.max(1, logged.length),
      redisRoundTripsPerRequest: sum("cacheRoundTrips") / Math.max(1, logged.length),
      cacheHitRatio: hits + misses ? hits / (hits + misses) : null,
      responseCacheHitRatio:
        logged.filter((line) => String(line.responseCache ?? "").startsWith("hit")).length / Math.max(1, logged.length),
      maxRssMiB,
      peer: screen ? peerByScreen.get(screen) : undefined,
    });
  }

  await Promise.all(servers.map((server) => server.stop()));

  step("cold start: new processes, one invocation each");
  const coldStart = await measureColdStarts(
    [
      { label: "hello world", module: "bench/hello.mjs", export: "handler" },
      { label: "Shutter, bundled (as deployed)", module: join(dist, "graphql.mjs"), export: "handler" },
      { label: "Shutter, from source", module: "functions/graphql.ts", export: "handler" },
    ],
    { runs: coldRuns, env, prefix: (fixtures.handles[0] ?? "a").slice(0, 3), progress: (line) => step(`  ${line}`) },
  );

  const report: Results = {
    version: 1,
    date: new Date().toISOString(),
    commit: await commit(),
    options: { durationSec, warmupSec, connections, viewers: viewerCount, smoke },
    machine: await machine(),
    dataSet: await dataSet(),
    floors,
    scenarios: results,
    coldStart,
    bundle,
  };
  mkdirSync(options.out, { recursive: true });
  writeFileSync(join(options.out, "latest.json"), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(options.out, "latest.md"), markdown(report, previous));
  writeFileSync(join(options.out, "latest.svg"), svg(report));
  step(`report: ${join(options.out, "latest.md")}`);
} finally {
  await Promise.all(servers.map((server) => server.stop()));
}

/** Warm-up, then the measured period, of one scenario against one server; max RSS over the measured period. */
async function measure(label: string, server: Server, scenario: Scenario, isPeer = false) {
  step(`${label}: ${warmupSec} s warm-up`);
  await runLoad(label, server, scenario, warmupSec, true, isPeer);
  server.resetLogs();
  let maxRssMiB = server.rssMiB();
  const sampler = setInterval(() => {
    const rss = server.rssMiB();
    if (rss !== null && (maxRssMiB === null || rss > maxRssMiB)) maxRssMiB = rss;
  }, 250);
  step(`${label}: ${durationSec} s measured`);
  const load = await runLoad(label, server, scenario, durationSec, false, isPeer);
  clearInterval(sampler);
  await new Promise((resolve) => setTimeout(resolve, 200)); // the last request log lines
  if (load.errors) step(`${label}: ${load.errors} errors, e.g. ${load.errorSamples[0]}`);
  return { load, maxRssMiB };
}

/** autocannon in a process of its own, with progress. */
function runLoad(label: string, server: Server, scenario: Scenario, seconds: number, warmup: boolean, peer: boolean) {
  return drive(
    { url: server.url, scenario, durationSec: seconds, connections, fixtures, documents, peer },
    (second, rps) => step(`  ${label}${warmup ? " (warm-up)" : ""}: ${second}/${seconds} s, ${rps} req/s`),
  );
}

/**
 * PostGraphile must serve the same data as Shutter for every screen it is compared on, or its ratios mean
 * nothing: each screen is asked of both, for three viewers, posts and people, and compared in one shape.
 */
async function checkPeerAnswersLikeShutter() {
  const ask = async (server: Server, body: unknown, token?: string) => {
    const response = await fetch(`${server.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    const json = (await response.json()) as { data?: Record<string, unknown>; errors?: unknown };
    if (json.errors || !json.data) throw new Error(`${server.label}: ${JSON.stringify(json).slice(0, 1500)}`);
    return canonical(json.data);
  };
  const cases = [0, 1, 2].flatMap((i) => {
    const token = fixtures.viewers[i]?.token;
    const of = { postId: fixtures.posts[i] as string, handle: fixtures.handles[i] as string };
    return [
      { screen: "Feed", variables: { first: 20 }, of, token },
      { screen: "PostDetail", variables: { id: of.postId }, of, token },
      { screen: "Profile", variables: { handle: of.handle }, of, token },
      { screen: "Explore", variables: {}, of, token: undefined },
    ] as const;
  });
  for (const { screen, variables, of, token } of cases) {
    const [expected, actual] = await Promise.all([
      ask(shutter, { documentId: documents[screen]?.id, variables }, token),
      ask(peer, { query: PEER_DOCUMENTS[screen], variables: peerVariables(screen, of) }, token),
    ]);
    if (!isDeepStrictEqual(expected, actual)) {
      throw new Error(
        `PostGraphile's ${screen} differs from Shutter's (${JSON.stringify(variables)}):\nShutter:      ${JSON.stringify(expected).slice(0, 1500)}\nPostGraphile: ${JSON.stringify(actual).slice(0, 1500)}`,
      );
    }
  }
  step(`check: PostGraphile serves the same data as Shutter on every screen (${cases.length} requests each)`);
}

/** The data floor must answer exactly what Shutter answers, or its ratios mean nothing. */
async function checkFloorAnswersLikeShutter() {
  for (const viewer of fixtures.viewers.slice(0, 3)) {
    const ask = async (server: Server) => {
      const response = await fetch(`${server.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${viewer.token}` },
        body: JSON.stringify({ documentId: documents.Feed?.id, variables: { first: 20 } }),
      });
      return response.json() as Promise<{ data?: { feed: { edges: unknown[] } } }>;
    };
    const [expected, actual] = await Promise.all([ask(shutter), ask(dataFloor)]);
    // The data, exactly (Shutter's answer also reports its cost in `extensions`, which the floor has no budget for).
    if (!expected.data?.feed.edges.length || !isDeepStrictEqual(expected.data, actual.data)) {
      throw new Error(
        `the data floor's feed differs from Shutter's for viewer ${viewer.id}:\nShutter: ${JSON.stringify(expected).slice(0, 1500)}\nfloor:   ${JSON.stringify(actual).slice(0, 1500)}`,
      );
    }
  }
  step("check: the data floor's feed is identical to Shutter's (3 viewers)");
}

async function commit() {
  const run = (args: string[]) => promisify(execFile)("git", args, { cwd: root }).then((r) => r.stdout.trim());
  try {
    const dirty = (await run(["status", "--porcelain", "--", "src", "schema", "functions", "prisma"]))
      ? "+changes"
      : "";
    return `${await run(["rev-parse", "--short", "HEAD"])}${dirty}`;
  } catch {
    return "unknown";
  }
}

async function machine(): Promise<Record<string, string>> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const postgres = (await client.query("SHOW server_version")).rows[0].server_version;
  await client.end();
  const redisClient = new Redis(redisUrl);
  const redisVersion = /redis_version:(\S+)/.exec(await redisClient.info("server"))?.[1] ?? "?";
  redisClient.disconnect();
  const cpus = os.cpus();
  return {
    CPU: `${cpus.length} × ${cpus[0]?.model ?? "unknown"}`,
    Memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    OS: `${os.type()} ${os.release()} (${os.arch()})`,
    "Node.js": process.version,
    PostgreSQL: `${postgres} (same machine)`,
    Redis: `${redisVersion} (same machine)`,
  };
}

async function dataSet(): Promise<Record<string, number>> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const { rows } = await client.query(
    `SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM posts) AS posts,
            (SELECT count(*) FROM likes) AS likes, (SELECT count(*) FROM comments) AS comments,
            (SELECT count(*) FROM follows) AS follows`,
  );
  await client.end();
  return Object.fromEntries(Object.entries(rows[0]).map(([k, v]) => [k, Number(v)]));
}
