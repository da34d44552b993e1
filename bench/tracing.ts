// `npm run bench:tracing`: what tracing costs. The bundled server (as `npm run bench` runs it) serves the same
// scenario three times — tracing off, on at 10 % sampling, on at 100 % — each exporting to an OTLP/HTTP sink in
// this process that accepts and counts what it is sent (a collector that costs nothing). Reports requests/s and
// latency of each, as ratios to "off", and the spans received.
//   npm run bench:tracing [-- --scenario feed-get] [--duration 15] [--warmup 5] [--connections 10]
import { execFile } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { Redis } from "ioredis";
import { ensureDatabase, loadFixtures, mobileDocuments } from "./data.ts";
import { drive } from "./drive.ts";
import type { Scenario } from "./scenarios.ts";
import { functionEnv, startServer } from "./servers.ts";

const root = new URL("..", import.meta.url).pathname;
const { values: options } = parseArgs({
  options: {
    scenario: { type: "string", default: "feed-get" },
    duration: { type: "string", default: "15" },
    warmup: { type: "string", default: "5" },
    connections: { type: "string", default: "10" },
    database: { type: "string", default: "shutter_bench" },
    out: { type: "string", default: join(root, "bench/results") },
    dist: { type: "string", default: join(root, "dist/functions") },
    size: { type: "string", default: "large" },
    rounds: { type: "string", default: "2" },
  },
});
const step = (line: string) => process.stderr.write(`${line}\n`);
const serverUrl = process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const scenario = options.scenario as Scenario;

step("build: bundling the functions");
await promisify(execFile)(process.execPath, ["scripts/build.ts", "--outdir", options.dist], { cwd: root });
step("data: preparing the database");
const large = options.size === "large";
const databaseUrl = await ensureDatabase(serverUrl, options.database, large ? "large" : "small", large ? 10_000 : 300);
const env = await functionEnv(databaseUrl, redisUrl, `${options.database}_tracing`);
Object.assign(process.env, env);
const { signAccessToken } = await import("../src/domain/auth.ts");
const fixtures = await loadFixtures(
  databaseUrl,
  500,
  async (userId) => (await signAccessToken({ userId, sessionId: crypto.randomUUID() })).token,
);

// The sink: a collector that accepts everything and counts the spans (OTLP JSON: "spanId" once per span).
let spans = 0;
const sink = createServer((request, response) => {
  let body = "";
  request.on("data", (chunk) => {
    body += chunk;
  });
  request.on("end", () => {
    if (request.url === "/v1/traces") spans += body.split('"spanId"').length - 1;
    response.writeHead(200, { "content-type": "application/json" }).end("{}");
  });
});
await new Promise<void>((resolve) => sink.listen(0, "127.0.0.1", resolve));
const endpoint = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;

const settings: { label: string; env: Record<string, string> }[] = [
  { label: "off", env: {} },
  { label: "on, 10 % sampled", env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_TRACES_SAMPLER_ARG: "0.1" } },
  { label: "on, 100 % sampled", env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_TRACES_SAMPLER_ARG: "1" } },
];
// The settings run in turn, forwards then backwards (off, 10 %, 100 %, 100 %, 10 %, off, …): the database's
// own caches warm as the run goes on, and would otherwise favour whichever setting runs last.
const order = Array.from({ length: Number(options.rounds) }, (_, round) =>
  round % 2 ? [...settings].reverse() : settings,
).flat();
const runs: { setting: string; load: Awaited<ReturnType<typeof drive>>; spans: number }[] = [];
for (const setting of order) {
  // Each from a cold entity cache, as the bench does.
  const redis = new Redis(redisUrl);
  for await (const keys of redis.scanStream({ match: `${env.REDIS_KEY_PREFIX}:*`, count: 1000 })) {
    if (keys.length) await redis.del(...keys);
  }
  redis.disconnect();
  const server = await startServer(`shutter (${setting.label})`, [join(options.dist, "server.mjs")], {
    ...env,
    ...setting.env,
  });
  try {
    const spec = {
      url: server.url,
      scenario,
      connections: Number(options.connections),
      fixtures,
      documents: mobileDocuments(),
    };
    step(`${setting.label}: ${options.warmup} s warm-up`);
    await drive({ ...spec, durationSec: Number(options.warmup) }, () => undefined);
    spans = 0;
    step(`${setting.label}: ${options.duration} s measured`);
    const load = await drive({ ...spec, durationSec: Number(options.duration) }, (second, rps) =>
      step(`  ${setting.label}: ${second}/${options.duration} s, ${rps} req/s`),
    );
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // the last batch of spans
    if (load.errors) throw new Error(`${setting.label}: ${load.errors} errors, e.g. ${load.errorSamples[0]}`);
    runs.push({ setting: setting.label, load, spans });
  } finally {
    await server.stop();
  }
}
sink.close();

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
const results = settings.map(({ label }) => {
  const mine = runs.filter((run) => run.setting === label);
  const requests = mine.reduce((n, run) => n + run.load.requests, 0);
  return {
    setting: label,
    rps: mean(mine.map((run) => run.load.rps)),
    p50: mean(mine.map((run) => run.load.latencyMs.p50)),
    p99: mean(mine.map((run) => run.load.latencyMs.p99)),
    runs: mine.map((run) => Math.round(run.load.rps)),
    spansPerRequest: mine.reduce((n, run) => n + run.spans, 0) / Math.max(1, requests),
  };
});
const off = results[0];
const lines = [
  `# Tracing cost (${scenario}, ${options.rounds} × ${options.duration} s per setting, ${options.connections} connections)`,
  "",
  `${new Date().toISOString()} · the bundled server exporting OTLP/HTTP to a sink in the bench process; means of the runs`,
  "",
  "| tracing | req/s | each run | p50 ms | p99 ms | req/s / off | p50 / off | spans per request |",
  "|---|--:|--:|--:|--:|--:|--:|--:|",
  ...results.map(
    (r) =>
      `| ${r.setting} | ${Math.round(r.rps)} | ${r.runs.join(", ")} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${(r.rps / (off?.rps ?? 1)).toFixed(2)}× | ${(r.p50 / (off?.p50 ?? 1)).toFixed(2)}× | ${r.spansPerRequest.toFixed(1)} |`,
  ),
  "",
];
mkdirSync(options.out, { recursive: true });
writeFileSync(
  join(options.out, "tracing.json"),
  `${JSON.stringify({ date: new Date().toISOString(), scenario, results, runs }, null, 2)}\n`,
);
writeFileSync(join(options.out, "tracing.md"), lines.join("\n"));
process.stdout.write(lines.join("\n"));
process.exit(0);
