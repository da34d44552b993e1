import { createGraphQLError, type Plugin } from "graphql-yoga";
import { RequestErrorCode } from "../../errors.ts";
import { config } from "../../platform/config.ts";
import { BUNDLED, findDocument, holdRegistration, sha256 } from "../persisted-documents.ts";

/**
 * Who may run which documents:
 * - `persisted-only`: only trusted documents (the apps' manifests), by id. For production mobile traffic.
 * - `apq`: trusted documents, and documents registered with Automatic Persisted Queries (hash first, the full
 *   document once). Operations without a hash are refused.
 * - `open` (the default): anything, APQ included (any client may register a document, so requiring hashes
 *   would protect nothing: the gate's limits apply to every operation however it arrives).
 */
export type PersistedQueryPolicy = "persisted-only" | "apq" | "open";

const SHA256_HEX = /^[a-f0-9]{64}$/;

const refuse = (message: string, code: string, status: number) =>
  createGraphQLError(message, { extensions: { code, http: { status } } });

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
      // The parameters' types were checked before (use-params-shape.ts).
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
        const document = await findDocument(hash, policy !== "persisted-only");
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
      if (!BUNDLED.has(hash)) holdRegistration(request, { hash, document: params.query });
    },
  };
}
