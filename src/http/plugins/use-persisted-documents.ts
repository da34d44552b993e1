import { createHash } from "node:crypto";
import { createGraphQLError, type Plugin } from "graphql-yoga";
import mobile from "../../../clients/mobile/generated/persisted-documents.json" with { type: "json" };
import web from "../../../clients/web/generated/persisted-documents.json" with { type: "json" };
import { chargeRegistration } from "../../domain/rate-limit.ts";
import { RequestErrorCode } from "../../errors.ts";
import { cacheStore } from "../../platform/cache.ts";
import { config } from "../../platform/config.ts";
import { requestScope } from "../../platform/logger.ts";

/**
 * Who may run which documents:
 * - `persisted-only`: only trusted documents (the apps' manifests), by id. For production mobile traffic.
 * - `apq`: trusted documents, and documents registered with Automatic Persisted Queries (hash first, the full
 *   document once). Operations without a hash are refused.
 * - `open` (the default): anything, APQ included (any client may register a document, so requiring hashes
 *   would protect nothing: the limits in security.ts apply to every operation however it arrives).
 */
export type PersistedQueryPolicy = "persisted-only" | "apq" | "open";

/** The documents the apps were built with (GraphQL Code Generator manifests), bundled with the function. */
const BUNDLED = new Map<string, string>(
  Object.entries({ ...mobile, ...web }).map(([id, document]) => [id.replace(/^sha256:/, ""), document]),
);

const SHA256_HEX = /^[a-f0-9]{64}$/;

/** Keys under which a deploy step stores trusted documents (older app versions), and APQ registrations. */
export function persistedKeys(hash: string) {
  const prefix = config().redisKeyPrefix;
  return { trusted: `${prefix}:trusted:${hash}`, registered: `${prefix}:apq:${hash}` };
}

/** APQ registrations expire when no one has registered them for this long. */
const APQ_TTL_MS = 30 * 24 * 3600_000;

export const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

const refuse = (message: string, code: string, status: number) =>
  createGraphQLError(message, { extensions: { code, http: { status } } });

/** Finds a document by hash: bundled manifests, then the trusted set loaded by deploys, then APQ registrations. */
async function lookup(hash: string, includeRegistered: boolean): Promise<string | null> {
  const bundled = BUNDLED.get(hash);
  if (bundled) return bundled;
  const keys = persistedKeys(hash);
  const [trusted, registered] = await cacheStore().mget([keys.trusted, keys.registered]);
  return trusted ?? (includeRegistered ? registered : null) ?? null;
}

/**
 * Persisted documents, by `documentId` ("sha256:<hex>" or "<hex>") or by the Automatic Persisted Queries
 * extension (`extensions.persistedQuery: { version: 1, sha256Hash }`), under the deployment's policy. The APQ
 * protocol is Apollo's, with its errors: PersistedQueryNotFound (404, the client then sends the document with
 * its hash) and PersistedQueryMismatch (400). Registrations live in Redis, so a hash registered through one
 * instance resolves on every other (in process without Redis).
 */
export function usePersistedDocuments(): Plugin {
  return {
    async onParams({ params, setParams, request }) {
      const { policy, maxDocumentBytes } = config().persistedQueries;
      // A malformed request is that before anything else: Yoga answers it (400 BAD_REQUEST).
      const { query, extensions: given } = params as { query?: unknown; extensions?: unknown };
      if ((query != null && typeof query !== "string") || (given != null && typeof given !== "object")) return;
      const extension = params.extensions?.persistedQuery as { version?: unknown; sha256Hash?: unknown } | undefined;
      // Yoga's GET parser keeps only the standard parameters: read documentId from the URL itself.
      const documentId =
        (params as { documentId?: unknown }).documentId ??
        (request.method === "GET" ? new URL(request.url).searchParams.get("documentId") : null) ??
        undefined;
      let hash: string | undefined;
      if (typeof documentId === "string") hash = documentId.replace(/^sha256:/, "").toLowerCase();
      else if (extension && extension.version === 1 && typeof extension.sha256Hash === "string") {
        hash = extension.sha256Hash.toLowerCase();
      } else if (extension) {
        throw refuse(
          "Unsupported persisted query: send { version: 1, sha256Hash }.",
          RequestErrorCode.BAD_REQUEST,
          400,
        );
      }
      if (hash !== undefined && !SHA256_HEX.test(hash)) {
        throw refuse(
          "A persisted document id is the SHA-256 hash of the document, in hex.",
          RequestErrorCode.BAD_REQUEST,
          400,
        );
      }

      if (!params.query) {
        if (hash === undefined) return; // Yoga answers "Must provide query string."
        const document = await lookup(hash, policy !== "persisted-only");
        if (!document) throw refuse("PersistedQueryNotFound", RequestErrorCode.PERSISTED_QUERY_NOT_FOUND, 404);
        setParams({ ...params, query: document });
        return;
      }

      if (policy === "persisted-only" && !(hash && BUNDLED.get(hash) === params.query)) {
        throw refuse(
          "This API only runs the operations its apps were built with: send a persisted document's documentId.",
          RequestErrorCode.PERSISTED_QUERY_NOT_ALLOWED,
          400,
        );
      }
      if (hash === undefined) {
        if (policy === "apq") {
          throw refuse(
            "Send operations as Automatic Persisted Queries (extensions.persistedQuery with the document's SHA-256) or by documentId.",
            RequestErrorCode.PERSISTED_QUERY_NOT_ALLOWED,
            400,
          );
        }
        return;
      }
      // Registration: the hash must be the document's, and the document small enough to keep.
      if (Buffer.byteLength(params.query) > maxDocumentBytes) {
        throw refuse(
          `A persisted document can be at most ${maxDocumentBytes} bytes.`,
          RequestErrorCode.PERSISTED_QUERY_TOO_LARGE,
          413,
        );
      }
      if (sha256(params.query) !== hash) {
        throw refuse("PersistedQueryMismatch", RequestErrorCode.PERSISTED_QUERY_MISMATCH, 400);
      }
      // Kept only once the operation has passed the gate (parsed, valid, within the limits, charged): see
      // registerAdmittedDocument. A document that does not parse, or that the limits refuse, is never stored.
      const scope = requestScope.getStore();
      if (scope && !BUNDLED.has(hash)) scope.registration = { hash, document: params.query };
    },
  };
}

/**
 * Stores the document the request registers (Automatic Persisted Queries), once its operation was admitted by
 * the gate (security.ts), charging its size to the caller's budget of registered bytes.
 * @throws RateLimitedError
 */
export async function registerAdmittedDocument(viewerId: string | null, clientAddress: string): Promise<void> {
  const scope = requestScope.getStore();
  const registration = scope?.registration;
  if (!registration) return;
  scope.registration = undefined;
  await chargeRegistration(Buffer.byteLength(registration.document), viewerId, clientAddress);
  await cacheStore().set(persistedKeys(registration.hash).registered, registration.document, APQ_TTL_MS);
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
