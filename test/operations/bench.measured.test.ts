// The benchmark harness, end to end, in its reduced smoke form (small data, a second per scenario): it must keep
// working as Shutter changes. Nothing here is about speed — only that every scenario and floor was measured,
// without errors, and reported with its ratios. Needs a PostgreSQL server and Redis (DATABASE_URL, REDIS_URL).
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, test } from "vitest";
import type { Results } from "../../bench/report.ts";
import { PEER_SCREENS, SCENARIOS } from "../../bench/scenarios.ts";
import { harnessScratch } from "../kit/databases.ts";

const root = new URL("../..", import.meta.url).pathname;
const { dir, database } = harnessScratch("shutter-bench-smoke");

test("npm run bench -- --smoke measures every scenario and both floors, and reports the ratios", async () => {
  const { stderr } = await promisify(execFile)(
    process.execPath,
    ["bench/run.ts", "--smoke", "--duration", "1", "--warmup", "1", "--connections", "4"].concat([
      "--database",
      database,
      "--out",
      join(dir, "results"),
      "--dist",
      join(dir, "dist"),
    ]),
    // The bench creates its database on DATABASE_URL's server (this file's own database names that server).
    { cwd: root, maxBuffer: 64 * 1024 * 1024 },
  );
  // Progress is shown while it runs: seeding, each scenario second by second, cold starts.
  expect(stderr).toMatch(/seed: +posts +1,200 \/ 1,200/);
  expect(stderr).toMatch(/feed: 1\/1 s, \d+ req\/s/);
  expect(stderr).toContain("check: the data floor's feed is identical to Shutter's");
  // The peer (PostGraphile) serves the same data on every screen it is compared on, checked before the load.
  expect(stderr).toContain("check: PostGraphile serves the same data as Shutter on every screen (12 requests each)");

  const results: Results = JSON.parse(readFileSync(join(dir, "results/latest.json"), "utf8"));
  expect(results.dataSet).toMatchObject({ users: 300, posts: 1200 });
  expect(results.floors.map((f) => f.name)).toEqual(["transport", "data"]);
  expect(results.scenarios.map((s) => s.name)).toEqual(Object.keys(SCENARIOS));
  for (const measured of [...results.floors, ...results.scenarios]) {
    expect(measured.load.errors, `${measured.name}: ${measured.load.errorSamples.join("; ")}`).toBe(0);
    expect(measured.load.requests).toBeGreaterThan(0);
    expect(measured.load.latencyMs.p99).toBeGreaterThanOrEqual(measured.load.latencyMs.p50);
    expect(measured.maxRssMiB).toBeGreaterThan(10);
  }
  const byName = Object.fromEntries(results.scenarios.map((s) => [s.name, s]));
  // PostGraphile ran every read screen (once per screen: a GET scenario shares its POST one's), writes none.
  for (const [name, screen] of Object.entries(PEER_SCREENS)) {
    const peer = byName[name]?.peer;
    expect(peer?.screen, name).toBe(screen);
    expect(peer?.load.errors, `${name}: ${peer?.load.errorSamples.join("; ")}`).toBe(0);
    expect(peer?.load.requests).toBeGreaterThan(0);
  }
  expect(byName["write-mix"]?.peer).toBeUndefined();
  // The counters come from Shutter's own request logs: reads on a cold cache reach PostgreSQL, signed-in screens
  // are served through the entity cache once warm, and anonymous explore whole from the response cache.
  expect(byName.feed?.sqlPerRequest).toBeGreaterThan(0);
  expect(byName.feed?.sqlPerRequest).toBeLessThanOrEqual(6);
  expect(byName.post?.cacheHitRatio).toBeGreaterThan(0.5);
  expect(byName.post?.responseCacheHitRatio).toBe(0);
  expect(byName.explore?.responseCacheHitRatio).toBeGreaterThan(0.5);
  expect(byName["explore-get"]?.responseCacheHitRatio).toBeGreaterThan(0.5);
  expect(byName["write-mix"]?.sqlPerRequest).toBeGreaterThan(0);
  expect(results.coldStart.map((c) => c.label)).toEqual([
    "hello world",
    "Shutter, bundled (as deployed)",
    "Shutter, from source",
  ]);
  const bundled = results.coldStart[1];
  expect(bundled?.stages.map((s) => s.label)).toContain("build the schema (toSchema)");
  expect(bundled?.stages.map((s) => s.label)).toContain("first SQL statement (opens the connection)");

  const report = readFileSync(join(dir, "results/latest.md"), "utf8");
  for (const name of Object.keys(SCENARIOS)) expect(report).toMatch(new RegExp(`\\| ${name} \\| [\\d.]+× \\|`));
  expect(report).toContain("smoke run");
  for (const name of Object.keys(PEER_SCREENS)) {
    expect(report).toMatch(new RegExp(`\\| ${name} \\| \\d+ \\| \\d+ \\| [\\d.]+× \\| [\\d.]+× \\| [\\d.]+× \\|`));
  }
  expect(readFileSync(join(dir, "results/latest.svg"), "utf8")).toMatch(/^<svg [\s\S]*<\/svg>\n$/);
}, 240_000);

test("npm run bench:tracing measures tracing off, at 10 % and at 100 % sampling, with spans received", async () => {
  // After the smoke bench above: its database holds the small data set.
  await promisify(execFile)(
    process.execPath,
    ["bench/tracing.ts", "--size", "small", "--rounds", "1", "--duration", "2", "--warmup", "1"].concat([
      "--connections",
      "2",
      "--database",
      database,
      "--out",
      join(dir, "tracing"),
      "--dist",
      join(dir, "dist"),
    ]),
    { cwd: root, maxBuffer: 64 * 1024 * 1024 },
  );
  const { results } = JSON.parse(readFileSync(join(dir, "tracing/tracing.json"), "utf8"));
  expect(results.map((r: { setting: string }) => r.setting)).toEqual(["off", "on, 10 % sampled", "on, 100 % sampled"]);
  const [off, tenth, all] = results;
  for (const r of results) expect(r.rps).toBeGreaterThan(0);
  expect(off.spansPerRequest).toBe(0);
  // A feed request is a dozen spans and more; a tenth of them sampled send far fewer.
  expect(all.spansPerRequest).toBeGreaterThan(5);
  expect(tenth.spansPerRequest).toBeLessThan(all.spansPerRequest * 0.6);
  expect(readFileSync(join(dir, "tracing/tracing.md"), "utf8")).toMatch(/\| on, 100 % sampled \| \d+ \|/);
}, 180_000);
