import { type Logger, type LoggerOptions, pino } from "pino";
import { config } from "./config.ts";
import { requestScope } from "./request-scope.ts";
import { activeTraceId } from "./telemetry.ts";

let instance: Logger | undefined;

/** The process logger: JSON lines in production (CloudWatch, Loki), readable lines in development. */
export function logger(): Logger {
  if (!instance) {
    const { level, pretty } = config().log;
    const options: LoggerOptions = {
      level,
      base: { service: "shutter" },
      // The request id in every line of a request, and the trace id when tracing (each findable from the other).
      mixin: () => {
        const scope = requestScope.getStore();
        const traceId = activeTraceId();
        return { ...(scope ? { requestId: scope.requestId } : {}), ...(traceId ? { traceId } : {}) };
      },
      // Secrets never reach the logs, even if an object carrying them is logged whole.
      redact: ["password", "*.password", "refreshToken", "*.refreshToken", "headers.authorization", "authorization"],
    };
    instance = pretty
      ? pino({ ...options, transport: { target: "pino-pretty", options: { ignore: "pid,hostname,service" } } })
      : pino(options, process.stdout);
  }
  return instance;
}

/**
 * Reports why the process cannot start, as one log record (a JSON line in production, a readable line
 * otherwise) with no stack: a bad setting or an unreachable secret store is the operator's to fix, and the
 * message says how. Read from the environment directly: the configuration may be what is wrong.
 */
export function logStartupFailure(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  const json = (process.env.LOG_FORMAT ?? (process.env.NODE_ENV === "production" ? "json" : "pretty")) === "json";
  process.stderr.write(
    json
      ? `${JSON.stringify({ level: 60, time: Date.now(), service: "shutter", msg: `cannot start: ${message}` })}\n`
      : `Shutter cannot start: ${message}\n`,
  );
}
