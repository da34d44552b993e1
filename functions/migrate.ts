// Deploy-time migrations, as a function: applies the committed migrations (prisma/migrations) the way
// `prisma migrate deploy` does — the same engine (Prisma's schema engine, as WebAssembly), the same history
// table — from inside the network the database lives in. The AWS stack runs it on every deploy that changes
// it (infra/), before the GraphQL function takes traffic; `npm run db:migrate` remains the way from a laptop.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createAdapterFactory, loadWasmEngine } from "../prisma/wasm-engine.mjs";
import { logger } from "../src/platform/logger.ts";
import { loadSecrets } from "../src/platform/secrets.ts";

// Bundled, the migrations and the engine's .wasm sit next to this file (scripts/build.ts copies them); from
// source, they are the repository's and the package's.
const bundled = (name: string) => fileURLToPath(new URL(`./${name}`, import.meta.url));
const sourceMigrations = fileURLToPath(new URL("../prisma/migrations", import.meta.url));

/** The migration directories in order, as the engine expects them. */
export function readMigrations(dir = existsSync(bundled("migrations")) ? bundled("migrations") : sourceMigrations) {
  const directories = readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  return {
    baseDir: dir,
    lockfile: { path: "migration_lock.toml", content: readFileSync(`${dir}/migration_lock.toml`, "utf8") },
    migrationDirectories: directories.map((path) => ({
      path,
      migrationFile: {
        path: "migration.sql",
        content: { tag: "ok", value: readFileSync(`${dir}/${path}/migration.sql`, "utf8") },
      },
    })),
    shadowDbInitScript: "",
  };
}

/** Applies the migrations not yet applied to the database; returns their names. */
export async function migrate(databaseUrl: string): Promise<string[]> {
  const wasm = await loadWasmEngine(
    existsSync(bundled("schema_engine_bg.wasm")) ? bundled("schema_engine_bg.wasm") : undefined,
  );
  // The engine does not close the connections it opened: they are closed once done.
  const opened: { dispose(): Promise<void> }[] = [];
  const engine = await wasm.SchemaEngine.new(
    { datamodels: undefined },
    (line: unknown) => logger().debug({ engine: line }, "migrate: engine"),
    createAdapterFactory({ url: databaseUrl }, opened),
  );
  try {
    const { appliedMigrationNames } = await engine.applyMigrations({
      migrationsList: readMigrations(),
      filters: { externalTables: [], externalEnums: [] },
    });
    return appliedMigrationNames;
  } finally {
    engine.free();
    await Promise.allSettled(opened.map((adapter) => adapter.dispose()));
  }
}

/** Lambda handler (a deploy trigger): throws, failing the deploy, when a migration fails. */
export async function handler(): Promise<{ applied: string[] }> {
  await loadSecrets();
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error("DATABASE_URL (or DATABASE_SECRET_ID) is required to migrate");
  const applied = await migrate(url);
  logger().info({ applied }, applied.length ? "migrate: applied" : "migrate: up to date");
  return { applied };
}
