// Types for prisma/wasm-engine.mjs (plain JavaScript: the CLI shim runs it without a TypeScript step).
import type { SqlMigrationAwareDriverAdapterFactory } from "@prisma/driver-adapter-utils";

export type WasmEngine = typeof import("@prisma/schema-engine-wasm/schema_engine");
export function loadWasmEngine(wasmPath?: string): Promise<WasmEngine>;
export function createAdapterFactory(
  datasource: { url: string; shadowDatabaseUrl?: string },
  opened?: { dispose(): Promise<void> }[],
): SqlMigrationAwareDriverAdapterFactory;
export function createDatabase(url: string): Promise<string>;
export function dropShadowDatabase(url: string): Promise<void>;
export function onServer<T>(url: string, fn: (client: import("pg").Client, database: string) => Promise<T>): Promise<T>;
export function quoteIdent(name: string): string;
export function takePanic(): string | undefined;
export const shadowDatabases: Set<string>;
