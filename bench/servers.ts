// The processes under measurement: Shutter's bundled server and the floors, each started on a free port, its
// JSON log lines kept (Shutter logs one per request, with its SQL statements and cache round trips) and its
// resident memory sampled from /proc while load runs.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { exportPKCS8, generateKeyPair } from "jose";
import { type Fixtures, loadFixtures } from "./data.ts";

const root = new URL("..", import.meta.url).pathname;

export interface Server {
  label: string;
  url: string;
  child: ChildProcess;
  /** Every JSON line the process printed since the last `resetLogs()`. */
  logs: Record<string, unknown>[];
  resetLogs(): void;
  /** Resident set size now, in MiB (from /proc; null where there is none). */
  rssMiB(): number | null;
  stop(): Promise<void>;
}

export async function startServer(label: string, args: string[], env: Record<string, string>): Promise<Server> {
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, PORT: "0", ...env }, // a fixed PORT where given (a restarted instance keeps its port)
    stdio: ["ignore", "pipe", "pipe"],
  });
  // A bench that fails half-way must not leave its servers running (and competing with the next run).
  process.once("exit", () => child.kill("SIGKILL"));
  let logs: Record<string, unknown>[] = [];
  let stderr = "";
  child.stderr?.on("data", (chunk) => (stderr += chunk));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label} did not start in 30 s:\n${stderr}`)), 30_000);
    let buffer = "";
    child.stdout?.on("data", (chunk) => {
      buffer += chunk;
      const lines = buffer.split("\n");
      buffer = lines.pop() ?? "";
      for (const line of lines) {
        let record: Record<string, unknown>;
        try {
          record = JSON.parse(line);
        } catch {
          continue;
        }
        logs.push(record);
        if (/listening$/.test(String(record.msg)) && typeof record.port === "number") {
          clearTimeout(timer);
          resolve(record.port);
        }
      }
    });
    child.once("exit", (code) => reject(new Error(`${label} exited with ${code}:\n${stderr}`)));
  });
  return {
    label,
    url: `http://127.0.0.1:${port}`,
    child,
    get logs() {
      return logs;
    },
    resetLogs: () => {
      logs = [];
    },
    rssMiB: () => {
      try {
        const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1];
        return kb ? Math.round(Number(kb) / 102.4) / 10 : null;
      } catch {
        return null;
      }
    },
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/**
 * The function's configuration under load: production, as deployed, with a fresh signing key, and with the
 * limits that would otherwise throttle the load generator (one client address, a few hundred viewers) lifted;
 * photos on a CDN base URL, so no S3 is involved.
 */
export async function functionEnv(databaseUrl: string, redisUrl: string, keyPrefix: string) {
  return {
    NODE_ENV: "production",
    LOG_LEVEL: "info",
    LOG_FORMAT: "json",
    DATABASE_URL: databaseUrl,
    DATABASE_POOL_MAX: "10",
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: keyPrefix,
    JWT_PRIVATE_KEY: await exportPKCS8((await generateKeyPair("ES256", { extractable: true })).privateKey),
    ACCESS_TOKEN_TTL_SECONDS: "3600",
    RATE_LIMIT_POINTS: "1000000000",
    RATE_LIMIT_ANONYMOUS_POINTS: "1000000000",
    PERSISTED_QUERIES: "apq",
    S3_BUCKET: "shutter-bench",
    S3_ACCESS_KEY_ID: "bench",
    S3_SECRET_ACCESS_KEY: "bench",
    S3_PUBLIC_BASE_URL: "https://cdn.example.com",
  };
}

/**
 * For tools that drive a server on the data set `npm run bench` seeded (database `database` on DATABASE_URL's
 * server): the function's configuration (keys under `keyPrefix`, applied to this process too: the tokens are signed
 * with the function's own code and key) and `viewers` signed-in viewers to draw from.
 */
export async function seededLoad(database: string, keyPrefix: string, viewers: number) {
  const databaseUrl = Object.assign(
    new URL(process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres"),
    { pathname: `/${database}` },
  ).toString();
  const env = await functionEnv(databaseUrl, process.env.REDIS_URL ?? "redis://127.0.0.1:6379", keyPrefix);
  Object.assign(process.env, env);
  const { signAccessToken } = await import("../src/domain/auth.ts");
  const fixtures: Fixtures = await loadFixtures(
    databaseUrl,
    viewers,
    async (userId) => (await signAccessToken({ userId, sessionId: crypto.randomUUID() })).token,
  );
  return { env, fixtures };
}
