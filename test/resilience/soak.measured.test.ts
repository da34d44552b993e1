// The soak (`npm run soak`) in its short form: a minute of load on two bundled container instances, with every
// fault of the full run (Redis killed, PostgreSQL's connections dropped, an instance killed while its events runner
// works, S3 unreachable), then the integrity checks. It must pass as it does for ten minutes: no write lost or
// doubled, no counter or notification off, nothing left behind, no unexpected error. Needs a PostgreSQL server and
// redis-server (the soak starts a Redis of its own, to kill it); S3 is the embedded s3rver behind a proxy.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, test } from "vitest";
import { harnessScratch } from "../kit/databases.ts";

const root = new URL("../..", import.meta.url).pathname;
const { dir, database } = harnessScratch("shutter-soak");

const sum = (counts: Record<string, number>, pattern: RegExp) =>
  Object.entries(counts)
    .filter(([outcome]) => pattern.test(outcome))
    .reduce((total, [, n]) => total + n, 0);

test("a minute of load through four faults loses nothing, doubles nothing, and leaves consistent data", async () => {
  const run = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = execFile(
      process.execPath,
      ["bench/soak.ts", "--duration", "60", "--rate", "20", "--uploads", "3"].concat([
        "--database",
        database,
        "--out",
        join(dir, "results"),
        "--dist",
        join(dir, "dist"),
      ]),
      { cwd: root, maxBuffer: 64 * 1024 * 1024 },
      (_error, _stdout, stderr) => resolve({ code: child.exitCode, stderr }),
    );
  });
  const report = JSON.parse(readFileSync(join(dir, "results/soak.json"), "utf8"));
  expect(report.failures, run.stderr.slice(-4000)).toEqual([]);
  expect(run.code).toBe(0);
  expect(report.passed).toBe(true);
  // Progress while it runs: each window, each fault.
  expect(run.stderr).toMatch(/ 5\/60 s: \d+ op\/s, \d+ attempts, p99 [\d.]+ ms/);
  expect(run.stderr).toContain("fault: database: over");

  // Every fault happened, in order, for its time.
  expect(report.faults.map((f: { kind: string }) => f.kind)).toEqual(["redis", "database", "instance", "storage"]);
  for (const fault of report.faults) expect(fault.untilSecond - fault.atSecond).toBeGreaterThanOrEqual(3);
  // …and the clients met them: typed refusals while PostgreSQL was away, refused connections while B was dead.
  expect(sum(report.totals.outcomes, /^(field:)?SERVICE_UNAVAILABLE$/)).toBeGreaterThan(0);
  expect(sum(report.totals.outcomes, /^network:/)).toBeGreaterThan(0);
  // Nothing else: no masked error, no refusal the clients could not act on; every request ended well.
  expect(report.unexpected).toEqual({});
  // (A write applied on the instance killed before it answered is told IDEMPOTENCY_KEY_IN_USE on every retry:
  // its key's row has no answer, and the checks below find the write applied once.)
  const gaveUp = Object.entries(report.totals.final).filter(([o]) => o !== "ok" && !o.startsWith("payload:"));
  expect(gaveUp).toEqual(report.writes.answerLost ? [["IDEMPOTENCY_KEY_IN_USE", report.writes.answerLost]] : []);
  expect(report.totals.operations).toBeGreaterThan(1000);
  expect(report.writes.total).toBeGreaterThan(100);
  expect(report.writes.lost).toEqual([]);

  // The integrity checks, all run and all held.
  expect(report.integrity.map((c: { name: string }) => c.name)).toHaveLength(18);
  for (const check of report.integrity) expect(check, check.name).toMatchObject({ ok: true });
  const photos = report.integrity.find((c: { name: string }) => c.name.startsWith("every photo posted"));
  expect(Number(/^(\d+) photos/.exec(photos.detail)?.[1])).toBeGreaterThan(0);
  // What clients are served after it all, through both instances, is what the tables hold.
  const feeds = report.integrity.find((c: { name: string }) => c.name.startsWith("every sampled viewer's feed"));
  expect(Number(/\((\d+) viewers\)/.exec(feeds.name)?.[1])).toBeGreaterThan(0);
  expect(report.drain.drained).toBe(true);

  // Memory and connections were sampled throughout, for both instances.
  expect(report.samples.length).toBeGreaterThan(50);
  expect(report.rss.map((r: { instance: string }) => r.instance)).toEqual(["A", "B (until killed)", "B (restarted)"]);
  expect(report.dbConnections.max).toBeGreaterThan(0);
  expect(report.dbConnections.min).toBe(0); // while the proxy refused them
  expect(readFileSync(join(dir, "results/soak.md"), "utf8")).toMatch(/# Shutter soak[\s\S]*\*\*passed\*\*/);
}, 300_000);
