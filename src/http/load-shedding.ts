// Load shedding for long-running servers (the container entry): at most `concurrency` requests run at once, at most
// `queue` more wait (each for at most `waitMs`), and anything beyond is refused at once with 503 and Retry-After.
// Refusing the excess quickly keeps latency bounded for the requests that are served, instead of every request
// slowing down together until all of them time out. (On Lambda one instance serves one request: the platform's
// concurrency limits play this role.)
import { ErrorCode } from "../errors.ts";

export interface Shedder {
  /** Waits for a slot; @returns its release, or null when the request is to be refused. */
  admit(): Promise<(() => void) | null>;
  readonly running: number;
  readonly waiting: number;
}

export function createShedder(options: { concurrency: number; queue: number; waitMs: number }): Shedder {
  let running = 0;
  const waiters: (() => void)[] = [];
  const release = () => {
    running--;
    waiters.shift()?.();
  };
  return {
    get running() {
      return running;
    },
    get waiting() {
      return waiters.length;
    },
    async admit() {
      if (running < options.concurrency) {
        running++;
        return release;
      }
      if (waiters.length >= options.queue) return null;
      return new Promise((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          running++;
          resolve(release);
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(wake), 1);
          resolve(null);
        }, options.waitMs);
        waiters.push(wake);
      });
    },
  };
}

/** The answer to a request refused for load: a GraphQL error any client understands, retryable. */
export const overloaded = () =>
  Response.json(
    {
      errors: [
        {
          message: "We're busy right now. Try again in a second.",
          extensions: { code: ErrorCode.SERVICE_UNAVAILABLE, retryAfterSeconds: 1 },
        },
      ],
    },
    { status: 503, headers: { "Retry-After": "1" } },
  );
