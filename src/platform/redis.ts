import calculateSlot from "cluster-key-slot";
import { Cluster, Redis, type RedisOptions } from "ioredis";
import { config } from "./config.ts";

/**
 * Every Redis connection of the process comes from here: one node (`REDIS_URL`), or a cluster (`REDIS_CLUSTER=true`,
 * `REDIS_URL` then names any node or the configuration endpoint; ElastiCache Serverless and MemoryDB are cluster
 * mode only). Callers keep what must be atomic or fetched in one command within one hash slot (`{tag}` in the key)
 * and split the rest with `bySlot`.
 */
export type RedisClient = Redis | Cluster;

/**
 * A new connection with these options (each caller owns its connection and its options: timeouts, blocking), to
 * the configured Redis or to `url` in the same mode.
 */
export function connectRedis(options: RedisOptions = {}, url = config().redis?.url): RedisClient {
  if (!url) throw new Error("connectRedis() needs REDIS_URL");
  if (!config().redis?.cluster) return new Redis(url, options);
  // REDIS_URL's node, then REDIS_CLUSTER_NODES: a new instance must find the cluster while one of them is down (a
  // self-managed cluster's master being failed over; a configuration endpoint resolves to live nodes by itself).
  const more = url === config().redis?.url ? (config().redis?.clusterNodes ?? []) : [];
  return connectCluster(
    [url, ...more.map((node) => `redis://${node}`)].map((seed) => new URL(seed)),
    options,
  );
}

function connectCluster([url, ...more]: URL[], options: RedisOptions): Cluster {
  const { lazyConnect, ...nodeOptions } = options;
  if (!url) throw new Error("connectCluster() needs a node");
  const seeds = [url, ...more].map((node) => ({ host: node.hostname, port: Number(node.port || 6379) }));
  return new Cluster(seeds, {
    lazyConnect,
    // Commands for the same node issued in one tick travel in one write (a request's per-slot GETs become one
    // round trip per node, in parallel).
    enableAutoPipelining: true,
    // Scripts whose key count comes first: auto-pipelining would route them by that number, not by their keys.
    autoPipeliningIgnoredCommands: ["fillIfUnchanged", "invalidate", "fanOutTimeline"],
    // TLS certificates name the nodes by the names they announce: connect to them by name (ElastiCache).
    dnsLookup: (address, callback) => callback(null, address),
    redisOptions: {
      ...nodeOptions,
      username: decodeURIComponent(url.username) || undefined,
      password: decodeURIComponent(url.password) || undefined,
      // Each node is verified against its own name (the names it announces: see dnsLookup).
      tls: url.protocol === "rediss:" ? {} : undefined,
    },
    // Where a failed-over master's slots went is learnt from MOVED replies, a periodic refresh, and a refresh when
    // a node fails (caching/store.ts).
    slotsRefreshTimeout: 1_000,
    slotsRefreshInterval: 5_000,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    // Pub/sub on a cluster: sharded channels (SSUBSCRIBE), each served by the shard that owns its slot.
    shardedSubscribers: true,
  });
}

export const isCluster = (client: RedisClient): client is Cluster => client instanceof Cluster;

/**
 * Items grouped so that each group's keys share a hash slot (what one multi-key command or script may touch on a
 * cluster); on one node, everything is one group.
 */
export function bySlot<T>(client: RedisClient, items: readonly T[], key: (item: T) => string): T[][] {
  if (!isCluster(client)) return items.length ? [[...items]] : [];
  const groups = new Map<number, T[]>();
  for (const item of items) {
    const slot = calculateSlot(key(item));
    const group = groups.get(slot);
    if (group) group.push(item);
    else groups.set(slot, [item]);
  }
  return [...groups.values()];
}

/** How many nodes the keys live on: the round trips (in parallel) that reading them costs. */
export function nodesOf(client: RedisClient, keys: readonly string[]): number {
  if (!isCluster(client)) return keys.length ? 1 : 0;
  const nodes = new Set<string>();
  for (const key of keys) nodes.add(client.slots[calculateSlot(key)]?.[0] ?? "?");
  return nodes.size;
}
