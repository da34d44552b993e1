import { GraphQLError } from "graphql";
import type { Plugin } from "graphql-yoga";
import { RequestErrorCode } from "../../errors.ts";
import { config } from "../../platform/config.ts";
import type { ServerContext } from "../context.ts";

/**
 * Subscriptions only where the deployment can hold their stream and feed it, refused at once (with a code that
 * says why) elsewhere:
 * - a buffered Lambda invocation answers once: a stream would hold it until it times out and then fail;
 * - a streaming Lambda invocation holds one (until its deadline: use-stream-guard.ts), but each invocation may be
 *   another instance, which hears the events of writes made on others only through Redis's pub/sub.
 */
export function useSubscriptionTransport(): Plugin {
  return {
    onSubscribe({ args, setResultAndStopExecution }) {
      const server = args.contextValue as ServerContext;
      const why = server.answersOnce
        ? "Subscriptions stream over Server-Sent Events, which this deployment (AWS Lambda, buffered) cannot hold open: poll `viewer { unreadNotificationCount }` instead, or subscribe through a streaming deployment (the Lambda streaming handler, the container)."
        : server.streamsUntil !== undefined && !config().redisUrl
          ? "Subscriptions on AWS Lambda need Redis (REDIS_URL): each invocation may run on another instance, which hears the events of the others only through it."
          : undefined;
      if (!why) return;
      setResultAndStopExecution({
        errors: [
          new GraphQLError(why, {
            extensions: { code: RequestErrorCode.SUBSCRIPTIONS_UNAVAILABLE, http: { status: 400 } },
          }),
        ],
      });
    },
  };
}
