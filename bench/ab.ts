// `npm run bench:ab`: two bundles (or a bundle and the transport floor) under one scenario's load, interleaved, to
// A/B a change in a minute rather than a whole `npm run bench`: each round drives each server in turn, so the
// machine's noise (±25 % between runs here) falls on both alike. Reports each round's requests/s and the server's
// own CPU time per request (user + system, from /proc: what a request costs, whatever else the machine is doing).
//   npm run bench:ab -- <dist A> <dist B | transport> [--scenario explore-get] [--rounds 6] [--seconds 4]
//                       [--env '{"REDIS_CLUSTER":"true","REDIS_URL":"redis://127.0.0.1:7000"}']
// Uses the data set `npm run bench` seeded; `dist` is a build's output (npm run build: dist/functions).
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { mobileDocuments } from "./data.ts";
import { drive } from "./drive.ts";
import type { Scenario } from "./scenarios.ts";
import { type Server, seededLoad, startServer } from "./servers.ts";

const { values: options, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    scenario: { type: "string", default: "explore-get" },
    rounds: { type: "string", default: "6" },
    seconds: { type: "string", default: "4" },
    env: { type: "string", default: "{}" },
    database: { type: "string", default: "shutter_bench" },
  },
});
if (positionals.length !== 2) {
  process.stderr.write("usage: npm run bench:ab -- <dist A> <dist B | transport> [--scenario explore-get]\n");
  process.exit(2);
}
const { env, fixtures } = await seededLoad(options.database, `${options.database}-ab`, 50);
Object.assign(env, JSON.parse(options.env));
const scenario = options.scenario as Scenario;

/** CPU time the process has used so far, in ms (utime + stime, in clock ticks of 10 ms). */
const cpuMs = (pid: number) => {
  const fields = (readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1] ?? "").split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
};

const servers: Server[] = [];
for (const target of positionals) {
  servers.push(
    target === "transport"
      ? await startServer(target, ["bench/floors.ts", "transport"], env)
      : await startServer(target, [resolve(target, "server.mjs")], env),
  );
}
const specOf = (server: Server) => ({
  url: server.url,
  scenario,
  connections: 10,
  fixtures,
  documents: mobileDocuments(),
});
for (const server of servers) await drive({ ...specOf(server), durationSec: 3 }, () => {}); // warm-up
const rounds = new Map(servers.map((server) => [server, { cpu: [] as number[], rps: [] as number[] }]));
for (let round = 1; round <= Number(options.rounds); round++) {
  for (const server of servers) {
    const pid = server.child.pid as number;
    const before = cpuMs(pid);
    const result = await drive({ ...specOf(server), durationSec: Number(options.seconds) }, () => {});
    const measured = rounds.get(server);
    measured?.cpu.push(Math.round(((cpuMs(pid) - before) * 1000) / result.requests));
    measured?.rps.push(Math.round(result.rps));
    server.resetLogs();
    process.stderr.write(`  round ${round}: ${server.label} ${Math.round(result.rps)} req/s\n`);
  }
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
for (const [server, { cpu, rps }] of rounds) {
  console.log(
    `${server.label}: ${median(rps)} req/s (${rps.join(", ")}), ${median(cpu)} µs CPU per request (${cpu.join(", ")})`,
  );
}
for (const server of servers) await server.stop();
process.exit(0);
