// A new, empty database for tests that migrate one themselves: on the PostgreSQL server the run uses (when
// DATABASE_URL is set), or a new embedded server in a process of its own (the embedded one holds a single
// database).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, inject } from "vitest";

export interface EmptyDatabase {
  url: string;
  drop(): Promise<void>;
}

export async function emptyDatabase(): Promise<EmptyDatabase> {
  if (inject("templateDatabase")) {
    const url = new URL(process.env.DATABASE_URL as string);
    const name = `${url.pathname.slice(1)}_${Math.random().toString(36).slice(2, 8)}`;
    const admin = new pg.Client({
      connectionString: Object.assign(new URL(url), { pathname: "/postgres" }).toString(),
    });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${name}"`);
    url.pathname = `/${name}`;
    return {
      url: url.toString(),
      async drop() {
        await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        await admin.end();
      },
    };
  }
  // Its own process: two embedded servers in one process, or a child process talking to one in this process,
  // can block each other.
  const child = spawn(process.execPath, [new URL("./embedded-postgres.ts", import.meta.url).pathname], {
    stdio: ["ignore", "pipe", "inherit", "ipc"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (chunk) => {
      out += chunk;
      if (out.includes("\n")) resolve(JSON.parse(out).url);
    });
    child.once("exit", (code) => reject(new Error(`embedded PostgreSQL exited with ${code}`)));
  });
  return {
    url,
    drop: async () => {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/**
 * A scratch folder and a database name for a harness that creates its own database on DATABASE_URL's server
 * (the bench, the soak); both removed after the file.
 */
export function harnessScratch(prefix: string): { dir: string; database: string } {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  const database = `${prefix.replaceAll("-", "_")}_${Math.random().toString(36).slice(2, 8)}`;
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    const admin = new pg.Client({
      connectionString: Object.assign(new URL(process.env.DATABASE_URL as string), { pathname: "/postgres" }).href,
    });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    await admin.end();
  });
  return { dir, database };
}
