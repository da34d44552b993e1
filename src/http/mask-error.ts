import { PothosValidationError } from "@pothos/core";
import { GraphQLError } from "graphql";
import { maskError as yogaMaskError } from "graphql-yoga";
import { ErrorCode, ServiceUnavailableError } from "../errors.ts";
import { IdempotencyKeyTaken } from "../platform/idempotency.ts";
import { logger } from "../platform/logger.ts";
import { noteDatabase, unavailableService } from "../platform/outage.ts";

export const INTERNAL_ERROR_MESSAGE =
  "Something went wrong on our side. Try again; if it keeps happening, tell us the request id.";

/**
 * Hides unexpected errors (a bug) behind a generic message and logs the real one with the request id; an outage
 * of the database or storage becomes SERVICE_UNAVAILABLE; typed errors (ShutterError and other GraphQL errors)
 * pass through unchanged.
 */
export function maskError(error: unknown, message: string): Error {
  const original = error instanceof GraphQLError && error.originalError ? error.originalError : error;
  // Pothos reports malformed client input (a global id that isn't one) with this class: the client's fault.
  if (original instanceof PothosValidationError) {
    return new GraphQLError(original.message, {
      nodes: error instanceof GraphQLError ? error.nodes : undefined,
      path: error instanceof GraphQLError ? error.path : undefined,
      extensions: { code: ErrorCode.BAD_USER_INPUT },
    });
  }
  // An outage is not a bug: a typed, retryable error the client can act on (HTTP 503 when nothing was served).
  const service = unavailableService(original);
  if (service) {
    if (service === "database") noteDatabase(false);
    logger().warn(
      { err: original, service, path: error instanceof GraphQLError ? error.path : undefined },
      "service unavailable",
    );
    const unavailable = new ServiceUnavailableError(service);
    return new GraphQLError(unavailable.message, {
      nodes: error instanceof GraphQLError ? error.nodes : undefined,
      path: error instanceof GraphQLError ? error.path : undefined,
      originalError: unavailable,
      extensions: unavailable.extensions,
    });
  }
  const masked = yogaMaskError(error, message, false);
  // A duplicate's transaction stopped by the other's Idempotency-Key: expected, and its answer is replaced by the
  // other's (plugins/use-idempotency.ts).
  if (original instanceof IdempotencyKeyTaken) return masked;
  // The client closed the connection before its answer (a timeout of its own, a phone going to sleep): the
  // request was abandoned, nothing went wrong here.
  // (By name: the server adapter's own DOMException is not always the global class.)
  if ((original as Error | undefined)?.name === "AbortError") {
    logger().info({ path: error instanceof GraphQLError ? error.path : undefined }, "request abandoned by the client");
    return masked;
  }
  if (masked !== error) {
    logger().error({ err: original, path: error instanceof GraphQLError ? error.path : undefined }, "unexpected error");
  }
  return masked;
}
