// `npm run bench:memory`: what the bundled server's memory comes to under the bench's screens, for each variant of
// its settings (V8's young generation, malloc arenas, the local caches' bounds), to choose them — and the function's
// memory size — by measurement. Each variant is a new server process; the same load drives each in turn: the
// signed-in feed, post and profile and explore over GET, `--seconds` each. Reports RSS at idle and its maximum under
// load (sampled every 100 ms). Uses the data set `npm run bench` seeded.
// With --lambda 512,1024: the bundled handler instead, behind the API Gateway emulator, one instance started as
// Lambda's runtime starts Node for that memory size and served one request at a time (as Lambda serves them), its
// "Max Memory Used" as Lambda reports it.
//   npm run bench:memory [-- --seconds 8] [--variants default,semi8,...] [--lambda 512,1024,1769]
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startGateway } from "../scripts/gateway.ts";
import { mobileDocuments } from "./data.ts";
import { drive } from "./drive.ts";
import type { Scenario } from "./scenarios.ts";
import { seededLoad, startServer } from "./servers.ts";

/** The settings compared: extra environment of the server process. */
const VARIANTS: Record<string, Record<string, string>> = {
  default: {},
  "lambda-1024": { NODE_OPTIONS: "--max-semi-space-size=51 --max-old-space-size=921" },
  semi8: { NODE_OPTIONS: "--max-semi-space-size=8" },
  semi4: { NODE_OPTIONS: "--max-semi-space-size=4" },
  arenas2: { MALLOC_ARENA_MAX: "2" },
  "local-5000": { CACHE_LOCAL_ENTRIES: "5000" },
  "local-0": { CACHE_LOCAL_ENTRIES: "0" },
  "semi8+arenas2": { NODE_OPTIONS: "--max-semi-space-size=8", MALLOC_ARENA_MAX: "2" },
  old256: { NODE_OPTIONS: "--max-old-space-size=256" },
  old320: { NODE_OPTIONS: "--max-old-space-size=320" },
  old384: { NODE_OPTIONS: "--max-old-space-size=384" },
  old192: { NODE_OPTIONS: "--max-old-space-size=192" },
  "old192+semi8": { NODE_OPTIONS: "--max-old-space-size=192 --max-semi-space-size=8" },
  "old160+semi8": { NODE_OPTIONS: "--max-old-space-size=160 --max-semi-space-size=8" },
  "old192+semi8+arenas2": {
    NODE_OPTIONS: "--max-old-space-size=192 --max-semi-space-size=8",
    MALLOC_ARENA_MAX: "2",
  },
};
const SCREENS: Scenario[] = ["feed", "post", "profile", "explore-get"];

const root = new URL("..", import.meta.url).pathname;
const { values: options } = parseArgs({
  options: {
    seconds: { type: "string", default: "8" },
    variants: { type: "string", default: Object.keys(VARIANTS).join(",") },
    database: { type: "string", default: "shutter_bench" },
    dist: { type: "string", default: join(root, "dist/functions") },
    lambda: { type: "string" },
  },
});
const { env, fixtures } = await seededLoad(options.database, `${options.database}-memory`, 500);

/**
 * The server's own account of its memory after the load (`process.memoryUsage()`, MiB), asked through the inspector
 * it opens on SIGUSR1: V8's heap (used / reserved), memory outside it (external: WebAssembly's, Buffers').
 */
async function memoryUsage(pid: number): Promise<Record<string, number>> {
  process.kill(pid, "SIGUSR1");
  let targets: { webSocketDebuggerUrl: string }[] = [];
  for (let attempt = 0; attempt < 50 && !targets.length; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    targets = await fetch("http://127.0.0.1:9229/json/list").then(
      (r) => r.json(),
      () => [],
    );
  }
  const socket = new WebSocket(targets[0]?.webSocketDebuggerUrl ?? "");
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = reject;
  });
  const reply = new Promise<string>((resolve) => {
    socket.onmessage = (message) => resolve(JSON.parse(String(message.data)).result.result.value);
  });
  socket.send(
    JSON.stringify({
      id: 1,
      method: "Runtime.evaluate",
      params: { expression: "JSON.stringify(process.memoryUsage())" },
    }),
  );
  const usage = JSON.parse(await reply) as Record<string, number>;
  socket.close();
  return Object.fromEntries(Object.entries(usage).map(([key, bytes]) => [key, Math.round(bytes / 1048576)]));
}

console.log(
  "| variant | settings | idle RSS MiB | max RSS MiB | after: RSS, heap used / total, external (of which buffers) MiB | req/s (feed, post, profile, explore-get) |",
);
console.log("|---|---|--:|--:|---|---|");
for (const name of options.variants.split(",")) {
  const extra = VARIANTS[name];
  if (!extra) throw new Error(`unknown variant ${name}; known: ${Object.keys(VARIANTS).join(", ")}`);
  const server = await startServer(`shutter (${name})`, [join(options.dist, "server.mjs")], { ...env, ...extra });
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const idle = server.rssMiB() ?? 0;
  let max = idle;
  const sampler = setInterval(() => (max = Math.max(max, server.rssMiB() ?? 0)), 100);
  const rates: number[] = [];
  for (const scenario of SCREENS) {
    const spec = { url: server.url, scenario, connections: 10, fixtures, documents: mobileDocuments() };
    const result = await drive({ ...spec, durationSec: Number(options.seconds) }, () => {});
    rates.push(Math.round(result.rps));
  }
  clearInterval(sampler);
  const usage = await memoryUsage(server.child.pid as number);
  await server.stop();
  console.log(
    `| ${name} | ${
      Object.entries(extra)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ") || "—"
    } | ${idle.toFixed(0)} | ${max.toFixed(0)} | ${usage.rss}, ${usage.heapUsed} / ${usage.heapTotal}, ${usage.external} (${usage.arrayBuffers}) | ${rates.join(", ")} |`,
  );
}

if (options.lambda) {
  console.log(
    "\n| Lambda memory size MB | max memory used MB | req/s, one at a time (feed, post, profile, explore-get) |",
  );
  console.log("|--:|--:|---|");
  for (const size of options.lambda.split(",").map(Number)) {
    let used = 0;
    const gateway = await startGateway({
      module: join(options.dist, "graphql.mjs"),
      env: { ...process.env, ...env, LOG_LEVEL: "warn" },
      maxInstances: 1,
      memorySizeMb: size,
      lambdaNodeFlags: true,
      log: (line) => {
        const mb = /Max Memory Used: (\d+) MB/.exec(line)?.[1];
        if (mb) used = Math.max(used, Number(mb));
      },
    });
    const rates: number[] = [];
    for (const scenario of SCREENS) {
      const spec = { url: gateway.url, scenario, connections: 1, fixtures, documents: mobileDocuments() };
      rates.push(Math.round((await drive({ ...spec, durationSec: Number(options.seconds) }, () => {})).rps));
    }
    await gateway.close();
    console.log(`| ${size} | ${used} | ${rates.join(", ")} |`);
  }
}
