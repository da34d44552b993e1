// Real-time fan-out of new notifications to `notificationAdded` subscribers, on whichever instance holds their
// connection: Yoga's pub/sub over Redis pub/sub (in-process without REDIS_URL). The event target is the one of
// @graphql-yoga/redis-event-target, written here because that package's peer range stops at ioredis 5, and because
// on a cluster it uses sharded channels (SPUBLISH/SSUBSCRIBE: each channel lives on the shard owning its slot,
// where plain PUBLISH would be copied to every node of the cluster).
import { createPubSub, type PubSub } from "graphql-yoga";
import { config } from "../platform/config.ts";
import { logger } from "../platform/logger.ts";
import { connectRedis, isCluster, type RedisClient } from "../platform/redis.ts";
import { publisherClient } from "./stream.ts";

type Channels = {
  "notification:added": [recipientId: string, payload: { id: string }];
  /** A session was revoked (log-out, a replayed refresh token): streams opened with it end. */
  "session:ended": [sessionId: string, payload: Record<string, never>];
};

type Listener = (event: CustomEvent) => void;

/** A Yoga event target whose events travel over Redis channels, so every instance's subscribers hear them. */
function redisEventTarget(prefix: string) {
  let subscriber: RedisClient | undefined;
  const listeners = new Map<string, Set<Listener>>();
  const channel = (type: string) => `${prefix}:pubsub:${type}`;
  const connect = () => {
    if (subscriber) return subscriber;
    subscriber = connectRedis({ maxRetriesPerRequest: null });
    subscriber.on("error", (error) => logger().warn({ err: error }, "pubsub: Redis subscriber error"));
    subscriber.on(isCluster(subscriber) ? "smessage" : "message", (name: string, message: string) => {
      const type = name.slice(`${prefix}:pubsub:`.length);
      const detail = JSON.parse(message);
      for (const listener of listeners.get(type) ?? []) listener(new CustomEvent(type, { detail }));
    });
    return subscriber;
  };
  const sharded = Boolean(config().redis?.cluster);
  return {
    addEventListener(type: string, listener: Listener) {
      const set = listeners.get(type) ?? new Set();
      if (set.size === 0) {
        const client = connect();
        (sharded ? client.ssubscribe(channel(type)) : client.subscribe(channel(type))).catch(unreachable);
      }
      set.add(listener);
      listeners.set(type, set);
    },
    removeEventListener(type: string, listener: Listener) {
      const set = listeners.get(type);
      if (!set?.delete(listener) || set.size) return;
      listeners.delete(type);
      // After close() (a stream ending as the instance shuts down) there is nothing left to unsubscribe from.
      (sharded ? subscriber?.sunsubscribe(channel(type)) : subscriber?.unsubscribe(channel(type)))?.catch(unreachable);
    },
    dispatchEvent(event: CustomEvent) {
      const publisher = publisherClient();
      const message = JSON.stringify(event.detail);
      void (
        sharded ? publisher?.spublish(channel(event.type), message) : publisher?.publish(channel(event.type), message)
      )?.catch((error) => logger().warn({ err: error }, "pubsub: could not publish"));
      return true;
    },
    close: () => subscriber?.disconnect(),
  };
}

/** A (un)subscription Redis could not take: its error handler has logged the outage already. */
const unreachable = () => {};

let pubsub: (PubSub<Channels> & { close(): void }) | undefined;

export function notificationsPubSub(): PubSub<Channels> {
  if (!pubsub) {
    const { redisUrl, redisKeyPrefix } = config();
    const target = redisUrl ? redisEventTarget(redisKeyPrefix) : undefined;
    pubsub = Object.assign(createPubSub<Channels>(target ? { eventTarget: target as never } : {}), {
      close: () => target?.close(),
    });
  }
  return pubsub;
}

export function closePubSub(): void {
  pubsub?.close();
  pubsub = undefined;
}
