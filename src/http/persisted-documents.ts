import { createHash } from "node:crypto";
import mobile from "../../clients/mobile/generated/persisted-documents.json" with { type: "json" };
import web from "../../clients/web/generated/persisted-documents.json" with { type: "json" };
import { cacheStore } from "../caching/store.ts";
import { chargeRegistration } from "../domain/rate-limit.ts";
import { config } from "../platform/config.ts";

// Persisted documents: the apps' trusted documents (bundled, and older app versions' stored by deploys) and the
// documents clients register with Automatic Persisted Queries. The HTTP side is plugins/use-persisted-documents.ts.

/** The documents the apps were built with (GraphQL Code Generator manifests), bundled with the function. */
export const BUNDLED = new Map<string, string>(
  Object.entries({ ...mobile, ...web }).map(([id, document]) => [id.replace(/^sha256:/, ""), document]),
);

let known: Set<string> | undefined;

/**
 * The operation's name as a metric dimension: a name of one of the apps' documents, or "other" for anything
 * else a client may send (any string would otherwise be a new metric series: unbounded, and billed per series),
 * "unknown" when it sent none.
 */
export function metricOperationName(name: string | undefined): string {
  if (!name) return "unknown";
  known ??= new Set(
    [...BUNDLED.values()].flatMap((document) =>
      [...document.matchAll(/\b(?:query|mutation|subscription)\s+([_A-Za-z]\w*)/g)].map((match) => match[1] as string),
    ),
  );
  return known.has(name) ? name : "other";
}

/** Keys under which a deploy step stores trusted documents (older app versions), and APQ registrations. */
export function persistedKeys(hash: string) {
  const prefix = config().redisKeyPrefix;
  return { trusted: `${prefix}:trusted:${hash}`, registered: `${prefix}:apq:${hash}` };
}

/** APQ registrations expire when no one has registered them for this long. */
const APQ_TTL_MS = 30 * 24 * 3600_000;

export const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/** Finds a document by hash: bundled manifests, then the trusted set loaded by deploys, then APQ registrations. */
export async function findDocument(hash: string, includeRegistered: boolean): Promise<string | null> {
  const bundled = BUNDLED.get(hash);
  if (bundled) return bundled;
  const keys = persistedKeys(hash);
  const [trusted, registered] = await cacheStore().mget([keys.trusted, keys.registered]);
  return trusted ?? (includeRegistered ? registered : null) ?? null;
}

/** The document each request registers (APQ), held until its operation passed the gate. */
const registrations = new WeakMap<Request, { hash: string; document: string }>();

/** Holds the document a request registers, until the gate admitted its operation (registerAdmittedDocument). */
export function holdRegistration(request: Request, registration: { hash: string; document: string }): void {
  registrations.set(request, registration);
}

/** Whether the request registers a document. */
export const registers = (request: Request) => registrations.has(request);

/**
 * Stores the document the request registers (Automatic Persisted Queries), once its operation was admitted by
 * the gate (http/plugins/use-gate.ts). What is new is charged to the caller's budget of registered bytes; a
 * document already registered costs nothing again (a web client without a persisted-query link sends its text
 * with every request, and a retry after PersistedQueryNotFound sends it once more): it only lives on.
 * @throws RateLimitedError
 */
export async function registerAdmittedDocument(
  request: Request,
  viewerId: string | null,
  clientAddress: string,
): Promise<void> {
  const registration = registrations.get(request);
  if (!registration) return;
  registrations.delete(request);
  const key = persistedKeys(registration.hash).registered;
  const [known] = await cacheStore().mget([key]);
  if (known !== registration.document) {
    await chargeRegistration(Buffer.byteLength(registration.document), viewerId, clientAddress);
  }
  await cacheStore().set(key, registration.document, APQ_TTL_MS);
}

/**
 * Adds documents to the trusted set in Redis (the deploy step: an app version's manifest, so that its
 * documents keep working in `persisted-only` deployments built after it). Every id must be its document's
 * SHA-256. @returns how many documents were stored. @throws Error naming the first id that doesn't match.
 */
export async function trustDocuments(manifest: Record<string, string>): Promise<number> {
  const entries = Object.entries(manifest).map(([id, document]) => [id.replace(/^sha256:/, ""), document] as const);
  for (const [hash, document] of entries) {
    if (sha256(document) !== hash) throw new Error(`${hash} is not the SHA-256 of its document`);
  }
  // No expiry: an app version's documents stay trusted as long as that version may be in use.
  const forever = 100 * 365 * 24 * 3600_000;
  for (const [hash, document] of entries) await cacheStore().set(persistedKeys(hash).trusted, document, forever);
  return entries.length;
}
