#!/usr/bin/env node
// Stands in for Prisma's native `schema-engine` binary, which the CLI downloads on first use and which
// cannot be downloaded on air-gapped machines. It speaks the same protocol the CLI expects from the binary
// (JSON-RPC 2.0, one object per line on stdin/stdout, logs on stderr) and runs the engine's WebAssembly
// build (prisma/wasm-engine.mjs). Dev and deploy tooling only: never bundled into the function.
// `prisma/engine.mjs` points the CLI here through PRISMA_SCHEMA_ENGINE_BINARY.
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import pg from "pg";
import {
  createAdapterFactory,
  createDatabase,
  dropShadowDatabase,
  loadWasmEngine,
  onServer,
  quoteIdent,
  shadowDatabases,
  takePanic,
} from "./wasm-engine.mjs";

const ENGINE_VERSION = "59be4fda12412a79eeb9c2ae727b6aa723593323";

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
  const panic = takePanic();
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
  const message = takePanic() ?? String(error?.stack ?? error);
  process.stderr.write(
    `${JSON.stringify({ level: "ERROR", target: "schema_engine::panic", fields: { message, is_panic: true } })}\n`,
  );
  process.exit(101);
});

main().catch((error) => {
  process.stderr.write(`${JSON.stringify({ is_panic: true, message: String(error?.stack ?? error) })}\n`);
  process.exit(1);
});
