// Idempotency keys for mutations (the `Idempotency-Key` header; the edge is http/plugins/use-idempotency.ts).
//
// A key is claimed by the mutation's write, as its transaction's first statement (the unit of work,
// services/write.ts, calls `claimKey` right after BEGIN): the key exists if and only if that transaction — the
// mutation's effect — committed. A duplicate arriving at the same moment, on any instance, finds the key locked
// (or already there) and rolls back before doing anything, then replays the first one's answer once it is
// recorded; a crash between the effect and recording its answer leaves the key, so a retry can never apply the
// effect twice. The first answer
// is stored on the row once known, and replayed to repeats for IDEMPOTENCY_RETENTION_HOURS.
//
// Nothing in the table is readable without the key, which only the client holds: a row keeps the key's SHA-256,
// and the answer sealed (AES-256-GCM) with a key derived from the Idempotency-Key and its scope. Answers can hold
// credentials (a sign-in's tokens, an upload's signed URL); a copy of the database does not give them away.
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from "node:crypto";
import type { Prisma } from "../generated/prisma/client.ts";
import { config } from "./config.ts";
import { db } from "./db.ts";

export interface IdempotencyClaim {
  /** Whose keys: the viewer's id, or "anonymous". */
  scope: string;
  key: string;
  /** sha256 of the operation (document, name) and its variables. */
  requestHash: string;
  /** Claimed by a committed write of this request. */
  claimed: boolean;
  /** Another request holds the key: this one's write was rolled back before it did anything. */
  taken: boolean;
  /** A write of this request is claiming it now (others of the same request don't try). */
  inFlight?: boolean;
}

/** A transaction found the key claimed by another request (its work is rolled back). */
export class IdempotencyKeyTaken extends Error {
  constructor() {
    super("Idempotency-Key already claimed by another request");
    this.name = "IdempotencyKeyTaken";
  }
}

/** What the table keeps of a key: its SHA-256. */
export const keyId = (key: string) => createHash("sha256").update(key).digest("hex");

const sealingKey = (scope: string, key: string) =>
  Buffer.from(hkdfSync("sha256", key, scope, "shutter idempotency answer", 32));

/** An answer as stored: sealed with the Idempotency-Key (see above). */
interface Sealed {
  sealed: string;
}

export function seal(scope: string, key: string, answer: unknown): Sealed {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", sealingKey(scope, key), iv);
  const body = Buffer.concat([cipher.update(JSON.stringify(answer), "utf8"), cipher.final()]);
  return { sealed: Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64") };
}

export function unseal(scope: string, key: string, stored: Sealed): unknown {
  const raw = Buffer.from(stored.sealed, "base64");
  const decipher = createDecipheriv("aes-256-gcm", sealingKey(scope, key), raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(12, 28));
  return JSON.parse(Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8"));
}

export const requestHash = (document: string, operationName: string | undefined, variables: unknown) =>
  createHash("sha256")
    .update(JSON.stringify([document, operationName ?? null, variables ?? {}]))
    .digest("hex");

/**
 * Claims the key in a transaction that has just begun (an expired row, older than the retention, is taken over).
 * Never waits: a transaction of another request claiming the same key right now holds its advisory lock, and
 * one that committed left its row; either way @throws IdempotencyKeyTaken at once, and this request then waits
 * for that one's answer outside any transaction. (Waiting inside would also stall Prisma: a transaction that
 * cannot start holds up the client's others.)
 */
export async function claimKey(tx: Prisma.TransactionClient, claim: IdempotencyClaim): Promise<void> {
  const id = keyId(claim.key);
  const [lock] = await tx.$queryRaw<{ locked: boolean }[]>`
    SELECT pg_try_advisory_xact_lock(hashtextextended(${claim.scope}::text || ':' || ${id}::text, 17)) AS locked`;
  const inserted = lock?.locked
    ? await tx.$queryRaw<{ claimed: number }[]>`
        INSERT INTO idempotency_keys (scope, key, request_hash) VALUES (${claim.scope}, ${id}, ${claim.requestHash})
        ON CONFLICT (scope, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, response = NULL,
          created_at = now()
        WHERE idempotency_keys.created_at < now() - make_interval(hours => ${config().idempotencyRetentionHours}::int)
        RETURNING 1 AS claimed`
    : [];
  if (!inserted.length) {
    claim.taken = true;
    throw new IdempotencyKeyTaken();
  }
}

/** A key claimed this long ago without an answer belongs to a request that died after its effect committed. */
export const LOST_AFTER_MS = 60_000;

export interface StoredKey {
  requestHash: string;
  /** The answer, unsealed; null until the request that holds the key has one; NOT_KEPT when it was not kept. */
  response: unknown;
  createdAt: Date;
}

/** The answer of a key whose request finished without keeping it (too large, or beyond its owner's budget). */
export const NOT_KEPT = Symbol("answer not kept");

/** The key's row, unless it expired, its answer unsealed. */
export async function findKey(scope: string, key: string): Promise<StoredKey | null> {
  const [row] = await db().$queryRaw<(Omit<StoredKey, "response"> & { response: Sealed | { notKept: true } | null })[]>`
    SELECT request_hash AS "requestHash", response, created_at AS "createdAt" FROM idempotency_keys
    WHERE scope = ${scope} AND key = ${keyId(key)}
      AND created_at >= now() - make_interval(hours => ${config().idempotencyRetentionHours}::int)`;
  if (!row) return null;
  const { response } = row;
  return {
    ...row,
    response: response === null ? null : "notKept" in response ? NOT_KEPT : unseal(scope, key, response),
  };
}

/**
 * Records the answer of the request that holds the key (`null`: that it finished without keeping its answer, which
 * a repeat is told was lost). A request that committed nothing in a transaction (its writes, if any, were single statements) claims
 * the key now. @returns false if another request holds it.
 */
export async function recordAnswer(claim: IdempotencyClaim, response: unknown): Promise<boolean> {
  const json = JSON.stringify(response === null ? { notKept: true } : seal(claim.scope, claim.key, response));
  const id = keyId(claim.key);
  if (claim.claimed) {
    await db().$executeRaw`
      UPDATE idempotency_keys SET response = ${json}::jsonb WHERE scope = ${claim.scope} AND key = ${id}`;
    return true;
  }
  const inserted = await db().$queryRaw<{ claimed: number }[]>`
    INSERT INTO idempotency_keys (scope, key, request_hash, response)
    VALUES (${claim.scope}, ${id}, ${claim.requestHash}, ${json}::jsonb)
    ON CONFLICT (scope, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, response = EXCLUDED.response,
      created_at = now()
    WHERE idempotency_keys.created_at < now() - make_interval(hours => ${config().idempotencyRetentionHours}::int)
    RETURNING 1 AS claimed`;
  return inserted.length > 0;
}

/**
 * Waits (a little) for the answer of the request that holds a key: its row appears when its transaction commits,
 * and its answer once the operation is done.
 */
export async function awaitAnswer(scope: string, key: string, timeoutMs = 5_000): Promise<StoredKey | null> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const stored = await findKey(scope, key);
    if ((stored && stored.response !== null) || Date.now() > until) return stored;
    // Claimed a minute ago and still no answer: its request died after committing; no use waiting.
    if (stored && Date.now() - stored.createdAt.getTime() > LOST_AFTER_MS) return stored;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Forgets expired keys, a bounded number at a time (the events runner's and the schedule's housekeeping). */
export async function pruneKeys(): Promise<number> {
  return db().$executeRaw`
    DELETE FROM idempotency_keys WHERE ctid IN (
      SELECT ctid FROM idempotency_keys
      WHERE created_at < now() - make_interval(hours => ${config().idempotencyRetentionHours}::int) LIMIT 5000)`;
}
