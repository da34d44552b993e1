// Long-lived streams (subscriptions over Server-Sent Events) live no longer than what opened them, and are
// counted: each ends when the credentials that opened it expire, when its session ends (log-out, a replayed
// refresh token: on whichever instance holds the stream), and a viewer holds at most SUBSCRIPTIONS_PER_VIEWER
// of them on an instance. The gate (use-gate.ts) has costed and charged the subscription before it starts.
import type { ExecutionResult } from "graphql";
import { isAsyncIterable, type Plugin, Repeater } from "graphql-yoga";
import { RateLimitedError } from "../../errors.ts";
import { notificationsPubSub } from "../../events/pubsub.ts";
import { config } from "../../platform/config.ts";
import type { Context, Viewer } from "../context.ts";

/** Open streams per viewer on this instance. */
const open = new Map<string, number>();

/** The streams a viewer holds on this instance (tests and logs read it). */
export const openStreams = (viewerId: string) => open.get(viewerId) ?? 0;

/** The stream, ending with the credentials and session that opened it; its place is given back when it ends. */
function guard<T>(source: AsyncIterable<T>, viewer: Viewer): AsyncIterable<T> {
  return new Repeater<T>(async (push, stop) => {
    const iterator = source[Symbol.asyncIterator]();
    const expiry = viewer.expiresAt
      ? setTimeout(stop, Math.max(0, viewer.expiresAt.getTime() - Date.now()))
      : undefined;
    const ended = viewer.sessionId
      ? notificationsPubSub().subscribe("session:ended", viewer.sessionId)[Symbol.asyncIterator]()
      : undefined;
    void ended?.next().then(() => stop());
    void stop.then(() => {
      clearTimeout(expiry);
      void ended?.return?.();
      void iterator.return?.();
      open.set(viewer.id, openStreams(viewer.id) - 1);
      if (openStreams(viewer.id) <= 0) open.delete(viewer.id);
    });
    for (;;) {
      const next = await Promise.race([iterator.next(), stop]);
      if (!next || next.done) break;
      await push(next.value);
    }
    stop();
  });
}

export function useStreamGuard(): Plugin {
  return {
    onSubscribe() {
      return {
        onSubscribeResult({ args, result, setResult }) {
          const { viewer } = args.contextValue as unknown as Context;
          if (!viewer || !isAsyncIterable(result)) return;
          const max = config().limits.subscriptionsPerViewer;
          if (openStreams(viewer.id) >= max) {
            void result.return?.();
            setResult({
              errors: [
                new RateLimitedError(
                  60,
                  `You have ${max} subscriptions open already: close one (each app needs one) and try again`,
                ),
              ],
            });
            return;
          }
          open.set(viewer.id, openStreams(viewer.id) + 1);
          setResult(guard(result as AsyncIterable<ExecutionResult>, viewer) as AsyncIterableIterator<ExecutionResult>);
        },
      };
    },
  };
}
