// `npm run soak`: Shutter under steady load for a long time, with faults on a schedule, then checked for integrity.
//   npm run soak [-- --duration 600] [--rate 160] [--uploads 0.5] [--window 10] [--out bench/results]
//                [--database shutter_soak] [--dist dist/functions]
// Builds the bundle and runs it as the container does, two instances (both with the events runner, as replicas
// are deployed), against a freshly seeded database (reached through a TCP proxy, so its connections can be
// dropped), a Redis of the soak's own (so it can be killed), and the embedded S3 (s3rver, behind a proxy so it can
// go away). The clients (bench/soak-load.ts, a process of their own) run at `--rate` operations per second —
// by default 80 % of the write-mix throughput the last `npm run bench` recorded — retrying with idempotency keys;
// `--uploads` is the share of operations (%) that post a new photo (uploaded, then processed in the instances).
// Faults, each at a fixed share of the run: Redis killed and restarted, PostgreSQL's connections dropped and
// refused for a while, one instance killed (SIGKILL) while its events runner has work, S3 unreachable while
// uploads go on. Reports attempts by outcome, p99 per window, each instance's RSS and the database's
// connections over time; then waits for the backlog to drain and checks the data (bench/soak-integrity.ts).
// Writes soak.json, soak.md and soak-servers.log (the servers' warnings and errors) to --out; exits 1 when an integrity check fails, an operation was lost or a
// request was answered with an unexpected error.
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve as resolvePath } from "node:path";
import { parseArgs, promisify } from "node:util";
import pg from "pg";
import { keyId } from "../src/platform/idempotency.ts";
import { startProxy } from "../test/kit/tcp-proxy.ts";
import { ensureDatabase, loadFixtures, mobileDocuments } from "./data.ts";
import { functionEnv, type Server, startServer } from "./servers.ts";
import { checkIntegrity, checkServedFeeds, type IntegrityCheck, waitForDrain } from "./soak-integrity.ts";
import type { LedgerEntry, SoakLoadSpec, SoakWindow } from "./soak-load.ts";

const root = new URL("..", import.meta.url).pathname;
const { values: options } = parseArgs({
  options: {
    duration: { type: "string", default: "600" },
    rate: { type: "string" },
    window: { type: "string" },
    uploads: { type: "string", default: "0.5" },
    out: { type: "string", default: join(root, "bench/results") },
    database: { type: "string", default: "shutter_soak" },
    dist: { type: "string", default: join(root, "dist/functions") },
  },
});
const durationSec = Number(options.duration);
const windowSec = Number(options.window ?? (durationSec <= 120 ? 5 : 10));
const step = (line: string) => process.stderr.write(`${line}\n`);
const serverUrl = process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";

/** 80 % of what the last bench measured for its write mix on one instance (bench/results/latest.json). */
function defaultRate(): { rate: number; why: string } {
  try {
    const latest = JSON.parse(readFileSync(join(root, "bench/results/latest.json"), "utf8"));
    const mix = latest.scenarios.find((s: { name: string }) => s.name === "write-mix");
    return { rate: Math.round(mix.load.rps * 0.8), why: `80 % of the bench's write-mix ${mix.load.rps} req/s` };
  } catch {
    return { rate: 100, why: "no bench results found: 100 operations/s" };
  }
}
const rate = options.rate ? { rate: Number(options.rate), why: "--rate" } : defaultRate();

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const cleanups: (() => Promise<unknown> | unknown)[] = [];
const scratch = mkdtempSync(join(tmpdir(), "shutter-soak-"));
cleanups.push(() => rmSync(scratch, { recursive: true, force: true }));

async function main() {
  step(`soak: ${durationSec} s at ${rate.rate} operations/s (${rate.why}), windows of ${windowSec} s`);
  step("build: bundling the functions");
  const dist = resolvePath(options.dist);
  await promisify(execFile)(process.execPath, ["scripts/build.ts", "--outdir", dist], { cwd: root });

  step(`data: a fresh ${options.database}`);
  const admin = new pg.Client({ connectionString: Object.assign(new URL(serverUrl), { pathname: "/postgres" }).href });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${options.database}" WITH (FORCE)`);
  await admin.end();
  const databaseUrl = await ensureDatabase(serverUrl, options.database, "small", 300);
  const database = new pg.Client({ connectionString: databaseUrl });
  await database.connect();
  cleanups.push(() => database.end());

  // Services the faults act on: a Redis of our own, proxies in front of PostgreSQL and S3.
  const redis = await startRedis(await freePort());
  cleanups.push(() => redis.stop());
  const dbProxy = await startProxy(databaseUrl);
  const storage = await startStorage();
  const s3Proxy = await startProxy(storage.endpoint);
  cleanups.push(
    () => dbProxy.close(),
    () => s3Proxy.close(),
    () => storage.close(),
  );

  const env: Record<string, string> = {
    ...(await functionEnv(dbProxy.url, redis.url, "soak")),
    S3_BUCKET: storage.bucket,
    S3_ENDPOINT: s3Proxy.url.replace(/\/$/, ""),
    S3_FORCE_PATH_STYLE: "true",
    S3_ACCESS_KEY_ID: "S3RVER",
    S3_SECRET_ACCESS_KEY: "S3RVER",
    S3_PUBLIC_BASE_URL: "",
    EVENTS_RUNNER: "true",
    // A photo claimed by the instance killed below waits out its lease before another takes it over.
    IMAGE_LEASE_SECONDS: "15",
  };
  Object.assign(process.env, env); // the viewers' tokens are signed with the function's own code and key
  const { signAccessToken } = await import("../src/domain/auth.ts");
  const fixtures = await loadFixtures(
    databaseUrl,
    200,
    async (userId) => (await signAccessToken({ userId, sessionId: crypto.randomUUID() })).token,
  );

  step("servers: two instances of the bundled container (dist/functions/server.mjs), events runner in both");
  const ports = [await freePort(), await freePort()];
  const start = (i: number) =>
    startServer(`instance ${"AB"[i]}`, [join(dist, "server.mjs")], { ...env, PORT: String(ports[i]) });
  const instances: Server[] = [await start(0), await start(1)];
  cleanups.push(() => Promise.all(instances.map((s) => s.stop())));

  const photoPath = join(scratch, "photo.jpg");
  writeFileSync(photoPath, await photo());
  const ledgerPath = join(scratch, "ledger.json");
  const spec: SoakLoadSpec = {
    urls: ports.map((port) => `http://127.0.0.1:${port}`),
    rate: rate.rate,
    durationSec,
    windowSec,
    retryForMs: 30_000,
    fixtures,
    documents: mobileDocuments(),
    uploadShare: Number(options.uploads),
    photoPath,
    ledgerPath,
  };
  const specPath = join(scratch, "spec.json");
  writeFileSync(specPath, JSON.stringify(spec));

  // Samples once a second: each instance's RSS, the database's connections, the outbox backlog; and the servers'
  // log lines at warn and error level, by message.
  const samples: Sample[] = [];
  const logged: Record<string, number> = {};
  const loggedSamples: string[] = [];
  const slowest: Record<string, unknown>[] = [];
  // Every warning and error the servers logged, for a closer look (the first 50,000).
  mkdirSync(options.out, { recursive: true });
  const logFile = join(options.out, "soak-servers.log");
  writeFileSync(logFile, `${JSON.stringify({ msg: "soak: started", time: Date.now() })}\n`);
  let kept = 0;
  const t0 = Date.now();
  const sampler = setInterval(async () => {
    for (const server of instances) {
      for (const line of server.logs) {
        if (line.msg === "request" && Number(line.durationMs) >= 5_000 && slowest.length < 20) {
          slowest.push({ second: Math.round((Date.now() - t0) / 1000), instance: server.label, ...line });
        }
        // The photos' progress too (info lines), to follow the images worker through the faults.
        if (Number(line.level) < 40 && String(line.msg).startsWith("images:") && kept++ < 50_000) {
          appendFileSync(logFile, `${JSON.stringify({ instance: server.label, ...line })}\n`);
        }
        if (Number(line.level) >= 40) {
          const msg = `${Number(line.level) >= 50 ? "error" : "warn"}: ${line.msg}${line.service && line.service !== "shutter" ? ` (${line.service})` : ""}`;
          logged[msg] = (logged[msg] ?? 0) + 1;
          if (Number(line.level) >= 50 && loggedSamples.length < 10) {
            loggedSamples.push(JSON.stringify(line).slice(0, 600));
          }
          // (The load shedder's refusals are only counted: there can be thousands a second.)
          if (line.msg !== "server: overloaded, request refused" && kept++ < 50_000)
            appendFileSync(logFile, `${JSON.stringify({ instance: server.label, ...line })}\n`);
        }
      }
      server.resetLogs();
    }
    try {
      const { rows } = await database.query(
        `SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()) AS connections,
                (SELECT count(*) FROM outbox_events WHERE processed_at IS NULL) AS backlog`,
      );
      samples.push({
        second: Math.round((Date.now() - t0) / 100) / 10,
        rssMiB: instances.map((s) => s.rssMiB()),
        dbConnections: Number(rows[0].connections) - 1, // not this sampler's own
        outboxBacklog: Number(rows[0].backlog),
      });
    } catch {
      // The sampler's own connection is direct, never through the faulty proxy; a miss is only a gap.
    }
  }, 1000);
  cleanups.push(() => clearInterval(sampler));

  step(`load: ${rate.rate} operations/s for ${durationSec} s`);
  const windows: SoakWindow[] = [];
  const load = spawn(process.execPath, ["bench/soak-load.ts", specPath], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  cleanups.push(() => load.kill("SIGKILL"));
  const loadDone = follow(load, (window) => {
    windows.push(window);
    const errors = Object.entries(window.outcomes)
      .filter(([outcome]) => outcome !== "ok")
      .map(([outcome, n]) => `${outcome} ${n}`)
      .join(", ");
    const sample = samples.at(-1);
    step(
      `  ${window.second}/${durationSec} s: ${Math.round(window.operations / windowSec)} op/s, ${window.attempts} attempts, p99 ${window.latencyMs.p99} ms` +
        `${errors ? `, ${errors}` : ""}; RSS ${sample?.rssMiB.map((r) => r ?? "-").join("/")} MiB, ${sample?.dbConnections} DB connections, outbox ${sample?.outboxBacklog}`,
    );
  });

  // The faults, each at its share of the run.
  const faults: Fault[] = [];
  const at = (share: number) => sleep(Math.max(0, t0 + share * durationSec * 1000 - Date.now()));
  const injected = (async () => {
    const outage = async (kind: string, detail: string, seconds: number, down: () => unknown, up: () => unknown) => {
      const fault: Fault = { kind, detail, atSecond: (Date.now() - t0) / 1000, untilSecond: 0 };
      step(`fault: ${kind}: ${detail} (${seconds} s)`);
      await down();
      await sleep(seconds * 1000);
      await up();
      fault.untilSecond = (Date.now() - t0) / 1000;
      faults.push(fault);
      step(`fault: ${kind}: over`);
    };
    await at(0.2);
    await outage("redis", "redis-server killed (SIGKILL), restarted empty", 5, redis.kill, redis.restart);
    await at(0.4);
    await outage(
      "database",
      "every PostgreSQL connection dropped, new ones refused",
      3,
      () => dbProxy.setMode("down"),
      () => dbProxy.setMode("forward"),
    );
    await at(0.6);
    // Mid-batch: when the outbox holds events nobody has processed yet (or after two seconds of waiting for it).
    for (let waited = 0; waited < 2_000; waited += 50) {
      if (
        Number((await database.query("SELECT count(*) AS n FROM outbox_events WHERE processed_at IS NULL")).rows[0].n)
      )
        break;
      await sleep(50);
    }
    await outage(
      "instance",
      "instance B (serving, events runner busy) killed with SIGKILL, started again",
      3,
      () => instances[1]?.child.kill("SIGKILL"),
      async () => {
        instances[1] = await start(1);
      },
    );
    await at(0.8);
    await outage(
      "storage",
      "S3 unreachable (connections dropped, new ones refused) during uploads",
      5,
      () => s3Proxy.setMode("down"),
      () => s3Proxy.setMode("forward"),
    );
  })();

  await Promise.all([loadDone, injected]);
  step("drain: waiting for the outbox and the photos to be processed");
  const drain = await waitForDrain(database, 120_000, (line) => step(`  ${line}`));
  clearInterval(sampler);
  const { ledger, oddities }: { ledger: LedgerEntry[]; oddities: unknown[] } = JSON.parse(
    readFileSync(ledgerPath, "utf8"),
  );

  // Writes whose first attempt committed on the instance killed before it answered (their key's row has no answer).
  const inUse = ledger.filter((entry) => entry.outcome === "IDEMPOTENCY_KEY_IN_USE").map((entry) => entry.key);
  const answerLost = new Set(
    (
      await database.query<{ key: string }>(
        "SELECT key FROM idempotency_keys WHERE key = ANY($1) AND response IS NULL",
        [inUse.map(keyId)],
      )
    ).rows.map((row) => row.key),
  );
  step("integrity: checking the data");
  const unrecorded = new Set(
    readFileSync(logFile, "utf8")
      .split("\n")
      .filter((line) => line.includes("idempotency: answer not recorded"))
      .map((line) => JSON.parse(line).key as string),
  );
  const integrity: IntegrityCheck[] = await checkIntegrity({
    database,
    ledger,
    storage,
    since: new Date(t0),
    unrecorded,
  });
  integrity.push(
    await checkServedFeeds({
      database,
      urls: spec.urls,
      viewers: fixtures.viewers.slice(0, 50),
      feedDocumentId: spec.documents.Feed?.id as string,
    }),
  );
  for (const check of integrity)
    step(`  ${check.ok ? "ok  " : "FAIL"} ${check.name}${check.detail ? `: ${check.detail}` : ""}`);

  const report = summarize({
    windows,
    samples,
    faults,
    integrity,
    ledger,
    answerLost,
    oddities,
    logged,
    loggedSamples,
    slowest,
    drain,
  });
  mkdirSync(options.out, { recursive: true });
  writeFileSync(join(options.out, "soak.json"), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(options.out, "soak.md"), markdown(report));
  step(`report: ${join(options.out, "soak.md")}`);
  step(verdictLine(report));
  return report.passed;
}

interface Sample {
  second: number;
  rssMiB: (number | null)[];
  dbConnections: number;
  outboxBacklog: number;
}

interface Fault {
  kind: string;
  detail: string;
  atSecond: number;
  untilSecond: number;
}

/** Relays the load process's windows; resolves when it is done. */
function follow(child: ChildProcess, onWindow: (window: SoakWindow) => void): Promise<void> {
  let stderr = "";
  let buffer = "";
  let done = false;
  child.stderr?.on("data", (chunk) => (stderr += chunk));
  child.stdout?.on("data", (chunk) => {
    buffer += chunk;
    const lines = buffer.split("\n");
    buffer = lines.pop() ?? "";
    for (const line of lines) {
      const parsed = JSON.parse(line);
      if (parsed.done) done = true;
      else onWindow(parsed);
    }
  });
  return new Promise((resolve, reject) =>
    child.once("exit", (code) =>
      done ? resolve() : reject(new Error(`the soak's clients exited with ${code}:\n${stderr}`)),
    ),
  );
}

/** A redis-server of the soak's own on `port`, nothing on disk; `kill` is SIGKILL, `restart` starts it empty. */
async function startRedis(port: number) {
  let child: ChildProcess | undefined;
  const launch = async () => {
    child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdio: "ignore",
    });
    process.once("exit", () => child?.kill("SIGKILL"));
    // Up when it accepts a connection.
    for (let i = 0; i < 100; i++) {
      const up = await new Promise<boolean>((resolve) => {
        const socket = new Socket();
        socket.once("connect", () => {
          socket.destroy();
          resolve(true);
        });
        socket.once("error", () => resolve(false));
        socket.connect(port, "127.0.0.1");
      });
      if (up) return;
      await sleep(50);
    }
    throw new Error(`redis-server did not start on port ${port}: is redis-server installed?`);
  };
  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    kill: () => child?.kill("SIGKILL"),
    restart: launch,
    stop: () => child?.kill("SIGKILL"),
  };
}

/** The embedded S3 (s3rver, as `npm run dev` uses) on a temporary folder, with a bucket. */
async function startStorage() {
  const { default: S3rver } = await import("s3rver");
  const bucket = "shutter-soak";
  const server = new S3rver({
    port: await freePort(),
    address: "127.0.0.1",
    silent: true,
    directory: join(scratch, "s3"),
    configureBuckets: [{ name: bucket }],
  });
  const { port } = (await server.run()) as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}/`,
    bucket,
    directory: join(scratch, "s3", bucket),
    close: () => server.close(),
  };
}

/** A phone-like photo, small enough that processing it does not dominate the run (1280×960 JPEG). */
async function photo(): Promise<Buffer> {
  const { default: sharp } = await import("sharp");
  return sharp({
    create: {
      width: 1280,
      height: 960,
      channels: 3,
      background: "#6a8caf",
      noise: { type: "gaussian", mean: 120, sigma: 40 },
    },
  })
    .jpeg({ quality: 85 })
    .toBuffer();
}

/** Outcomes a correct Shutter may answer while faults go on: typed refusals to retry, and the network's own. */
const EXPECTED =
  /^(ok|SERVICE_UNAVAILABLE|field:SERVICE_UNAVAILABLE|IDEMPOTENCY_KEY_IN_USE|http:503|network:|storage:network:|payload:)/;

interface Report {
  version: 1;
  date: string;
  commit: string;
  options: { durationSec: number; rate: number; rateWhy: string; windowSec: number };
  totals: { operations: number; attempts: number; outcomes: Record<string, number>; final: Record<string, number> };
  writes: { total: number; ok: number; answerLost: number; lost: LedgerEntry[] };
  unexpected: Record<string, number>;
  /** Examples of the unexpected answers: what was sent, what came back. */
  oddities: unknown[];
  p99: { firstQuietMs: number | null; lastQuietMs: number | null; slopeMsPerMin: number | null; worstMs: number };
  rss: {
    instance: string;
    fromSecond: number;
    toSecond: number;
    startMiB: number;
    endMiB: number;
    maxMiB: number;
    slopeMiBPerMin: number | null;
  }[];
  dbConnections: { min: number; max: number; last: number };
  faults: Fault[];
  drain: { seconds: number; drained: boolean };
  integrity: IntegrityCheck[];
  logged: Record<string, number>;
  loggedSamples: string[];
  /** Requests the servers took 5 s or more to answer (their log lines). */
  slowest: Record<string, unknown>[];
  windows: SoakWindow[];
  samples: Sample[];
  passed: boolean;
  failures: string[];
}

/** Least-squares slope of y over x (per unit of x); null with fewer than 3 points. */
function slope(points: [number, number][]): number | null {
  if (points.length < 3) return null;
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return sxx ? sxy / sxx : null;
}
const round = (n: number | null, digits = 1) => (n === null ? null : Math.round(n * 10 ** digits) / 10 ** digits);

function summarize(input: {
  windows: SoakWindow[];
  samples: Sample[];
  faults: Fault[];
  integrity: IntegrityCheck[];
  ledger: LedgerEntry[];
  /** SHA-256 of the keys (as the table keeps them) applied but whose answer was lost. */
  answerLost: Set<string>;
  oddities: unknown[];
  logged: Record<string, number>;
  loggedSamples: string[];
  slowest: Record<string, unknown>[];
  drain: { seconds: number; drained: boolean };
}): Report {
  const { windows, samples, faults } = input;
  const add = (into: Record<string, number>, from: Record<string, number>) => {
    for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
  };
  const outcomes: Record<string, number> = {};
  const final: Record<string, number> = {};
  for (const window of windows) {
    add(outcomes, window.outcomes);
    add(final, window.final);
  }
  const unexpected = Object.fromEntries(Object.entries(outcomes).filter(([outcome]) => !EXPECTED.test(outcome)));
  // Quiet windows: no fault during them or in the ten seconds before (recovery).
  const quiet = windows.filter(
    (w) => !faults.some((f) => w.second - windowSec < f.untilSecond + 10 && w.second > f.atSecond),
  );
  const steady = quiet.filter((w) => w.second > windowSec); // the first window warms caches
  const warm = 0.2 * durationSec;
  const killed = faults.find((f) => f.kind === "instance");
  const rssOf = (i: number, from: number, to: number, label: string) => {
    const points = samples
      .filter((s) => s.second >= from && s.second < to && s.rssMiB[i] != null)
      .map((s): [number, number] => [s.second, s.rssMiB[i] as number]);
    return {
      instance: label,
      fromSecond: Math.round(from),
      toSecond: Math.round(Math.min(to, samples.at(-1)?.second ?? to)),
      startMiB: points[0]?.[1] ?? 0,
      endMiB: points.at(-1)?.[1] ?? 0,
      maxMiB: Math.max(0, ...points.map(([, y]) => y)),
      slopeMiBPerMin: round((slope(points) ?? 0) * 60, 2),
    };
  };
  const connections = samples.map((s) => s.dbConnections);
  // Applied, but the instance died before it could answer or record the answer: every retry of the key is told
  // IDEMPOTENCY_KEY_IN_USE (and after a minute, that the answer was lost), never a second effect. Not a lost write
  // (the integrity checks find it applied once); counted apart.
  const answerLost = input.ledger.filter((entry) => input.answerLost.has(keyId(entry.key)));
  // (An upload flow's entry repeats the outcome of its last write, which is in the ledger itself.)
  const lost = input.ledger.filter(
    (entry) =>
      entry.kind !== "UploadFlow" &&
      !entry.ok &&
      !entry.outcome?.startsWith("payload:") &&
      !input.answerLost.has(keyId(entry.key)),
  );
  const gaveUp = { ...final };
  if (gaveUp.IDEMPOTENCY_KEY_IN_USE) gaveUp.IDEMPOTENCY_KEY_IN_USE -= answerLost.length;
  const failures = [
    ...input.integrity.filter((c) => !c.ok).map((c) => `integrity: ${c.name}: ${c.detail}`),
    ...(lost.length ? [`${lost.length} writes never succeeded, e.g. ${JSON.stringify(lost[0])}`] : []),
    ...Object.entries(gaveUp)
      .filter(([outcome, n]) => n > 0 && outcome !== "ok" && !outcome.startsWith("payload:"))
      .map(([outcome, n]) => `${n} requests gave up with ${outcome}`),
    ...Object.entries(unexpected).map(([outcome, n]) => `${n} attempts answered ${outcome}`),
    ...(input.drain.drained ? [] : ["the outbox or the photos did not drain"]),
  ];
  return {
    version: 1,
    date: new Date().toISOString(),
    commit: gitCommit(),
    options: { durationSec, rate: rate.rate, rateWhy: rate.why, windowSec },
    totals: {
      operations: windows.reduce((s, w) => s + w.operations, 0),
      attempts: windows.reduce((s, w) => s + w.attempts, 0),
      outcomes,
      final,
    },
    writes: {
      total: input.ledger.length,
      ok: input.ledger.filter((e) => e.ok).length,
      answerLost: answerLost.length,
      lost: lost.slice(0, 20),
    },
    unexpected,
    oddities: input.oddities,
    p99: {
      firstQuietMs: steady[0]?.latencyMs.p99 ?? null,
      lastQuietMs: steady.at(-1)?.latencyMs.p99 ?? null,
      slopeMsPerMin: round((slope(steady.map((w) => [w.second, w.latencyMs.p99])) ?? 0) * 60, 2),
      worstMs: Math.max(0, ...windows.map((w) => w.latencyMs.p99)),
    },
    rss: [
      rssOf(0, warm, Number.POSITIVE_INFINITY, "A"),
      rssOf(1, warm, killed?.atSecond ?? Number.POSITIVE_INFINITY, "B (until killed)"),
      ...(killed ? [rssOf(1, killed.untilSecond + 10, Number.POSITIVE_INFINITY, "B (restarted)")] : []),
    ],
    dbConnections: {
      min: Math.min(...connections),
      max: Math.max(...connections),
      last: connections.at(-1) ?? 0,
    },
    faults,
    drain: input.drain,
    integrity: input.integrity,
    logged: input.logged,
    loggedSamples: input.loggedSamples,
    slowest: input.slowest,
    windows,
    samples,
    passed: failures.length === 0,
    failures,
  };
}

function gitCommit(): string {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root }).toString().trim();
  } catch {
    return "unknown";
  }
}

function verdictLine(report: Report): string {
  return report.passed
    ? `soak: passed — ${report.totals.operations} operations, ${report.writes.ok}/${report.writes.total} writes, every integrity check held`
    : `soak: FAILED — ${report.failures.join("; ")}`;
}

function markdown(report: Report): string {
  const { totals } = report;
  const rows = (entries: [string, number][]) =>
    entries
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `| ${k} | ${v.toLocaleString("en")} |`)
      .join("\n");
  return `# Shutter soak

${report.date} · commit \`${report.commit}\` · ${report.options.durationSec} s at ${report.options.rate} operations/s (${report.options.rateWhy}) · **${report.passed ? "passed" : "FAILED"}**

Two instances of the bundled container (events runner in both) on a freshly seeded database; clients retry with
idempotency keys (bench/soak-load.ts). ${report.failures.length ? `\n\nFailures:\n${report.failures.map((f) => `- ${f}`).join("\n")}\n` : ""}

## Faults

| at s | until s | fault |
|--:|--:|---|
${report.faults.map((f) => `| ${f.atSecond.toFixed(1)} | ${f.untilSecond.toFixed(1)} | ${f.kind}: ${f.detail} |`).join("\n")}

## Requests

${totals.operations.toLocaleString("en")} operations, ${totals.attempts.toLocaleString("en")} HTTP attempts (PUTs to storage included);
${report.writes.ok.toLocaleString("en")} of ${report.writes.total.toLocaleString("en")} writes succeeded${report.writes.answerLost ? `; ${report.writes.answerLost} were applied but their answer died with the instance killed (IDEMPOTENCY_KEY_IN_USE on every retry)` : ""}.

| every attempt, by outcome | count |
|---|--:|
${rows(Object.entries(totals.outcomes))}

| each request's final outcome (after retries) | count |
|---|--:|
${rows(Object.entries(totals.final))}

p99 in quiet windows: first ${report.p99.firstQuietMs} ms, last ${report.p99.lastQuietMs} ms, slope ${report.p99.slopeMsPerMin} ms/min; worst window ${report.p99.worstMs} ms.

| window end s | op/s | p50 ms | p99 ms | not ok |
|--:|--:|--:|--:|---|
${report.windows
  .map(
    (w) =>
      `| ${w.second} | ${Math.round(w.operations / report.options.windowSec)} | ${w.latencyMs.p50} | ${w.latencyMs.p99} | ${Object.entries(
        w.outcomes,
      )
        .filter(([k]) => k !== "ok")
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")} |`,
  )
  .join("\n")}

## Memory and connections

| instance | from s | to s | RSS start MiB | end MiB | max MiB | slope MiB/min |
|---|--:|--:|--:|--:|--:|--:|
${report.rss.map((r) => `| ${r.instance} | ${r.fromSecond} | ${r.toSecond} | ${r.startMiB} | ${r.endMiB} | ${r.maxMiB} | ${r.slopeMiBPerMin} |`).join("\n")}

Database connections (both instances and their runners): min ${report.dbConnections.min}, max ${report.dbConnections.max}, at the end ${report.dbConnections.last}.
Drained ${report.drain.drained ? "" : "NOT "}in ${report.drain.seconds} s after the load stopped.

## Integrity

${report.integrity.map((c) => `- ${c.ok ? "✅" : "❌"} ${c.name}${c.detail ? ` — ${c.detail}` : ""}`).join("\n")}

## Warnings and errors the servers logged

${Object.keys(report.logged).length ? `| message | lines |\n|---|--:|\n${rows(Object.entries(report.logged))}` : "None."}
`;
}

let passed = false;
try {
  passed = await main();
} catch (error) {
  step(`soak: could not run — ${(error as Error).stack ?? error}`);
} finally {
  for (const cleanup of cleanups.reverse())
    await Promise.resolve()
      .then(cleanup)
      .catch(() => undefined);
}
process.exit(passed ? 0 : 1);
