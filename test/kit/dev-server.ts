// `npm run dev` as a developer runs it: in a checkout of the repository (here, a copy in a temporary folder that
// shares this one's node_modules), with nothing configured, so everything is embedded (PostgreSQL, S3, cache).
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";

const root = new URL("../..", import.meta.url).pathname;

export interface Checkout {
  dir: string;
  remove(): void;
}

/** Another checkout of this repository: its files as they are now (tracked, and new ones not ignored). */
export function copyCheckout(label: string): Checkout {
  const dir = mkdtempSync(join(tmpdir(), `shutter-${label}-`));
  // As a checkout usually is: readable by others (as root, the embedded PostgreSQL runs as the postgres user).
  chmodSync(dir, 0o755);
  const files = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "-z"], {
    cwd: root,
    encoding: "utf8",
  })
    .split("\0")
    .filter((file) => file && file !== "node_modules");
  for (const file of files) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    try {
      cpSync(join(root, file), join(dir, file));
    } catch {
      // deleted in the working tree, not yet committed
    }
  }
  // What `npm install` makes: the dependencies, and the Prisma client it generates.
  symlinkSync(join(root, "node_modules"), join(dir, "node_modules"));
  cpSync(join(root, "src/generated"), join(dir, "src/generated"), { recursive: true });
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface DevServer {
  url: string;
  output: string[];
  /** Stops it as a terminal's Ctrl-C does (SIGINT), or with another signal (SIGKILL: a crash). */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** The environment of a developer's shell: none of the services the tests configure. */
export function bareEnvironment(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { PATH, HOME, LANG, TMPDIR } = process.env;
  return Object.fromEntries(
    Object.entries({ PATH, HOME, LANG, TMPDIR, ...extra }).filter(([, value]) => value !== undefined),
  );
}

/** Runs `npm run dev` (node scripts/dev.ts) in a checkout until it exits; its output, line by line. */
export function runDev(
  dir: string,
  env: NodeJS.ProcessEnv,
): { child: ChildProcess; output: string[]; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ["scripts/dev.ts"], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
  const output: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    if (stream) createInterface({ input: stream }).on("line", (line) => output.push(line));
  }
  const exited = new Promise<number | null>((resolve) => child.once("close", resolve));
  return { child, output, exited };
}

/** Starts `npm run dev` in a checkout and waits until it serves GraphiQL. */
export async function startDev(dir: string, env: NodeJS.ProcessEnv = bareEnvironment()): Promise<DevServer> {
  const { child, output, exited } = runDev(dir, env);
  let code: number | null | undefined;
  void exited.then((exitCode) => {
    code = exitCode;
  });
  // Creating, migrating and seeding an embedded database takes ~15 s alone, minutes on a loaded machine.
  const deadline = Date.now() + 240_000;
  for (;;) {
    const serving = output.map((line) => /\[dev\] GraphiQL: (http:\/\/\S+)/.exec(line)?.[1]).find(Boolean);
    if (serving) {
      return {
        url: serving,
        output,
        async stop(signal = "SIGINT") {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          await exited;
        },
      };
    }
    if (code !== undefined || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`npm run dev did not start (exit code ${code}):\n${output.join("\n")}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
