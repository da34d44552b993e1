import { AsyncLocalStorage } from "node:async_hooks";
import { type RequestScope, requestScope } from "./request-scope.ts";

// What a request read, noted as it reads, for the response cache (caching/response-cache.ts): which versions
// of cached entity parts, and whether anything no version covers. Here rather than in caching/ because the
// database adapter feeds it (every statement outside a covered read, db.ts): the platform cannot import the
// caching that is built on it.

/**
 * What an operation read, as the response cache needs it: the version of every cached entity part it read,
 * whether it read anything no version covers (then it is not cached), and how long the shortest-lived shared
 * value it read (explore's ranking) is shared.
 */
export interface Reads {
  /** Entity part (`post:<id>`) → its version key and the version read. */
  versions: Map<string, { key: string; version: string }>;
  /** Why the answer cannot be cached, if it cannot (the first reason). */
  uncovered?: string;
  maxAgeSeconds?: number;
  /** The answer may be shared (an anonymous query selecting nothing personal): its reads are worth noting. */
  shareable?: boolean;
}

// Set while a read whose rows some version (or a time bound) covers is running; every other statement of a
// request makes its answer uncacheable (see noteStatement, called by the database adapter for every statement).
const covering = new AsyncLocalStorage<true>();

// Each request's reads, kept here (not on the request's scope): nothing else writes them.
const readsByRequest = new WeakMap<RequestScope, Reads>();

/** What the current request read (made on first use); undefined outside a request. */
export function requestReads(scope: RequestScope | undefined = requestScope.getStore()): Reads | undefined {
  if (!scope) return undefined;
  let reads = readsByRequest.get(scope);
  if (!reads) {
    reads = { versions: new Map() };
    readsByRequest.set(scope, reads);
  }
  return reads;
}

/**
 * The reads of the current request if its answer may be shared (decided before it executes; see
 * use-response-cache.ts). Only those are noted: a signed-in request or a mutation pays nothing for the tracking.
 */
function sharedReads(): Reads | undefined {
  const scope = requestScope.getStore();
  const reads = scope && readsByRequest.get(scope);
  return reads?.shareable ? reads : undefined;
}

/** Whether the current request's answer may be shared. */
export function sharing(): boolean {
  return sharedReads() !== undefined;
}

/** Runs a read whose rows are covered by versions the request noted (or a time bound it noted). */
export function covered<T>(read: () => Promise<T>): Promise<T> {
  if (!sharing()) return read();
  // Awaited inside: Prisma's queries are lazy, and would otherwise start (and run) outside.
  return covering.run(true, async () => await read());
}

/** A statement sent to PostgreSQL (db.ts): outside a covered read, the answer depends on rows nothing tracks. */
export function noteStatement(): void {
  if (!covering.getStore()) noteUncovered("a statement no cached entity covers");
}

/** The answer cannot be cached: it read something no version covers (a missing row, an uncovered list). */
export function noteUncovered(reason: string): void {
  const reads = sharedReads();
  if (reads) reads.uncovered ??= reason;
}

/** The request read an entity part (`tag`, e.g. `post-counts:<id>`) under this version (caching/entities.ts). */
export function noteVersion(tag: string, key: string, version: string): void {
  sharedReads()?.versions.set(tag, { key, version });
}

/** Whether the request already noted the version of an entity part (a list read depends on it). */
export function hasNotedVersion(tag: string): boolean {
  return sharedReads()?.versions.has(tag) ?? true;
}

/** The request read a value everyone shares for `seconds` (a ranking): its answer may not be kept longer. */
export function boundAge(seconds: number): void {
  const reads = sharedReads();
  if (reads) reads.maxAgeSeconds = Math.min(reads.maxAgeSeconds ?? seconds, seconds);
}
