// The benchmark's output: results as JSON (input of a later `--compare`), a markdown report and an SVG chart of
// latency by scenario against the floors.
import type { ColdStartResult } from "./cold-start.ts";
import type { LoadResult } from "./load.ts";

export interface ScenarioResult {
  name: string;
  description: string;
  load: LoadResult;
  /** From Shutter's request log lines of the measured period (warm-up excluded). */
  sqlPerRequest: number;
  redisRoundTripsPerRequest: number;
  /** Entity cache hits / (hits + misses); null when the scenario read nothing through the cache. */
  cacheHitRatio: number | null;
  /** Requests answered whole from the response cache / all requests. */
  responseCacheHitRatio: number;
  maxRssMiB: number | null;
  /** PostGraphile serving the same screen (bench/peer.ts), measured in the same run; none for writes. */
  peer?: PeerResult;
}

export interface PeerResult {
  /** The screen (its GET scenarios are its POST ones: the peer has no persisted documents). */
  screen: string;
  load: LoadResult;
  maxRssMiB: number | null;
}

export interface FloorResult {
  name: "data" | "transport";
  description: string;
  load: LoadResult;
  maxRssMiB: number | null;
}

export interface Results {
  version: 1;
  date: string;
  commit: string;
  options: { durationSec: number; warmupSec: number; connections: number; viewers: number; smoke: boolean };
  machine: Record<string, string>;
  dataSet: Record<string, number>;
  floors: FloorResult[];
  scenarios: ScenarioResult[];
  coldStart: ColdStartResult[];
  bundle: string;
}

const fixed = (n: number, digits = 1) => n.toFixed(digits);
const ratio = (n: number) => `${n >= 10 ? n.toFixed(0) : n.toFixed(2)}×`;
const pct = (now: number, before: number) =>
  `${now >= before ? "+" : ""}${(((now - before) / before) * 100).toFixed(0)}%`;

/** Shutter/floor for one scenario: p50 latency ratio (above 1: slower) and throughput ratio (below 1: fewer). */
export function ratios(scenario: ScenarioResult, floor: FloorResult) {
  return {
    p50: scenario.load.latencyMs.p50 / floor.load.latencyMs.p50,
    rps: scenario.load.rps / floor.load.rps,
  };
}

function floorOf(results: Results, name: FloorResult["name"]): FloorResult {
  const floor = results.floors.find((f) => f.name === name);
  if (!floor) throw new Error(`no ${name} floor in the results`);
  return floor;
}

export function markdown(results: Results, previous?: Results): string {
  const data = floorOf(results, "data");
  const transport = floorOf(results, "transport");
  const o = results.options;
  const lines: string[] = [
    "# Shutter benchmark",
    "",
    `${results.date} · commit \`${results.commit}\`${o.smoke ? " · **smoke run (small data, seconds): not a measurement**" : ""}`,
    "",
    "## Machine",
    "",
    ...Object.entries(results.machine).map(([k, v]) => `- **${k}:** ${v}`),
    `- **Load:** autocannon in its own process, ${o.connections} connections, ${o.warmupSec} s warm-up then ${o.durationSec} s measured per scenario; ${o.viewers} different signed-in viewers`,
    `- **Data set:** ${Object.entries(results.dataSet)
      .map(([k, v]) => `${v.toLocaleString("en-US")} ${k}`)
      .join(", ")}`,
    "",
    "## Floors (measured in this run)",
    "",
    "| floor | what it is | req/s | p50 ms | p95 ms | p99 ms | errors | max RSS MiB |",
    "|---|---|--:|--:|--:|--:|--:|--:|",
    ...results.floors.map(
      (f) =>
        `| ${f.name} | ${f.description} | ${fixed(f.load.rps, 0)} | ${fixed(f.load.latencyMs.p50, 2)} | ${fixed(f.load.latencyMs.p95, 2)} | ${fixed(f.load.latencyMs.p99, 2)} | ${f.load.errors} | ${f.maxRssMiB ?? "–"} |`,
    ),
    "",
    "## Scenarios",
    "",
    "| scenario | req/s | p50 ms | p95 ms | p99 ms | errors | SQL/req | Redis RT/req | entity cache hits | response cache hits | max RSS MiB |",
    "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ...results.scenarios.map(
      (s) =>
        `| ${s.name} | ${fixed(s.load.rps, 0)} | ${fixed(s.load.latencyMs.p50, 2)} | ${fixed(s.load.latencyMs.p95, 2)} | ${fixed(s.load.latencyMs.p99, 2)} | ${s.load.errors} | ${fixed(s.sqlPerRequest, 2)} | ${fixed(s.redisRoundTripsPerRequest, 2)} | ${s.cacheHitRatio === null ? "–" : `${fixed(s.cacheHitRatio * 100)}%`} | ${fixed((s.responseCacheHitRatio ?? 0) * 100)}% | ${s.maxRssMiB ?? "–"} |`,
    ),
    "",
    "## Shutter / floor",
    "",
    "Latency: Shutter's p50 divided by the floor's (above 1× is slower). Throughput: Shutter's req/s divided by the floor's (below 1× is fewer).",
    "",
    "| scenario | p50 / data floor | req/s / data floor | p50 / transport floor | req/s / transport floor |",
    "|---|--:|--:|--:|--:|",
    ...results.scenarios.map((s) => {
      const d = ratios(s, data);
      const t = ratios(s, transport);
      return `| ${s.name} | ${ratio(d.p50)} | ${ratio(d.rps)} | ${ratio(t.p50)} | ${ratio(t.rps)} |`;
    }),
    "",
    "## Shutter / PostGraphile",
    "",
    "PostGraphile v5 (Amber preset, bench/peer.ts) on the same database, same screens, same load, same run; what it cannot generate is written as a PostGraphile user would (bench/peer/schema.sql). Checked before the run to serve the same data. Its GET scenarios are its POST ones (no persisted documents). Throughput: Shutter's req/s divided by PostGraphile's (above 1× is more); latency: Shutter's divided by PostGraphile's (below 1× is faster).",
    "",
    "| scenario | Shutter req/s | PostGraphile req/s | req/s ratio | p50 ratio | p99 ratio | PostGraphile p50 ms | PostGraphile max RSS MiB |",
    "|---|--:|--:|--:|--:|--:|--:|--:|",
    ...results.scenarios.flatMap((s) =>
      s.peer
        ? [
            `| ${s.name} | ${fixed(s.load.rps, 0)} | ${fixed(s.peer.load.rps, 0)} | ${ratio(s.load.rps / s.peer.load.rps)} | ${ratio(s.load.latencyMs.p50 / s.peer.load.latencyMs.p50)} | ${ratio(s.load.latencyMs.p99 / s.peer.load.latencyMs.p99)} | ${fixed(s.peer.load.latencyMs.p50, 2)} | ${s.peer.maxRssMiB ?? "–"} |`,
          ]
        : [],
    ),
    "",
    "![Latency by scenario against the floors](latest.svg)",
    "",
    "## Cold start",
    "",
    "Process start to the first successful GraphQL response (a query that reaches PostgreSQL), each run a new process invoking the Lambda handler once with an API Gateway event.",
    "",
    "| handler | runs | median ms | min ms | max ms | / hello |",
    "|---|--:|--:|--:|--:|--:|",
    ...results.coldStart.map(
      (c) =>
        `| ${c.label} | ${c.runs} | ${fixed(c.medianMs)} | ${fixed(c.minMs)} | ${fixed(c.maxMs)} | ${ratio(c.medianMs / (results.coldStart[0]?.medianMs ?? c.medianMs))} |`,
    ),
    "",
    ...results.coldStart
      .filter((c) => c.stages.length > 3)
      .flatMap((c) => [
        `Where the time goes, ${c.label} (median of each stage):`,
        "",
        "| stage | ms |",
        "|---|--:|",
        ...c.stages.map((stage) => `| ${stage.label} | ${fixed(stage.ms)} |`),
        "",
      ]),
    "## Bundle",
    "",
    "```",
    results.bundle.trim(),
    "```",
    "",
  ];
  if (previous) lines.push(...comparison(results, previous));
  lines.push(
    "Regenerate with `npm run bench` (options: `--scenario feed,explore`, `--duration 15`, `--connections 10`, `--compare bench/results/latest.json`).",
    "",
  );
  return lines.join("\n");
}

function comparison(results: Results, previous: Results): string[] {
  const rows = [...results.floors, ...results.scenarios].flatMap((now) => {
    const before = [...previous.floors, ...previous.scenarios].find((p) => p.name === now.name);
    if (!before) return [];
    const b = before.load;
    const n = now.load;
    return [
      `| ${now.name} | ${fixed(b.rps, 0)} → ${fixed(n.rps, 0)} (${pct(n.rps, b.rps)}) | ${fixed(b.latencyMs.p50, 2)} → ${fixed(n.latencyMs.p50, 2)} (${pct(n.latencyMs.p50, b.latencyMs.p50)}) | ${fixed(b.latencyMs.p99, 2)} → ${fixed(n.latencyMs.p99, 2)} (${pct(n.latencyMs.p99, b.latencyMs.p99)}) |`,
    ];
  });
  const coldRows = results.coldStart.flatMap((now) => {
    const before = previous.coldStart.find((p) => p.label === now.label);
    return before
      ? [
          `| cold start: ${now.label} | | ${fixed(before.medianMs)} → ${fixed(now.medianMs)} (${pct(now.medianMs, before.medianMs)}) | |`,
        ]
      : [];
  });
  return [
    `## Compared with ${previous.date} (commit \`${previous.commit}\`)`,
    "",
    "Floors are listed too: when they moved as much as Shutter did, the machine changed, not the code.",
    "",
    "| | req/s | p50 ms | p99 ms |",
    "|---|--:|--:|--:|",
    ...rows,
    ...coldRows,
    "",
  ];
}

const escapeXml = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;");

/** Horizontal bars of p50/p95/p99 per row (floors first), on one linear scale, with the floors' p50 as lines. */
export function svg(results: Results): string {
  const rows = [
    ...results.floors.map((f) => ({ name: `${f.name} floor`, latency: f.load.latencyMs, floor: true })),
    ...results.scenarios.map((s) => ({ name: s.name, latency: s.load.latencyMs, floor: false })),
  ];
  const left = 120;
  const width = 760;
  const plot = width - left - 160;
  const rowHeight = 30;
  const top = 40;
  const height = top + rows.length * rowHeight + 40;
  const max = Math.max(...rows.map((r) => r.latency.p99), 1);
  const x = (ms: number) => left + (ms / max) * plot;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="20" font-size="14" font-weight="600">Latency by scenario, ms (bar: p50, then p95 and p99 lighter)</text>`,
  ];
  rows.forEach((row, i) => {
    const y = top + i * rowHeight;
    const color = row.floor ? "#888" : "#2f6fde";
    parts.push(
      `<text x="${left - 8}" y="${y + 15}" text-anchor="end">${escapeXml(row.name)}</text>`,
      `<rect x="${left}" y="${y + 4}" width="${x(row.latency.p99) - left}" height="16" fill="${color}" opacity="0.2"/>`,
      `<rect x="${left}" y="${y + 4}" width="${x(row.latency.p95) - left}" height="16" fill="${color}" opacity="0.45"/>`,
      `<rect x="${left}" y="${y + 4}" width="${Math.max(1, x(row.latency.p50) - left)}" height="16" fill="${color}"/>`,
      `<text x="${x(row.latency.p99) + 6}" y="${y + 16}" fill="#333">${fixed(row.latency.p50, 1)} / ${fixed(row.latency.p95, 1)} / ${fixed(row.latency.p99, 1)}</text>`,
    );
  });
  for (const floor of results.floors) {
    const fx = x(floor.load.latencyMs.p50);
    parts.push(
      `<line x1="${fx}" y1="${top}" x2="${fx}" y2="${top + rows.length * rowHeight}" stroke="#c33" stroke-dasharray="4 3"/>`,
    );
  }
  parts.push(
    `<text x="${left}" y="${height - 12}" fill="#c33">dashed: p50 of the floors (transport, data)</text>`,
    `<text x="${left + plot}" y="${height - 12}" text-anchor="end" fill="#333">0 – ${fixed(max, 1)} ms</text>`,
    "</svg>",
  );
  return `${parts.join("\n")}\n`;
}
