import { GraphQLError } from "graphql";
import type { Plugin } from "graphql-yoga";
import { RequestErrorCode } from "../../errors.ts";
import type { ServerContext } from "../context.ts";

/**
 * A Lambda invocation answers once: a subscription's stream would hold it open until it times out (29 s behind
 * API Gateway) and then fail. On Lambda, subscriptions are refused at once with a code that says why.
 */
export function useNoSubscriptionsOnLambda(): Plugin {
  return {
    onSubscribe({ args, setResultAndStopExecution }) {
      if (!(args.contextValue as ServerContext).answersOnce) return;
      setResultAndStopExecution({
        errors: [
          new GraphQLError(
            "Subscriptions stream over Server-Sent Events, which this deployment (AWS Lambda) cannot hold open: poll `viewer { unreadNotificationCount }` instead, or subscribe through the container deployment.",
            { extensions: { code: RequestErrorCode.SUBSCRIPTIONS_UNAVAILABLE, http: { status: 400 } } },
          ),
        ],
      });
    },
  };
}
