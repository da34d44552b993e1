import { PothosValidationError } from "@pothos/core";
import { GraphQLError } from "graphql";
import { maskError as yogaMaskError } from "graphql-yoga";
import { ErrorCode } from "../errors.ts";
import { logger } from "../platform/logger.ts";

export const INTERNAL_ERROR_MESSAGE =
  "Something went wrong on our side. Try again; if it keeps happening, tell us the request id.";

/**
 * Hides unexpected errors (a bug, a database outage) behind a generic message and logs the real one with the
 * request id; typed errors (ShutterError and other GraphQL errors) pass through unchanged.
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
  const masked = yogaMaskError(error, message, false);
  if (masked !== error) {
    logger().error({ err: original, path: error instanceof GraphQLError ? error.path : undefined }, "unexpected error");
  }
  return masked;
}
