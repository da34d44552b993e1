// Where Shutter's server spends its CPU under one scenario's load: runs the server from source (readable
// function names) with V8's sampling profiler, drives the scenario, and prints self time by package and by
// function; the .cpuprofile is kept for Chrome DevTools or speedscope. Uses the data set `npm run bench` seeded.
//   node bench/profile.ts [--scenario feed-get] [--duration 10] [--connections 10] [--out /tmp/shutter-profile]
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { mobileDocuments } from "./data.ts";
import { drive } from "./drive.ts";
import type { Scenario } from "./scenarios.ts";
import { seededLoad, startServer } from "./servers.ts";

const { values: options } = parseArgs({
  options: {
    scenario: { type: "string", default: "feed-get" },
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "10" },
    database: { type: "string", default: "shutter_bench" },
    out: { type: "string", default: "/tmp/shutter-profile" },
  },
});
const scenario = options.scenario as Scenario;
const { env, fixtures } = await seededLoad(options.database, `${options.database}-profile`, 200);
const server = await startServer(
  "shutter",
  ["--cpu-prof", `--cpu-prof-dir=${options.out}`, "functions/server.ts"],
  env,
);
const spec = {
  url: server.url,
  scenario,
  connections: Number(options.connections),
  fixtures,
  documents: mobileDocuments(),
};
const progress = (second: number, rps: number) => process.stderr.write(`  ${scenario}: ${second} s, ${rps} req/s\n`);
await drive({ ...spec, durationSec: 3 }, progress); // warm-up
const result = await drive({ ...spec, durationSec: Number(options.duration) }, progress);
await server.stop();
process.stderr.write(`${JSON.stringify(result)}\n`);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
const file = readdirSync(options.out)
  .filter((name) => name.endsWith(".cpuprofile"))
  .sort()
  .pop();
if (!file) throw new Error(`no .cpuprofile in ${options.out}`);
const profile: { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] } = JSON.parse(
  readFileSync(join(options.out, file), "utf8"),
);
const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
const where = ({ functionName, url }: ProfileNode["callFrame"]) => {
  if (!url) return functionName.startsWith("(") ? functionName : "(native)";
  return (
    /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? url.replace(/^file:\/\/.*?\/(src|functions|schema)\//, "$1/")
  );
};
const byPackage = new Map<string, number>();
const byFunction = new Map<string, number>();
let total = 0;
profile.samples.forEach((id, i) => {
  const frame = nodes.get(id)?.callFrame;
  const dt = profile.timeDeltas[i] ?? 0;
  if (!frame) return;
  total += dt;
  const place = where(frame);
  byPackage.set(place, (byPackage.get(place) ?? 0) + dt);
  const name = `${frame.functionName || "(anonymous)"} ${place}:${frame.lineNumber + 1}`;
  byFunction.set(name, (byFunction.get(name) ?? 0) + dt);
});
const top = (title: string, map: Map<string, number>) => {
  console.log(`\n${title}`);
  for (const [name, time] of [...map].sort((a, b) => b[1] - a[1]).slice(0, 20)) {
    console.log(`${((time / total) * 100).toFixed(1).padStart(6)} %  ${name}`);
  }
};
top("Self time by package (or file):", byPackage);
top("Self time by function:", byFunction);
console.log(`\nprofile: ${join(options.out, file)}`);
