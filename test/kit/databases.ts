// A new, empty database for tests that migrate one themselves, on the run's PostgreSQL server (DATABASE_URL's or
// the embedded one).
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
  const url = new URL(inject("databaseServer"));
  const name = `${new URL(process.env.DATABASE_URL as string).pathname.slice(1)}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new pg.Client({ connectionString: url.toString() });
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
