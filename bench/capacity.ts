// `npm run bench:capacity`: the measurements behind the capacity model (docs/scaling.md).
//   REDIS_CLUSTER_URL=… REPLICA_PRIMARY_URL=… REPLICA_STANDBY_URL=… npm run bench:capacity [-- --duration 4]
// (scripts/redis-cluster.sh and scripts/pg-replica.sh start those.) For each request type, what one request costs
// the shared parts — Redis commands and round trips, SQL statements on the primary and on the replica — on one
// Redis node, on a Redis Cluster, and on a cluster with a read replica; what one Redis shard, one primary and one
// replica sustain on this machine; and from those the fleet that 1k, 10k and 100k requests per second need, with
// the first bottleneck at each step. Writes bench/results/capacity.json and capacity.md.
import { execFile } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { Cluster, Redis } from "ioredis";
import { ensureDatabase, type Fixtures, loadFixtures, mobileDocuments } from "./data.ts";
import { drive } from "./drive.ts";
import type { Scenario } from "./scenarios.ts";
import { functionEnv, startServer } from "./servers.ts";

const root = new URL("..", import.meta.url).pathname;
const run = promisify(execFile);
const { values: options } = parseArgs({
  options: {
    duration: { type: "string", default: "4" },
    connections: { type: "string", default: "10" },
    out: { type: "string", default: join(root, "bench/results") },
  },
});
const durationSec = Number(options.duration);
const step = (line: string) => process.stderr.write(`${line}\n`);

const singleUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const clusterUrl = process.env.REDIS_CLUSTER_URL;
const primaryServer = process.env.REPLICA_PRIMARY_URL;
const standbyServer = process.env.REPLICA_STANDBY_URL;
if (!clusterUrl || !primaryServer || !standbyServer) {
  throw new Error(
    'Set REDIS_CLUSTER_URL, REPLICA_PRIMARY_URL and REPLICA_STANDBY_URL: eval "$(scripts/redis-cluster.sh start)"; eval "$(scripts/pg-replica.sh start)"',
  );
}

/** The request mix the model assumes: what a photo app's clients send, by screen (writes: likes, comments, follows). */
const MIX: Record<string, number> = { feed: 0.35, post: 0.25, profile: 0.2, explore: 0.15, "write-mix": 0.05 };
const SCENARIOS = Object.keys(MIX) as Scenario[];

step("build: bundling the functions");
const dist = join(root, "dist/functions");
await run(process.execPath, ["scripts/build.ts", "--outdir", dist], { cwd: root });

step("data: the small data set on the replica pair's primary");
const database = "shutter_capacity";
const databaseUrl = await ensureDatabase(primaryServer, database, "small", 300);
const replicaUrl = Object.assign(new URL(standbyServer), { pathname: `/${database}` }).toString();
const base = await functionEnv(databaseUrl, singleUrl, database);
Object.assign(process.env, base);
const { signAccessToken } = await import("../src/domain/auth.ts");
const fixtures: Fixtures = await loadFixtures(
  databaseUrl,
  100,
  async (userId) => (await signAccessToken({ userId, sessionId: crypto.randomUUID() })).token,
);
const documents = mobileDocuments();

/** Every master of the Redis at `url` (one node, or each master of a cluster). */
async function masters(url: string, cluster: boolean): Promise<Redis[]> {
  if (!cluster) return [new Redis(url)];
  const seed = new URL(url);
  const client = new Cluster([{ host: seed.hostname, port: Number(seed.port) }]);
  await new Promise((resolve) => client.once("ready", resolve));
  const nodes = client.nodes("master").map((node) => new Redis({ host: node.options.host, port: node.options.port }));
  client.disconnect();
  return nodes;
}

/** Commands Redis executed so far, summed over the nodes (INFO commandstats). */
async function commandsSoFar(nodes: Redis[]): Promise<number> {
  let total = 0;
  for (const node of nodes) {
    const stats = await node.info("commandstats");
    for (const match of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      if (!["info", "cluster", "ping", "command"].includes(match[1] as string)) total += Number(match[2]);
    }
  }
  return total;
}

async function flush(nodes: Redis[]) {
  for (const node of nodes) {
    for await (const keys of node.scanStream({ match: `${database}:*`, count: 1000 })) {
      for (const key of keys as string[]) await node.unlink(key).catch(() => {});
    }
  }
}

interface Cost {
  rps: number;
  meanMs: number;
  redisCommands: number;
  redisRoundTrips: number;
  sqlPrimary: number;
  sqlReplica: number;
}

const setups = [
  { name: "one Redis node, primary only", redisUrl: singleUrl, cluster: false, replica: false },
  { name: "Redis Cluster (3 shards), primary only", redisUrl: clusterUrl, cluster: true, replica: false },
  { name: "Redis Cluster (3 shards), primary + 1 replica", redisUrl: clusterUrl, cluster: true, replica: true },
];
const costs: Record<string, Record<string, Cost>> = {};
for (const setup of setups) {
  const env = {
    ...base,
    REDIS_URL: setup.redisUrl,
    ...(setup.cluster ? { REDIS_CLUSTER: "true", REDIS_WAIT_REPLICAS: "1" } : {}),
    ...(setup.replica ? { DATABASE_REPLICA_URLS: replicaUrl } : {}),
  };
  const nodes = await masters(setup.redisUrl, setup.cluster);
  await flush(nodes);
  const server = await startServer("shutter", [join(dist, "server.mjs")], env);
  const costOf: Record<string, Cost> = {};
  costs[setup.name] = costOf;
  try {
    for (const scenario of SCENARIOS) {
      const spec = { url: server.url, scenario, connections: Number(options.connections), fixtures, documents };
      await drive({ ...spec, durationSec: 2 }, () => {});
      server.resetLogs();
      const before = await commandsSoFar(nodes);
      const load = await drive({ ...spec, durationSec }, (second, rps) =>
        step(`  ${setup.name}, ${scenario}: ${second}/${durationSec} s, ${rps} req/s`),
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      const commands = (await commandsSoFar(nodes)) - before;
      const logged = server.logs.filter((line) => line.msg === "request" && line.path === "/graphql");
      const per = (field: string) =>
        logged.reduce((total, line) => total + Number(line[field] ?? 0), 0) / Math.max(1, logged.length);
      const replica = per("replicaStatements");
      costOf[scenario] = {
        rps: Math.round(load.rps),
        meanMs: Math.round(load.latencyMs.mean * 10) / 10,
        redisCommands: round(commands / Math.max(1, logged.length)),
        redisRoundTrips: round(per("cacheRoundTrips")),
        sqlPrimary: round(per("sqlStatements") - replica),
        sqlReplica: round(replica),
      };
      if (load.errors) step(`  ${scenario}: ${load.errors} errors, e.g. ${load.errorSamples[0]}`);
    }
  } finally {
    await server.stop();
    for (const node of nodes) node.disconnect();
  }
}

step("parts: what one Redis node, the primary and the replica sustain on this machine");
const redisBench = await run("redis-benchmark", [
  "-p",
  new URL(singleUrl).port || "6379",
  "-t",
  "get",
  "-n",
  "400000",
  "-c",
  "50",
  "-P",
  "16",
  "--csv",
]);
const redisOpsPerSec = Number(/"GET","([\d.]+)"/.exec(redisBench.stdout)?.[1] ?? 0);
const pgbench = async (server: string, extra: string[]) => {
  const url = Object.assign(new URL(server), { pathname: "/shutter_capacity_pgbench" });
  return run("pgbench", [...extra, url.toString()], { maxBuffer: 1 << 24 });
};
const admin = Object.assign(new URL(primaryServer), { pathname: "/postgres" }).toString();
await run("psql", [admin, "-qc", "DROP DATABASE IF EXISTS shutter_capacity_pgbench"]);
await run("psql", [admin, "-qc", "CREATE DATABASE shutter_capacity_pgbench"]);
await pgbench(primaryServer, ["-i", "-q", "-s", "10"]);
await new Promise((resolve) => setTimeout(resolve, 2_000)); // the standby replays the initialization
const tps = (output: string) => Number(/tps = ([\d.]+)/.exec(output)?.[1] ?? 0);
// The shape of most of Shutter's statements: a DataLoader batch, 20 rows by primary key in one statement.
const batchFile = join(os.tmpdir(), "shutter-capacity-batch.sql");
writeFileSync(
  batchFile,
  `${Array.from({ length: 20 }, (_, i) => `\\set a${i} random(1, 1000000)`).join("\n")}\n` +
    `SELECT aid, abalance FROM pgbench_accounts WHERE aid = ANY(ARRAY[${Array.from({ length: 20 }, (_, i) => `:a${i}`).join(", ")}]);\n`,
);
const measurePart = async (server: string) => ({
  lookups: tps((await pgbench(server, ["-S", "-c", "8", "-j", "2", "-T", "6", "-n"])).stdout),
  batches: tps((await pgbench(server, ["-f", batchFile, "-c", "8", "-j", "2", "-T", "6", "-n"])).stdout),
});
const primaryPart = await measurePart(primaryServer);
const replicaPart = await measurePart(standbyServer);
await run("psql", [admin, "-qc", "DROP DATABASE IF EXISTS shutter_capacity_pgbench"]);

// The model: per request of the mix, on the scaled-out setup; each part run at half its measured capacity.
const scaled = costs[setups[2]!.name]!;
const weighted = (field: keyof Cost) =>
  SCENARIOS.reduce((total, s) => total + (MIX[s] ?? 0) * (scaled[s]?.[field] ?? 0), 0);
const perRequest = {
  redisCommands: round(weighted("redisCommands")),
  sqlPrimary: round(weighted("sqlPrimary")),
  sqlReplica: round(weighted("sqlReplica")),
  meanMs: round(weighted("meanMs")),
};
const HEADROOM = 0.5;
const POOL_PER_INSTANCE = 2;
const fleet = [1_000, 10_000, 100_000].map((rate) => {
  const redisShards = Math.max(1, Math.ceil((rate * perRequest.redisCommands) / (redisOpsPerSec * HEADROOM)));
  // Each statement counted as one 20-row batch (most are; the feed's list read is heavier, a single row lighter).
  const primaryLoad = (rate * perRequest.sqlPrimary) / (primaryPart.batches * HEADROOM);
  const replicas = Math.ceil((rate * perRequest.sqlReplica) / (replicaPart.batches * HEADROOM));
  // Little's law with the latency measured here (Lambda adds its own ~1 ms per invocation).
  const concurrency = Math.ceil((rate * (perRequest.meanMs + 1)) / 1000);
  const proxyClientConnections = concurrency * POOL_PER_INSTANCE;
  const replicaConnections = replicas ? Math.ceil(proxyClientConnections / replicas) : 0;
  const limits = [
    { name: "the primary (statements no replica may take)", use: primaryLoad },
    { name: "Lambda concurrency (1,000 per account and region by default)", use: concurrency / 1000 },
    {
      name: "connections per replica (max_connections ~5,000 on a large RDS instance, no proxy in front)",
      use: replicaConnections / 5000,
    },
    { name: "Redis shards beyond ElastiCache's 500 per cluster", use: redisShards / 500 },
  ].sort((a, b) => b.use - a.use);
  return {
    rate,
    redisCommandsPerSec: Math.round(rate * perRequest.redisCommands),
    redisShards,
    primaryStatementsPerSec: Math.round(rate * perRequest.sqlPrimary),
    primaryUse: round(primaryLoad),
    replicaStatementsPerSec: Math.round(rate * perRequest.sqlReplica),
    replicas,
    lambdaConcurrency: concurrency,
    proxyClientConnections,
    firstBottleneck: limits[0]!.name,
  };
});

const results = {
  at: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30) },
  durationSec,
  connections: Number(options.connections),
  costs,
  parts: { redisGetsPerSec: redisOpsPerSec, primary: primaryPart, replica: replicaPart },
  mix: MIX,
  perRequest,
  assumptions: { headroom: HEADROOM, poolPerInstance: POOL_PER_INSTANCE },
  fleet,
};
mkdirSync(options.out, { recursive: true });
writeFileSync(join(options.out, "capacity.json"), `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(join(options.out, "capacity.md"), markdown(results));
process.stdout.write(markdown(results));

function n(value: number) {
  return Math.round(value).toLocaleString("en");
}

function round(value: number) {
  return Math.round(value * 100) / 100;
}

function markdown(r: typeof results): string {
  const lines = [
    `# Capacity measurements (${r.at.slice(0, 10)}, ${r.machine.cpus} × ${r.machine.model})`,
    "",
    `Per request, under ${r.connections} connections for ${r.durationSec} s each (\`npm run bench:capacity\`).`,
    "",
    "| setup | request | req/s | mean ms | Redis commands | Redis round trips | SQL primary | SQL replica |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const [setup, byScenario] of Object.entries(r.costs)) {
    for (const [scenario, c] of Object.entries(byScenario)) {
      lines.push(
        `| ${setup} | ${scenario} | ${c.rps} | ${c.meanMs} | ${c.redisCommands} | ${c.redisRoundTrips} | ${c.sqlPrimary} | ${c.sqlReplica} |`,
      );
    }
  }
  lines.push(
    "",
    `Parts on this machine: one Redis node ${n(r.parts.redisGetsPerSec)} GETs/s (16 per round trip); ` +
      `the primary ${n(r.parts.primary.lookups)} primary-key lookups/s or ${n(r.parts.primary.batches)} 20-row batches/s, ` +
      `the replica ${n(r.parts.replica.lookups)} or ${n(r.parts.replica.batches)} (pgbench, 8 clients, scale 10).`,
    "",
    `The mix (${Object.entries(r.mix)
      .map(([s, w]) => `${s} ${Math.round(w * 100)} %`)
      .join(
        ", ",
      )}) costs per request ${r.perRequest.redisCommands} Redis commands, ${r.perRequest.sqlPrimary} statements on the primary and ${r.perRequest.sqlReplica} on replicas, ${r.perRequest.meanMs} ms.`,
    "",
    "| req/s | Redis commands/s | shards | primary statements/s | primary use | replica statements/s | replicas | Lambda concurrency | proxy client connections | first bottleneck |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ...r.fleet.map(
      (f) =>
        `| ${f.rate.toLocaleString("en")} | ${f.redisCommandsPerSec.toLocaleString("en")} | ${f.redisShards} | ${f.primaryStatementsPerSec.toLocaleString("en")} | ${Math.round(f.primaryUse * 100)} % | ${f.replicaStatementsPerSec.toLocaleString("en")} | ${f.replicas} | ${f.lambdaConcurrency.toLocaleString("en")} | ${f.proxyClientConnections.toLocaleString("en")} | ${f.firstBottleneck} |`,
    ),
    "",
  );
  return lines.join("\n");
}
