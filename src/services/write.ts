// The one way services write: a unit of work. A service says what its write does, in order, inside
// `write(actor, (w) => …)`; this module does the rest the same way for every write:
//
//   1. BEGIN, and as the first statement the request's Idempotency-Key is claimed (if it has one this request has
//      not claimed yet): the key exists if and only if this transaction — the mutation's effect — commits;
//   2. the service's statements, on `w.tx`; outbox events recorded with `w.event(…)`, changes of cached entities
//      declared with `w.changed(…)`;
//   3. COMMIT;
//   4. after the commit, in one place: the cache versions of what changed are bumped (on every instance), the
//      request's loaders forget it (per-viewer ones too), the change listeners and the CDN purge hear of it
//      (caching/changes.ts), published posts are fanned out to their followers' timelines (caching/timelines.ts),
//      and the events are announced to the events handler (events/stream.ts).
//
// Nothing of this happens anywhere else: the database adapter only counts, traces and watches for outages.

import { applyChanges, type Change } from "../caching/changes.ts";
import { fanOut } from "../caching/timelines.ts";
import type { Viewer } from "../domain/auth.ts";
import { type DomainEvents, type EventKind, recordEvent } from "../events/outbox.ts";
import { announce } from "../events/stream.ts";
import type { Prisma } from "../generated/prisma/client.ts";
import { db, walPosition } from "../platform/db.ts";
import { claimKey, type IdempotencyClaim } from "../platform/idempotency.ts";
import { logger } from "../platform/logger.ts";
import { replicasConfigured } from "../platform/replicas.ts";

/**
 * What a request's writes hand back to the request (one per request, made by `createContext`): the key to claim,
 * and the loaders that must forget what was written.
 */
export interface RequestWrites {
  /** The mutation's Idempotency-Key (set by http/plugins/use-idempotency.ts), claimed by its first write. */
  idempotency?: IdempotencyClaim;
  /** Makes the request's loaders forget what a committed write changed, so the rest of the operation reads it anew. */
  forget(changes: readonly Change[]): void;
}

/** Who a write is done for: a request's caller (signed in or not), or `null` for the system's own work. */
export type Actor = { readonly writes?: RequestWrites } | null;

/** A signed-in person acting through a request: what the services of signed-in mutations take. */
export interface SignedIn {
  readonly viewer: Viewer;
  readonly writes?: RequestWrites;
}

/** A write in progress: its transaction, and what it will announce and invalidate once committed. */
export interface UnitOfWork {
  /** The transaction (or, for a `singleStatement` write without a key to claim, the client). */
  readonly tx: Prisma.TransactionClient;
  /** Records an outbox event in the transaction (see events/outbox.ts); announced after the commit. */
  event<K extends EventKind>(kind: K, recipientId: string | null, payload: DomainEvents[K]): Promise<bigint>;
  /** Declares cached entities this write changes (made by their definitions: `postEntity.changed(id, …)`). */
  changed(...changes: (Change | readonly Change[])[]): void;
  /** Declares a post this write published: once committed, it joins its author's and followers' timelines. */
  published(postId: string): void;
}

export interface WriteOptions {
  /**
   * The write is one statement, atomic by itself: it runs without BEGIN/COMMIT, unless it has a key to claim
   * (the claim and the effect always commit together).
   */
  singleStatement?: boolean;
  /**
   * The write is idempotent by itself (retrying it is harmless, e.g. verifying an upload): it claims no
   * Idempotency-Key, which is left to the write that is the mutation's effect.
   */
  idempotent?: boolean;
}

/**
 * Runs a service's write as one unit of work (see the top of this file). @returns what `work` returns, once the
 * write committed and its effects were applied. Whatever `work` throws rolls the write back: nothing is
 * invalidated or announced. @throws IdempotencyKeyTaken when another request holds the key (nothing was done).
 */
export async function write<T>(
  actor: Actor,
  work: (w: UnitOfWork) => Promise<T>,
  options: WriteOptions = {},
): Promise<T> {
  const request = actor?.writes;
  const claim = options.idempotent ? undefined : request?.idempotency;
  const claiming = claim && !claim.claimed && !claim.taken && !claim.inFlight ? claim : undefined;
  const changes: Change[] = [];
  const events: bigint[] = [];
  const published: string[] = [];
  const unit = (tx: Prisma.TransactionClient): UnitOfWork => ({
    tx,
    async event(kind, recipientId, payload) {
      const id = await recordEvent(tx, kind, recipientId, payload);
      events.push(id);
      return id;
    },
    changed(...declared) {
      changes.push(...declared.flat());
    },
    published(postId) {
      published.push(postId);
    },
  });
  let result: T;
  if (options.singleStatement && !claiming) {
    result = await work(unit(db()));
  } else {
    if (claiming) claiming.inFlight = true;
    try {
      result = await db().$transaction(async (tx) => {
        if (claiming) await claimKey(tx, claiming);
        return work(unit(tx));
      });
      if (claiming) claiming.claimed = true;
    } finally {
      if (claiming) claiming.inFlight = false;
    }
  }
  // Where the write ended in the primary's WAL: no replica that has not replayed that far serves what it changed.
  const lsn = changes.length && replicasConfigured() ? await walPosition() : undefined;
  await applyChanges(changes, request, lsn);
  // Followers see a post as soon as its author does; what Redis could not take, the events handler adds from the
  // outbox's post.created (workers/notifications.ts).
  for (const postId of published) {
    await fanOut(postId).catch((error) =>
      logger().warn({ err: error, postId }, "feed: fan-out deferred to the events handler"),
    );
  }
  await announce(events);
  return result;
}
