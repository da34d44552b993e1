// The committed migrations must produce exactly the schema in prisma/schema.prisma: a model change without
// its migration fails here. (Every test run also migrates a fresh database with `migrate deploy`: see
// test/kit/global-setup.ts and test/kit/setup.ts.)
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { expect, test } from "vitest";
import { migrate, readMigrations } from "../../functions/migrate.ts";
import { db } from "../../src/platform/db.ts";
import { emptyDatabase } from "../kit/databases.ts";

const root = new URL("../..", import.meta.url).pathname;

const prismaCli = (args: string[], env: Record<string, string | undefined> = process.env) =>
  promisify(execFile)(process.execPath, ["prisma/engine.mjs", ...args], { cwd: root, env });

test("prisma/migrations and prisma/schema.prisma agree (migrate diff through the offline engine)", async () => {
  const { stdout } = await prismaCli([
    "migrate",
    "diff",
    "--from-migrations",
    "prisma/migrations",
    "--to-schema",
    "prisma/schema.prisma",
    "--script",
    "--exit-code",
  ]).catch((error) => {
    throw new Error(
      `schema.prisma differs from the migrations (exit ${error.code}):\n${error.stdout}\n${error.stderr}`,
    );
  });
  expect(stdout.trim()).toBe("");
});

test("the test database was migrated by `migrate deploy`", async () => {
  const rows = await db().$queryRaw<{ migration_name: string; finished_at: Date | null }[]>`
    SELECT migration_name, finished_at FROM _prisma_migrations ORDER BY migration_name`;
  expect(rows.length).toBeGreaterThan(0);
  expect(rows.every((row) => row.finished_at instanceof Date)).toBe(true);
});

test("constraints the schema cannot express are in place", async () => {
  const names = await db().$queryRaw<{ conname: string }[]>`
    SELECT conname FROM pg_constraint WHERE contype = 'c' ORDER BY conname`;
  expect(names.map((n) => n.conname)).toEqual(
    expect.arrayContaining([
      "users_handle_format",
      "follows_not_self",
      "posts_counts_non_negative",
      "media_position_range",
    ]),
  );
  await expect(
    db().user.create({ data: { handle: "Bad Handle", email: "x@y.z", displayName: "x", passwordHash: "x" } }),
  ).rejects.toThrow(/users_handle_format/);
});

test("the migrate function (the deploy trigger) applies the migrations once, as `migrate deploy` would", async () => {
  const database = await emptyDatabase();
  try {
    const all = readMigrations().migrationDirectories.map((m) => m.path);
    expect(await migrate(database.url)).toEqual(all);
    expect(await migrate(database.url)).toEqual([]);
    // The CLI reads the same history, and finds the database exactly at the schema.
    const env = { ...process.env, DATABASE_URL: database.url };
    const status = await prismaCli(["migrate", "status"], env);
    expect(status.stdout).toContain("Database schema is up to date");
    const diff = await prismaCli(
      ["migrate", "diff", "--from-config-datasource", "--to-schema", "prisma/schema.prisma", "--script", "--exit-code"],
      env,
    );
    expect(diff.stdout.trim()).toBe("");
  } finally {
    await database.drop();
  }
  // A new embedded database and Prisma's WebAssembly schema engine: slow on a loaded machine.
}, 120_000);
