// `npm run bench:first-part`: how much sooner a screen can draw with @defer. The mobile app's feed (its posts'
// photos first, what is below them deferred) and post detail (the photos first, counters and 30 comments
// deferred) over POST and GET, on the bundled container entry and on the Lambda
// streaming handler behind the gateway emulator in streaming mode (as a REST API's streaming integration invokes
// it): the time to its first part and to its last, asking for parts (`multipart/mixed`, as Apollo Client and
// urql do), against the time to the whole answer asked as JSON (the same query, nothing deferred). One request at
// a time on a warm instance, the variants interleaved so the machine's noise falls on all alike; medians and p90.
//   npm run bench:first-part [-- --requests 200] [--screens Feed,PostDetail] [--dist dist/functions] [--no-build]
//                            [--database shutter_bench]
// Uses the data set `npm run bench` seeded.
import { execFile } from "node:child_process";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { join, resolve } from "node:path";
import { parseArgs, promisify } from "node:util";
import { meros } from "meros/node";
import { startGateway } from "../scripts/gateway.ts";
import { mobileDocuments } from "./data.ts";
import { seededLoad, startServer } from "./servers.ts";

const root = new URL("..", import.meta.url).pathname;
const { values: options } = parseArgs({
  options: {
    requests: { type: "string", default: "200" },
    screens: { type: "string", default: "Feed,PostDetail" },
    dist: { type: "string", default: join(root, "dist/functions") },
    "no-build": { type: "boolean", default: false },
    database: { type: "string", default: "shutter_bench" },
  },
});
const step = (line: string) => process.stderr.write(`${line}\n`);
const dist = resolve(options.dist);
if (!options["no-build"]) {
  step("build: bundling the functions");
  await promisify(execFile)(process.execPath, ["scripts/build.ts", "--outdir", dist], { cwd: root });
}
const pick = <T>(list: T[]) => list[Math.floor(Math.random() * list.length)] as T;
const { env, fixtures } = await seededLoad(options.database, `${options.database}-first-part`, 50);
const documents = mobileDocuments();
const screens = options.screens.split(",").map((name) => {
  const screen = documents[name];
  if (!screen) throw new Error(`the mobile app's ${name} document is missing from its manifest (npm run codegen)`);
  if (!screen.document.includes("@defer")) throw new Error(`the mobile app's ${name} document defers nothing`);
  return { name, ...screen };
});
/** Each screen's variables, as the app sends them. */
const variablesOf = (name: string): Record<string, unknown> =>
  name === "Feed" ? { first: 20 } : { id: pick(fixtures.posts) };

step("servers: the container entry, and the Lambda streaming handler behind the emulator");
const container = await startServer("container", [join(dist, "server.mjs")], env);
const gateway = await startGateway({
  module: join(dist, "graphql.mjs"),
  handler: "streamingHandler",
  streaming: true,
  payloadFormat: "1.0",
  maxInstances: 1,
  env: { ...process.env, ...env },
  log: () => {},
  output: () => {},
});
const targets = [
  { name: "container", url: container.url },
  { name: "Lambda (streaming)", url: gateway.url },
];

const PARTS = "multipart/mixed;deferSpec=20220824, application/json";
const JSON_ONLY = "application/json";

/** One request: ms to its first part (parsed) and to its end; how many parts it came in. */
function timed(url: string, screen: (typeof screens)[number], method: "GET" | "POST", accept: string) {
  const token = pick(fixtures.viewers).token;
  const variables = variablesOf(screen.name);
  const path =
    method === "GET"
      ? `/graphql?${new URLSearchParams({ documentId: screen.id, variables: JSON.stringify(variables) })}`
      : "/graphql";
  const body =
    method === "POST"
      ? JSON.stringify({
          query: screen.document,
          variables,
          operationName: screen.name,
          extensions: { persistedQuery: { version: 1, sha256Hash: screen.id.replace(/^sha256:/, "") } },
        })
      : undefined;
  return new Promise<{ firstMs: number; wholeMs: number; parts: number }>((done, fail) => {
    const started = performance.now();
    const req = httpRequest(
      `${url}${path}`,
      {
        method,
        headers: {
          accept,
          authorization: `Bearer ${token}`,
          "x-apollo-operation-name": screen.name,
          ...(body ? { "content-type": "application/json" } : {}),
        },
      },
      async (response: IncomingMessage) => {
        try {
          if (response.statusCode !== 200) throw new Error(`${method} ${url}: ${response.statusCode}`);
          const parts = await meros<{ errors?: unknown[] }>(response);
          if (parts === response) {
            let text = "";
            for await (const chunk of parts) text += chunk;
            const wholeMs = performance.now() - started;
            if (JSON.parse(text).errors) throw new Error(`errors: ${text.slice(0, 300)}`);
            return done({ firstMs: wholeMs, wholeMs, parts: 1 });
          }
          let firstMs = 0;
          let count = 0;
          for await (const part of parts) {
            if (!count) firstMs = performance.now() - started;
            count++;
            if (part.json && part.body.errors) throw new Error(`errors: ${JSON.stringify(part.body).slice(0, 300)}`);
          }
          done({ firstMs, wholeMs: performance.now() - started, parts: count });
        } catch (error) {
          fail(error);
        }
      },
    );
    req.on("error", fail);
    req.end(body);
  });
}

const quantile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
};
const ms = (value: number) => value.toFixed(1);

const variants = screens.flatMap((screen) =>
  targets.flatMap((target) =>
    (["POST", "GET"] as const).map((method) => ({
      screen,
      target,
      method,
      parts: [] as number[][],
      json: [] as number[],
    })),
  ),
);
// Warm-up: each instance compiles the document and fills its caches.
for (const variant of variants) {
  for (let i = 0; i < 20; i++) {
    await timed(variant.target.url, variant.screen, variant.method, PARTS);
    await timed(variant.target.url, variant.screen, variant.method, JSON_ONLY);
  }
}
const requests = Number(options.requests);
for (let i = 0; i < requests; i++) {
  if (i % 50 === 0) step(`requests: ${i}/${requests} of each variant`);
  for (const variant of variants) {
    const { target, screen, method } = variant;
    const inParts = await timed(target.url, screen, method, PARTS);
    if (inParts.parts < 2) throw new Error(`${screen.name} on ${target.name} over ${method}: answered in one part`);
    variant.parts.push([inParts.firstMs, inParts.wholeMs]);
    variant.json.push((await timed(target.url, screen, method, JSON_ONLY)).wholeMs);
  }
}

console.log(`\nThe mobile app's screens (Feed: 20 posts; PostDetail), ${requests} requests of each, one at a time:\n`);
console.log(
  "| screen | target | method | first part p50 / p90 ms | last part p50 / p90 ms | whole as JSON p50 / p90 ms | first part / whole as JSON (p50) |",
);
console.log("|---|---|---|--:|--:|--:|--:|");
for (const { screen, target, method, parts, json } of variants) {
  const first = parts.map(([firstMs]) => firstMs as number);
  const last = parts.map(([, wholeMs]) => wholeMs as number);
  console.log(
    `| ${screen.name} | ${target.name} | ${method} | ${ms(quantile(first, 0.5))} / ${ms(quantile(first, 0.9))} | ${ms(quantile(last, 0.5))} / ${ms(quantile(last, 0.9))} | ${ms(quantile(json, 0.5))} / ${ms(quantile(json, 0.9))} | ${(quantile(first, 0.5) / quantile(json, 0.5)).toFixed(2)}× |`,
  );
}
await gateway.close();
await container.stop();
process.exit(0);
