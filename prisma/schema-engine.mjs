#!/usr/bin/env node
// Stands in for Prisma's native `schema-engine` binary, which the CLI downloads on first use and which
// cannot be downloaded on air-gapped machines. It speaks the same protocol the CLI expects from the binary
// (JSON-RPC 2.0, one object per line on stdin/stdout, logs on stderr) and runs the engine's WebAssembly
// build over `@prisma/adapter-pg`. Dev and deploy tooling only: never bundled into the function.
// `prisma/engine.mjs` points the CLI here through PRISMA_SCHEMA_ENGINE_BINARY.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import { PrismaPg } from "@prisma/adapter-pg";
import { bindMigrationAwareSqlAdapterFactory, ColumnTypeEnum } from "@prisma/driver-adapter-utils";
import pg from "pg";

const require = createRequire(import.meta.url);
const ENGINE_VERSION = "59be4fda12412a79eeb9c2ae727b6aa723593323";

// The engine's catalog queries return Postgres `"char"` columns (oid 18, e.g. pg_constraint.contype), which
// adapter-pg 7.10 refuses as an unsupported type, while the engine reads them as single characters.
// pg still parses them as strings (parsers are chosen before the id is changed), the id is swapped for
// `"char"[]`, which adapter-pg accepts, and queryRaw turns such columns, whose values are not arrays,
// into the Character type the engine expects.
const CHAR_OID = 18;
const CHAR_ARRAY_OID = 1002;
const Result = require("pg/lib/result.js");
const addFields = Result.prototype.addFields;
Result.prototype.addFields = function addCharFields(fields) {
  addFields.call(this, fields);
  for (const field of fields) if (field.dataTypeID === CHAR_OID) field.dataTypeID = CHAR_ARRAY_OID;
};

function patchQueryRaw(adapter) {
  const queryable = Object.getPrototypeOf(Object.getPrototypeOf(adapter));
  if (queryable.queryRaw.patchedForChar) return;
  const queryRaw = queryable.queryRaw;
  queryable.queryRaw = async function queryRawWithChar(query) {
    const result = await queryRaw.call(this, query);
    result.columnTypes = result.columnTypes.map((type, i) =>
      type === ColumnTypeEnum.CharacterArray && result.rows.every((row) => !Array.isArray(row[i]))
        ? ColumnTypeEnum.Character
        : type,
    );
    return result;
  };
  queryable.queryRaw.patchedForChar = true;
}

function parseArgs(argv) {
  const out = { datamodels: [], datasource: undefined, cli: undefined };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--datamodels") out.datamodels.push(argv[++i]);
    else if (arg === "--datasource") out.datasource = JSON.parse(argv[++i]);
    else if (arg === "cli") out.cli = argv[++i];
    else if (arg === "--version" || arg === "-V") out.version = true;
    else if (arg === "--enabled-preview-features" || arg === "--extension-types") i++;
  }
  return out;
}

// The wasm build reports a Rust panic's message through this global before it throws.
let lastPanic;
globalThis.PRISMA_WASM_PANIC_REGISTRY = {
  set_message(message) {
    lastPanic = message;
  },
};

async function loadWasmEngine() {
  const bgPath = require.resolve("@prisma/schema-engine-wasm/schema_engine_bg");
  const bindings = await import("@prisma/schema-engine-wasm/schema_engine_bg");
  const bytes = readFileSync(bgPath.replace(/\.js$/, ".wasm"));
  const { instance } = await WebAssembly.instantiate(bytes, { "./schema_engine_bg.js": bindings });
  bindings.__wbg_set_wasm(instance.exports);
  instance.exports.__wbindgen_start();
  return bindings;
}

/** Wraps a factory's connect() so every adapter it makes reads `"char"` columns as the engine expects. */
function withCharColumns(factory) {
  const connect = factory.connect.bind(factory);
  factory.connect = async () => {
    const adapter = await connect();
    patchQueryRaw(adapter);
    return adapter;
  };
  return factory;
}

const shadowDatabases = new Set();

/**
 * Adapter factory for the engine. adapter-pg's own connectToShadowDb overrides only `database`, which a
 * connection string silently takes precedence over, so the "shadow" work would run on the real database:
 * the shadow database is created and addressed here instead (or the given shadowDatabaseUrl, wiped first).
 */
function createAdapterFactory(datasource) {
  const factory = withCharColumns(new PrismaPg({ connectionString: datasource.url }));
  factory.connectToShadowDb = async () => {
    if (datasource.shadowDatabaseUrl) {
      const adapter = await withCharColumns(new PrismaPg({ connectionString: datasource.shadowDatabaseUrl })).connect();
      await adapter.executeScript("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;");
      return adapter;
    }
    const url = new URL(datasource.url);
    url.pathname = `/prisma_migrate_shadow_db_${crypto.randomUUID()}`;
    await createDatabase(url.toString());
    shadowDatabases.add(url.toString());
    const adapter = await withCharColumns(new PrismaPg({ connectionString: url.toString() })).connect();
    const dispose = adapter.dispose.bind(adapter);
    adapter.dispose = async () => {
      await dispose();
      await dropShadowDatabase(url.toString());
    };
    return adapter;
  };
  return bindMigrationAwareSqlAdapterFactory(factory);
}

async function dropShadowDatabase(url) {
  if (!shadowDatabases.delete(url)) return;
  await onServer(url, (client, database) =>
    client.query(`DROP DATABASE IF EXISTS ${quoteIdent(database)} WITH (FORCE)`),
  );
}

/** Runs SQL on the server's maintenance database, for creating or dropping the target database. */
async function onServer(url, fn) {
  const target = new URL(url);
  const database = decodeURIComponent(target.pathname.slice(1)) || "postgres";
  const admin = new URL(url);
  admin.pathname = "/postgres";
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    return await fn(client, database);
  } finally {
    await client.end();
  }
}

const quoteIdent = (name) => `"${name.replaceAll('"', '""')}"`;

async function createDatabase(url) {
  await onServer(url, async (client, database) => {
    const { rowCount } = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]);
    if (!rowCount) await client.query(`CREATE DATABASE ${quoteIdent(database)}`);
  });
  return new URL(url).pathname.slice(1);
}

async function runCli(command, datasource) {
  switch (command) {
    case "can-connect-to-database": {
      const client = new pg.Client({ connectionString: datasource.url });
      await client.connect();
      await client.end();
      return;
    }
    case "create-database":
      await createDatabase(datasource.url);
      return;
    case "drop-database":
      await onServer(datasource.url, (client, database) =>
        client.query(`DROP DATABASE IF EXISTS ${quoteIdent(database)}`),
      );
      return;
    default:
      throw new Error(`unsupported cli command: ${command}`);
  }
}

/** Maps a `pg` connection error to the Prisma error code the CLI understands (P1003 makes it create the database). */
function prismaErrorCode(error) {
  if (error?.code === "3D000") return "P1003";
  if (error?.code === "28P01" || error?.code === "28000") return "P1000";
  if (error?.code === "ECONNREFUSED" || error?.code === "ENOTFOUND" || error?.code === "ETIMEDOUT") return "P1001";
  return undefined;
}

function toRpcError(error) {
  const panic = lastPanic;
  lastPanic = undefined;
  const message = panic ?? (error instanceof Error ? error.message : String(error));
  return {
    code: 4466,
    message: "An error happened. Check the data field for details.",
    data: { is_panic: panic !== undefined, message, error_code: error?.code ?? null, meta: error?.meta ?? null },
  };
}

const DESTRUCTIVE = [
  [/^DROP TABLE/i, "drops a table: its rows will be lost"],
  [/^ALTER TABLE .* DROP COLUMN/i, "drops a column: its values will be lost"],
  [/^ALTER TABLE .* (SET DATA )?TYPE /i, "changes a column type: values may be cast or lost"],
  [/^DROP TYPE/i, "drops an enum"],
];

/** The SQL that takes a database from the migrations' end state to the schema; null when there is nothing to do. */
async function pendingScript(engine, { migrationsList, schema, filters }) {
  const { stdout, exitCode } = await engine.diff({
    from: { tag: "migrations", ...migrationsList },
    to: { tag: "schemaDatamodel", ...schema },
    script: true,
    exitCode: true,
    filters,
  });
  return exitCode === 2 ? stdout : null;
}

// The wasm build's evaluateDataLoss and createMigration cannot reach the shadow database ("must be provided
// through an external factory") although diff can, so both are answered from diff.

/** Steps of the migration `migrate dev` would create, with a warning (the CLI then asks) for each that can lose data. */
async function evaluateDataLoss(engine, params) {
  const steps = ((await pendingScript(engine, params)) ?? "")
    .split(/;\s*\n/)
    .map((step) => step.replace(/^\s*--.*$/gm, "").trim())
    .filter(Boolean);
  const warnings = steps.flatMap((step, stepIndex) =>
    DESTRUCTIVE.filter(([re]) => re.test(step)).map(([, what]) => ({
      message: `\`${step.split("\n")[0]}\` ${what}.`,
      stepIndex,
    })),
  );
  return { migrationSteps: steps.length, warnings, unexecutableSteps: [] };
}

/** Same output as the native createMigration: the CLI writes `<generatedMigrationName>/migration.sql`. */
async function createMigration(engine, params) {
  const script = await pendingScript(engine, params);
  const timestamp = new Date().toISOString().replace(/\D/g, "").slice(0, 14);
  return {
    connectorType: "postgresql",
    generatedMigrationName: `${timestamp}_${params.migrationName}`,
    migrationScript: script ?? (params.draft ? "-- This is an empty migration.\n" : null),
    extension: "sql",
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.version) {
    process.stdout.write(`schema-engine-cli ${ENGINE_VERSION}\n`);
    return;
  }
  if (args.cli) {
    try {
      await runCli(args.cli, args.datasource);
    } catch (error) {
      // The CLI skips the first stderr line and reads the error code from the log record after it.
      const fields = { message: String(error?.message ?? error), error_code: prismaErrorCode(error) };
      process.stderr.write(`schema-engine cli ${args.cli} failed\n`);
      process.stderr.write(`${JSON.stringify({ level: "ERROR", target: "schema_engine::logger", fields })}\n`);
      process.exit(1);
    }
    return;
  }

  const wasm = await loadWasmEngine();
  const datamodels = args.datamodels.map((path) => [path, readFileSync(path, "utf8")]);
  const log = (line) => process.stderr.write(`${typeof line === "string" ? line : JSON.stringify(line)}\n`);
  let engine;
  const getEngine = async () => {
    engine ??= await wasm.SchemaEngine.new(
      { datamodels: datamodels.length ? datamodels : undefined },
      log,
      createAdapterFactory(args.datasource),
    );
    return engine;
  };
  // Methods the CLI calls that the wasm build names differently, does not have, or cannot run.
  const special = {
    getDatabaseVersion: async (params) => (await getEngine()).version(params ?? undefined),
    createDatabase: async () => ({ databaseName: await createDatabase(args.datasource.url) }),
    evaluateDataLoss: async (params) => evaluateDataLoss(await getEngine(), params),
    createMigration: async (params) => createMigration(await getEngine(), params),
  };

  const rl = createInterface({ input: process.stdin });
  let queue = Promise.resolve();
  rl.on("line", (line) => {
    if (!line.trim()) return;
    const request = JSON.parse(line);
    // The CLI sends one request at a time, but keep responses in order regardless.
    queue = queue.then(async () => {
      let response;
      try {
        let result;
        if (special[request.method]) result = await special[request.method](request.params);
        else {
          const instance = await getEngine();
          if (typeof instance[request.method] !== "function") throw new Error(`unsupported method ${request.method}`);
          result = await instance[request.method](request.params);
        }
        response = { jsonrpc: "2.0", id: request.id, result: result ?? null };
      } catch (error) {
        response = { jsonrpc: "2.0", id: request.id, error: toRpcError(error) };
      }
      process.stdout.write(`${JSON.stringify(response)}\n`);
    });
  });
  rl.on("close", () =>
    queue.then(() => Promise.allSettled([...shadowDatabases].map(dropShadowDatabase))).then(() => process.exit(0)),
  );
}

// A panic inside an engine callback surfaces as an uncaught exception: report it the way the native
// engine does (a log record on stderr) rather than dying silently.
process.on("uncaughtException", (error) => {
  const message = lastPanic ?? String(error?.stack ?? error);
  process.stderr.write(
    `${JSON.stringify({ level: "ERROR", target: "schema_engine::panic", fields: { message, is_panic: true } })}\n`,
  );
  process.exit(101);
});

main().catch((error) => {
  process.stderr.write(`${JSON.stringify({ is_panic: true, message: String(error?.stack ?? error) })}\n`);
  process.exit(1);
});
