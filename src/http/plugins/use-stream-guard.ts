// Long-lived streams (subscriptions over Server-Sent Events) live no longer than what opened them, and are
// counted: each ends when the credentials that opened it expire, when its session ends (log-out, a replayed
// refresh token: on whichever instance holds the stream), before the platform's deadline where it has one (a
// streaming Lambda invocation's), and a viewer holds at most SUBSCRIPTIONS_PER_VIEWER of them on an instance.
// The gate (use-gate.ts) has costed and charged the subscription before it starts.
import { randomUUID } from "node:crypto";
import { type ExecutionResult, GraphQLError } from "graphql";
import { isAsyncIterable, type Plugin, Repeater } from "graphql-yoga";
import { cacheStore, RedisStore } from "../../caching/store.ts";
import { ErrorCode, RateLimitedError } from "../../errors.ts";
import { notificationsPubSub } from "../../events/pubsub.ts";
import { config } from "../../platform/config.ts";
import { logger } from "../../platform/logger.ts";
import type { Context, ServerContext, Viewer } from "../context.ts";

/** Open streams per viewer on this instance. */
const open = new Map<string, number>();

/** The streams a viewer holds on this instance (tests and logs read it). */
export const openStreams = (viewerId: string) => open.get(viewerId) ?? 0;

function giveBack(viewerId: string) {
  open.set(viewerId, openStreams(viewerId) - 1);
  if (openStreams(viewerId) <= 0) open.delete(viewerId);
}

/**
 * How long before the platform's deadline a stream ends (a streaming Lambda invocation's): time for its last event
 * to reach the client.
 */
const DEADLINE_MARGIN_MS = 2_000;

/** The last event of a stream the platform would cut: it ends here, the client subscribes again. */
const endedByDeadline = (): ExecutionResult => ({
  errors: [
    new GraphQLError(
      "This stream ends here: the deployment holds a stream for a limited time. Subscribe again to go on receiving events.",
      { extensions: { code: ErrorCode.STREAM_ENDED } },
    ),
  ],
});

/**
 * The stream, ending with the credentials and session that opened it, and before the platform's deadline (telling
 * the client to subscribe again); its place is given back when it ends.
 */
function guard(source: AsyncIterable<ExecutionResult>, viewer: Viewer, until?: number): AsyncIterable<ExecutionResult> {
  return new Repeater<ExecutionResult>(async (push, stop) => {
    const iterator = source[Symbol.asyncIterator]();
    const shared = until === undefined ? undefined : await claimShared(viewer.id, until);
    if (shared === false) {
      giveBack(viewer.id);
      void iterator.return?.();
      await push({ errors: [tooMany()] });
      stop();
      return;
    }
    const expiry = viewer.expiresAt
      ? setTimeout(stop, Math.max(0, viewer.expiresAt.getTime() - Date.now()))
      : undefined;
    const deadline =
      until === undefined
        ? undefined
        : setTimeout(
            () => void push(endedByDeadline()).then(() => stop()),
            Math.max(0, until - DEADLINE_MARGIN_MS - Date.now()),
          );
    const ended = viewer.sessionId
      ? notificationsPubSub().subscribe("session:ended", viewer.sessionId)[Symbol.asyncIterator]()
      : undefined;
    void ended?.next().then(() => stop());
    void stop.then(() => {
      clearTimeout(expiry);
      clearTimeout(deadline);
      void ended?.return?.();
      void iterator.return?.();
      giveBack(viewer.id);
      shared?.();
    });
    for (;;) {
      const next = await Promise.race([iterator.next(), stop]);
      if (!next || next.done) break;
      await push(next.value);
    }
    stop();
  });
}

const tooMany = () => {
  const max = config().limits.subscriptionsPerViewer;
  return new RateLimitedError(
    60,
    `You have ${max} subscriptions open already: close one (each app needs one) and try again`,
  );
};

/**
 * Where each instance holds one stream at a time (a streaming Lambda invocation), a count per instance counts
 * nothing: a viewer's streams are counted across instances, in a sorted set per viewer in Redis, each scored by the
 * time the platform ends it at the latest — a stream whose instance died is forgotten then. @returns what gives
 * the place back, false when the viewer holds SUBSCRIPTIONS_PER_VIEWER already, undefined without Redis (counted
 * per instance then; such deployments refuse subscriptions anyway: use-subscription-transport.ts).
 */
async function claimShared(viewerId: string, until: number): Promise<(() => void) | false | undefined> {
  const store = cacheStore();
  if (!(store instanceof RedisStore) || !store.available) return undefined;
  const key = `${config().redisKeyPrefix}:streams:{${viewerId}}`;
  const id = randomUUID();
  try {
    const claimed = await store.client.eval(
      CLAIM_STREAM,
      1,
      key,
      Date.now(),
      until,
      id,
      config().limits.subscriptionsPerViewer,
    );
    if (claimed !== 1) return false;
  } catch (error) {
    // As the rate limits do when Redis fails: counted on this instance only, meanwhile.
    logger().warn({ err: error }, "subscriptions: Redis unavailable, streams counted on this instance only");
    return undefined;
  }
  return () => void store.client.zrem(key, id).catch(() => {});
}

/** KEYS[1]: the viewer's streams; ARGV: now, this stream's end at the latest, its id, the most a viewer holds. */
const CLAIM_STREAM = `
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", ARGV[1])
if redis.call("ZCARD", KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call("ZADD", KEYS[1], ARGV[2], ARGV[3])
local last = redis.call("ZRANGE", KEYS[1], -1, -1, "WITHSCORES")[2]
redis.call("PEXPIREAT", KEYS[1], last)
return 1`;

export function useStreamGuard(): Plugin {
  return {
    onSubscribe() {
      return {
        onSubscribeResult({ args, result, setResult }) {
          const { viewer, streamsUntil } = args.contextValue as unknown as Context & ServerContext;
          if (!viewer || !isAsyncIterable(result)) return;
          if (openStreams(viewer.id) >= config().limits.subscriptionsPerViewer) {
            void result.return?.();
            setResult({ errors: [tooMany()] });
            return;
          }
          open.set(viewer.id, openStreams(viewer.id) + 1);
          setResult(
            guard(
              result as AsyncIterable<ExecutionResult>,
              viewer,
              streamsUntil,
            ) as AsyncIterableIterator<ExecutionResult>,
          );
        },
      };
    },
  };
}
