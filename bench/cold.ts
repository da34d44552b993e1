// `npm run bench:cold`: the cold start alone, to A/B a change in seconds rather than a whole `npm run bench`.
//   npm run bench:cold [-- --runs 9] [--dist dist/functions] [--against /path/to/other/dist] [--source]
// Builds the bundle (unless --no-build), prepares the small data set, then starts a new process per run for the
// hello-world handler, the bundle and (--against) a second bundle, interleaved so the machine's noise falls on all
// alike, and prints each one's median, its ratio to hello world and where the time went (the stages of the
// report's cold-start table).
import { execFile } from "node:child_process";
import { join, resolve } from "node:path";
import { parseArgs, promisify } from "node:util";
import { type ColdStartVariant, measureColdStarts } from "./cold-start.ts";
import { ensureDatabase } from "./data.ts";
import { functionEnv } from "./servers.ts";

const root = new URL("..", import.meta.url).pathname;
const { values: options } = parseArgs({
  options: {
    runs: { type: "string", default: "9" },
    dist: { type: "string", default: join(root, "dist/functions") },
    against: { type: "string" },
    source: { type: "boolean", default: false },
    "no-build": { type: "boolean", default: false },
  },
});
const step = (line: string) => process.stderr.write(`${line}\n`);
const dist = resolve(options.dist);
if (!options["no-build"]) {
  step("build: bundling the functions");
  await promisify(execFile)(process.execPath, ["scripts/build.ts", "--outdir", dist], { cwd: root });
}
step("data: preparing the database");
const serverUrl = process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
const database = "shutter_bench_smoke";
const databaseUrl = await ensureDatabase(serverUrl, database, "small", 300);
const env = await functionEnv(databaseUrl, process.env.REDIS_URL ?? "redis://127.0.0.1:6379", database);

const variants: ColdStartVariant[] = [
  { label: "hello world", module: "bench/hello.mjs", export: "handler" },
  { label: `bundle ${options.dist}`, module: join(dist, "graphql.mjs"), export: "handler" },
];
if (options.against) {
  variants.push({
    label: `bundle ${options.against}`,
    module: join(resolve(options.against), "graphql.mjs"),
    export: "handler",
  });
}
if (options.source) variants.push({ label: "from source", module: "functions/graphql.ts", export: "handler" });

const results = await measureColdStarts(variants, {
  runs: Number(options.runs),
  env,
  prefix: "a",
  progress: step,
});
const hello = results[0]?.medianMs ?? 1;
for (const result of results) {
  console.log(
    `\n${result.label}: median ${result.medianMs} ms (min ${result.minMs}, max ${result.maxMs}), ${(result.medianMs / hello).toFixed(2)}× hello world`,
  );
  for (const stage of result.stages) console.log(`  ${String(stage.ms).padStart(7)} ms  ${stage.label}`);
}
