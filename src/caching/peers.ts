import { randomUUID } from "node:crypto";
import pg from "pg";
import { logger } from "../platform/logger.ts";

/**
 * How the in-process cache (no REDIS_URL) hears of the writes of other processes on the same database: the
 * images and events functions, other function instances, `npm run events`. Each process that caches holds one
 * connection that LISTENs on a PostgreSQL channel; every commit's invalidations are NOTIFYed there, and applied by
 * everyone else.
 *
 * Notifications arrive asynchronously, so a read first syncs: a round trip on the listening connection. PostgreSQL
 * sends a listening session the notifications committed before the statement it answers ahead of that answer,
 * so once it returns, every change that another process published before the read began has been applied here
 * (a writer publishes before it answers its client: that is read-your-writes across processes). It is the
 * in-process store's counterpart of Redis's version check, and costs as much: one round trip per batch of reads.
 *
 * While the connection is down, nothing may be served from memory (the store answers "nothing cached"), and once
 * it is back everything kept under a version before is void: notifications sent meanwhile were missed.
 */
export interface CachePeers {
  /**
   * Resolves once every change published before the call has been applied (see above); false when that cannot be
   * known (no connection): the caller must not trust what it holds.
   */
  sync(): Promise<boolean>;
  /** Tells the other processes; resolves once PostgreSQL has taken the notification. */
  publish(invalidations: Invalidation[]): Promise<void>;
  close(): Promise<void>;
}

export interface Invalidation {
  versionKey: string;
  valueKeys: string[];
}

export interface PeerHandlers {
  /** Another process's invalidations, to apply to this process's store. */
  apply(invalidations: Invalidation[]): void;
  /** What the store keeps under versions may have missed changes: void it. */
  reset(): void;
}

const CHANNEL = "shutter_cache";
/** The listening connection's `application_name` in pg_stat_activity. */
export const APPLICATION_NAME = "shutter-cache-peers";
/** PostgreSQL refuses payloads of 8000 bytes or more: larger batches go in several notifications. */
const MAX_PAYLOAD = 7_000;
/** A sync that takes longer means a dead or frozen-and-dropped connection: it is replaced. */
const SYNC_TIMEOUT_MS = 1_000;

/** The cache peers over PostgreSQL LISTEN/NOTIFY, on a connection of their own to `url`. */
export function postgresPeers(url: string, handlers: PeerHandlers): CachePeers {
  let client: pg.Client | undefined;
  let connecting: Promise<pg.Client> | undefined;
  /** LISTEN/NOTIFY does not work through this URL (a transaction-mode pooler): in-process caching stays off. */
  let unusable = false;
  let healthy = true;
  let waiting: Promise<boolean> | undefined;
  let sending: Promise<unknown> = Promise.resolve();

  const drop = (stale: pg.Client, error?: unknown) => {
    if (client === stale) client = undefined;
    connecting = undefined;
    stale.end().catch(() => {});
    if (healthy) {
      healthy = false;
      logger().warn(
        { err: error },
        "cache: lost the connection that hears other processes' changes; serving from PostgreSQL",
      );
    }
  };

  const connect = (): Promise<pg.Client> =>
    (connecting ??= (async () => {
      const next = new pg.Client({
        connectionString: url,
        connectionTimeoutMillis: 2_000,
        keepAlive: true,
        // Named, so an operator (or a test) can tell it from the pool's connections.
        application_name: APPLICATION_NAME,
      });
      next.on("error", (error) => drop(next, error));
      next.on("end", () => drop(next));
      const probe = `probe:${randomUUID()}`;
      let probed: () => void = () => {};
      const heard = new Promise<void>((resolve) => {
        probed = resolve;
      });
      next.on("notification", (message) => {
        if (message.payload === probe) return probed();
        // Its own notifications come back too: already applied.
        if (message.processId === (next as pg.Client & { processID?: number }).processID) return;
        if (!message.payload?.startsWith("[")) return;
        handlers.apply(JSON.parse(message.payload) as Invalidation[]);
      });
      try {
        await next.connect();
        await next.query(`LISTEN ${CHANNEL}`);
        // Through a transaction-mode pooler LISTEN "succeeds", but the session that listens goes back to the pool
        // and what it hears reaches whoever holds it then. Checked once, with a notification from another
        // connection: a pooler hands that one the same server session (which hears itself) or another (whose
        // notification the pooled, idle listener never passes on); only a session of our own hears it.
        const prober = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
        prober.on("error", () => {});
        try {
          await prober.connect();
          await prober.query("SELECT pg_notify($1, $2)", [CHANNEL, probe]);
        } finally {
          await prober.end().catch(() => {});
        }
        const arrived = await Promise.race([
          heard.then(() => true),
          new Promise<boolean>((resolve) => setTimeout(resolve, SYNC_TIMEOUT_MS, false)),
        ]);
        if (!arrived) {
          unusable = true;
          logger().error(
            "cache: LISTEN/NOTIFY does not work through DATABASE_URL (a transaction-mode pooler?): nothing is cached between requests; set REDIS_URL, or use a direct or session-mode connection",
          );
          throw new Error("LISTEN/NOTIFY unavailable");
        }
      } catch (error) {
        next.removeAllListeners("end");
        await next.end().catch(() => {});
        connecting = undefined;
        throw error;
      }
      // What was cached before this connection listened may have missed changes.
      handlers.reset();
      if (!healthy) {
        healthy = true;
        logger().info("cache: hearing other processes' changes again; caching resumed");
      }
      client = next;
      return next;
    })());

  const roundTrip = async (): Promise<boolean> => {
    if (unusable) return false;
    let current: pg.Client | undefined;
    try {
      current = client ?? (await connect());
      await current.query({ text: "SELECT 1", query_timeout: SYNC_TIMEOUT_MS } as pg.QueryConfig);
      return true;
    } catch (error) {
      if (current) drop(current, error);
      else if (healthy && !unusable) {
        healthy = false;
        logger().warn({ err: error }, "cache: cannot hear other processes' changes; serving from PostgreSQL");
      }
      return false;
    }
  };

  return {
    sync() {
      // Callers share the next round trip not yet sent: it leaves after their call, so it covers whatever was
      // published before it. At most one is in flight and one waits.
      waiting ??= sending.then(() => {
        waiting = undefined;
        const sent = roundTrip();
        sending = sent;
        return sent;
      });
      return waiting;
    },

    async publish(invalidations) {
      if (unusable || invalidations.length === 0) return;
      const payloads: string[] = [];
      let batch: Invalidation[] = [];
      let size = 2;
      for (const invalidation of invalidations) {
        const length = JSON.stringify(invalidation).length + 1;
        if (batch.length && size + length > MAX_PAYLOAD) {
          payloads.push(JSON.stringify(batch));
          batch = [];
          size = 2;
        }
        batch.push(invalidation);
        size += length;
      }
      payloads.push(JSON.stringify(batch));
      // Once more on a new connection if the one in hand had died (a cut the client had not noticed yet).
      for (let attempt = 1; ; attempt++) {
        let current: pg.Client | undefined;
        try {
          current = client ?? (await connect());
          for (const payload of payloads) await current.query("SELECT pg_notify($1, $2)", [CHANNEL, payload]);
          return;
        } catch (error) {
          if (current) drop(current, error);
          if (attempt < 2) continue;
          // The write has committed; other processes may keep the old value until their own connection drops.
          logger().error({ err: error }, "cache: could not tell other processes of a change");
          return;
        }
      }
    },

    async close() {
      const current = client;
      client = undefined;
      connecting = undefined;
      if (current) {
        current.removeAllListeners("end");
        await current.end().catch(() => {});
      }
    },
  };
}
