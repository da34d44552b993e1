// Prisma's schema engine as WebAssembly over `@prisma/adapter-pg`: what the CLI shim (prisma/schema-engine.mjs)
// and the deploy-time migration function (functions/migrate.ts) run instead of the native engine binary,
// which cannot be downloaded on air-gapped machines and does not exist for every platform.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { PrismaPg } from "@prisma/adapter-pg";
import { bindMigrationAwareSqlAdapterFactory, ColumnTypeEnum } from "@prisma/driver-adapter-utils";
import pg from "pg";
import Result from "pg/lib/result.js";

const require = createRequire(import.meta.url);

// The engine's catalog queries return Postgres `"char"` columns (oid 18, e.g. pg_constraint.contype), which
// adapter-pg 7.10 refuses as an unsupported type, while the engine reads them as single characters.
// pg still parses them as strings (parsers are chosen before the id is changed), the id is swapped for
// `"char"[]`, which adapter-pg accepts, and queryRaw turns such columns, whose values are not arrays,
// into the Character type the engine expects.
const CHAR_OID = 18;
const CHAR_ARRAY_OID = 1002;

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

// The wasm build reports a Rust panic's message through this global before it throws.
let lastPanic;
globalThis.PRISMA_WASM_PANIC_REGISTRY = {
  set_message(message) {
    lastPanic = message;
  },
};

/** The message of the last Rust panic, once. */
export function takePanic() {
  const panic = lastPanic;
  lastPanic = undefined;
  return panic;
}

let loaded;

/**
 * Instantiates the engine's WebAssembly build, once per process: its JavaScript bindings hold one instance, and
 * instantiating again would pull it from under engines still running. `wasmPath` is where the .wasm file is
 * when bundled (the bundle copies it next to the function); by default, the package's own.
 */
export function loadWasmEngine(wasmPath) {
  loaded ??= instantiate(wasmPath);
  return loaded;
}

async function instantiate(wasmPath) {
  const bindings = await import("@prisma/schema-engine-wasm/schema_engine_bg");
  const bytes = readFileSync(
    wasmPath ?? require.resolve("@prisma/schema-engine-wasm/schema_engine_bg").replace(/\.js$/, ".wasm"),
  );
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

export const shadowDatabases = new Set();

/**
 * Adapter factory for the engine. adapter-pg's own connectToShadowDb overrides only `database`, which a
 * connection string silently takes precedence over, so the "shadow" work would run on the real database:
 * the shadow database is created and addressed here instead (or the given shadowDatabaseUrl, wiped first).
 */
export function createAdapterFactory(datasource, opened = []) {
  const factory = withCharColumns(new PrismaPg({ connectionString: datasource.url }));
  // The engine does not close what it connects: callers that need to (a migration run) close `opened`.
  const connect = factory.connect.bind(factory);
  factory.connect = async () => {
    const adapter = await connect();
    opened.push(adapter);
    return adapter;
  };
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

export async function dropShadowDatabase(url) {
  if (!shadowDatabases.delete(url)) return;
  await onServer(url, (client, database) =>
    client.query(`DROP DATABASE IF EXISTS ${quoteIdent(database)} WITH (FORCE)`),
  );
}

/** Runs SQL on the server's maintenance database, for creating or dropping the target database. */
export async function onServer(url, fn) {
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

export const quoteIdent = (name) => `"${name.replaceAll('"', '""')}"`;

export async function createDatabase(url) {
  await onServer(url, async (client, database) => {
    const { rowCount } = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]);
    if (!rowCount) await client.query(`CREATE DATABASE ${quoteIdent(database)}`);
  });
  return new URL(url).pathname.slice(1);
}
