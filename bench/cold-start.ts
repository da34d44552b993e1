// Cold start: from process start to the first successful GraphQL response, for the function as deployed (the
// bundled Lambda handler), the same handler from source (unbundled, for comparison) and a hello-world handler
// started the same way (the floor). Each run is a new process (bench/cold-child.mjs) invoked once with an
// API Gateway HTTP API event; runs of the variants are interleaved so machine noise falls on all alike.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;

/** The stages of a cold start, as performance marks (ms since process start) in the order they happen. */
const STAGES: [point: string, label: string][] = [
  ["started", "Node.js boot"],
  ["shutter:schema:define", "load modules (up to the schema builder)"],
  ["shutter:schema:build", "define types (resolver modules)"],
  ["shutter:schema:built", "build the schema (toSchema)"],
  ["shutter:init:done", "rest of init (remaining modules, Yoga)"],
  ["loaded", "end of handler import"],
  ["shutter:prisma:create", "first request until it needs the database (parse, validate, auth, rate limit)"],
  ["shutter:prisma:created", "create the Prisma client"],
  ["shutter:db:first-statement", "until the first SQL statement"],
  ["shutter:db:first-result", "first SQL statement (opens the connection)"],
  ["answered", "rest of the first request"],
];

export interface ColdStartVariant {
  label: string;
  module: string;
  export: string;
}

export interface ColdStartResult {
  label: string;
  runs: number;
  /** Median wall time from spawn to the first successful response, ms. */
  medianMs: number;
  minMs: number;
  maxMs: number;
  /** Median duration of each stage, ms, in order. */
  stages: { label: string; ms: number }[];
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};
const round = (ms: number) => Math.round(ms * 10) / 10;

/** An APQ registration POST of a query that must reach PostgreSQL (a handle prefix search is never cached). */
function coldEvent(prefix: string) {
  const query = `query ColdStart($prefix: String!) { searchUsers(prefix: $prefix, first: 5) { edges { node { handle } } } }`;
  const sha256Hash = createHash("sha256").update(query).digest("hex");
  const body = JSON.stringify({
    query,
    variables: { prefix },
    extensions: { persistedQuery: { version: 1, sha256Hash } },
  });
  return {
    version: "2.0",
    routeKey: "POST /graphql",
    rawPath: "/graphql",
    rawQueryString: "",
    headers: { "content-type": "application/json", accept: "application/json", host: "bench.local" },
    requestContext: {
      http: { method: "POST", path: "/graphql", protocol: "HTTP/1.1", sourceIp: "127.0.0.1", userAgent: "bench" },
      requestId: "cold-start",
      routeKey: "POST /graphql",
      stage: "$default",
      timeEpoch: Date.now(),
    },
    body,
    isBase64Encoded: false,
  };
}

interface Run {
  wallMs: number;
  points: Record<string, number>;
}

function runOnce(variant: ColdStartVariant, eventFile: string, env: Record<string, string>): Promise<Run> {
  const spawned = performance.now();
  const child = spawn(process.execPath, ["bench/cold-child.mjs", variant.module, variant.export, eventFile], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  let wallMs = 0;
  child.stdout.on("data", (chunk) => {
    stdout += chunk;
    // The function logs to stdout too: the run ends at the child's own line, the last one.
    if (!wallMs && /"answered":/.test(stdout)) wallMs = performance.now() - spawned;
  });
  child.stderr.on("data", (chunk) => (stderr += chunk));
  return new Promise((resolve, reject) =>
    child.once("exit", () => {
      try {
        const out = JSON.parse(stdout.trim().split("\n").pop() ?? "");
        const response = JSON.parse(out.body);
        if (out.statusCode !== 200 || !response.data || response.errors) throw new Error(out.body);
        resolve({ wallMs, points: { started: out.started, loaded: out.loaded, answered: out.answered, ...out.marks } });
      } catch (error) {
        reject(new Error(`${variant.label}: no successful response (${error})\n${stderr.slice(-2000)}`));
      }
    }),
  );
}

export async function measureColdStarts(
  variants: ColdStartVariant[],
  options: { runs: number; env: Record<string, string>; prefix: string; progress: (line: string) => void },
): Promise<ColdStartResult[]> {
  const dir = mkdtempSync(join(tmpdir(), "shutter-cold-"));
  const eventFile = join(dir, "event.json");
  writeFileSync(eventFile, JSON.stringify(coldEvent(options.prefix)));
  const runs = new Map<string, Run[]>(variants.map((v) => [v.label, []]));
  try {
    for (let i = 1; i <= options.runs; i++) {
      for (const variant of variants) {
        const run = await runOnce(variant, eventFile, options.env);
        runs.get(variant.label)?.push(run);
        options.progress(`cold start ${i}/${options.runs} ${variant.label}: ${round(run.wallMs)} ms`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return variants.map((variant) => {
    const all = runs.get(variant.label) ?? [];
    const walls = all.map((r) => r.wallMs);
    const stages: { label: string; ms: number }[] = [];
    let previous = "";
    for (const [point, label] of STAGES) {
      if (!all.every((r) => point in r.points)) continue;
      stages.push({
        label,
        ms: round(
          median(all.map((r) => (r.points[point] as number) - (previous ? (r.points[previous] as number) : 0))),
        ),
      });
      previous = point;
    }
    return {
      label: variant.label,
      runs: all.length,
      medianMs: round(median(walls)),
      minMs: round(Math.min(...walls)),
      maxMs: round(Math.max(...walls)),
      stages,
    };
  });
}
