import { GraphQLError } from "graphql";
import { Prisma } from "./generated/prisma/client.ts";

/**
 * Stable error codes. Clients branch on these, never on messages: once published, a code keeps its meaning.
 * They appear as `extensions.code` of top-level errors and as `code` of payload errors.
 */
export const ErrorCode = {
  BAD_USER_INPUT: "BAD_USER_INPUT",
  UNAUTHENTICATED: "UNAUTHENTICATED",
  INVALID_CREDENTIALS: "INVALID_CREDENTIALS",
  FORBIDDEN: "FORBIDDEN",
  NOT_FOUND: "NOT_FOUND",
  CONFLICT: "CONFLICT",
  RATE_LIMITED: "RATE_LIMITED",
  UPLOAD_INVALID: "UPLOAD_INVALID",
  QUOTA_EXCEEDED: "QUOTA_EXCEEDED",
  SERVICE_UNAVAILABLE: "SERVICE_UNAVAILABLE",
  INTERNAL_SERVER_ERROR: "INTERNAL_SERVER_ERROR",
  /** The last event of a subscription the deployment ends (a streaming Lambda invocation's deadline): subscribe again. */
  STREAM_ENDED: "STREAM_ENDED",
} as const;

/** Codes of refusals before any resolver runs (top-level errors only, never in a mutation's result union). */
export const RequestErrorCode = {
  BAD_REQUEST: "BAD_REQUEST",
  GRAPHQL_PARSE_FAILED: "GRAPHQL_PARSE_FAILED",
  GRAPHQL_VALIDATION_FAILED: "GRAPHQL_VALIDATION_FAILED",
  QUERY_TOO_COMPLEX: "QUERY_TOO_COMPLEX",
  PERSISTED_QUERY_NOT_FOUND: "PERSISTED_QUERY_NOT_FOUND",
  PERSISTED_QUERY_NOT_ALLOWED: "PERSISTED_QUERY_NOT_ALLOWED",
  PERSISTED_QUERY_MISMATCH: "PERSISTED_QUERY_MISMATCH",
  PERSISTED_QUERY_TOO_LARGE: "PERSISTED_QUERY_TOO_LARGE",
  METHOD_NOT_ALLOWED: "METHOD_NOT_ALLOWED",
  PAYLOAD_TOO_LARGE: "PAYLOAD_TOO_LARGE",
  UNSUPPORTED_MEDIA_TYPE: "UNSUPPORTED_MEDIA_TYPE",
  SUBSCRIPTIONS_UNAVAILABLE: "SUBSCRIPTIONS_UNAVAILABLE",
  IDEMPOTENCY_KEY_INVALID: "IDEMPOTENCY_KEY_INVALID",
  IDEMPOTENCY_KEY_REUSED: "IDEMPOTENCY_KEY_REUSED",
  IDEMPOTENCY_KEY_IN_USE: "IDEMPOTENCY_KEY_IN_USE",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * An expected failure: its message is written for the person using the app and is never masked.
 * Mutations list the ones they can produce in their result union; elsewhere they surface as GraphQL errors.
 */
export class ShutterError extends GraphQLError {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, extensions: Record<string, unknown> = {}) {
    super(message, { extensions: { code, ...extensions } });
    this.code = code;
    this.name = new.target.name;
  }
}

export interface FieldError {
  /** Path of the offending input, e.g. ["input", "handle"]. */
  path: string[];
  message: string;
}

export class ValidationError extends ShutterError {
  readonly fieldErrors: FieldError[];

  constructor(message: string, fieldErrors: FieldError[] = []) {
    super(ErrorCode.BAD_USER_INPUT, message, fieldErrors.length ? { fieldErrors } : {});
    this.fieldErrors = fieldErrors;
  }

  /** One invalid input field. */
  static field(path: string[], message: string): ValidationError {
    return new ValidationError(message, [{ path, message }]);
  }
}

export class NotFoundError extends ShutterError {
  constructor(message = "Not found.") {
    super(ErrorCode.NOT_FOUND, message);
  }
}

export class ForbiddenError extends ShutterError {
  constructor(message = "You are not allowed to do that.") {
    super(ErrorCode.FORBIDDEN, message);
  }
}

export class ConflictError extends ShutterError {
  constructor(message: string) {
    super(ErrorCode.CONFLICT, message);
  }
}

export class UnauthenticatedError extends ShutterError {
  constructor(message = "Sign in to do that.") {
    super(ErrorCode.UNAUTHENTICATED, message);
  }
}

/** Too many requests (or failed logins) for now; `retryAfterSeconds` says when to try again (HTTP 429). */
export class RateLimitedError extends ShutterError {
  readonly retryAfterSeconds: number;

  constructor(retryAfterSeconds: number, what = "Too many requests") {
    const seconds = Math.max(1, Math.ceil(retryAfterSeconds));
    super(ErrorCode.RATE_LIMITED, `${what}. Try again in ${seconds} second${seconds === 1 ? "" : "s"}.`, {
      retryAfterSeconds: seconds,
      http: { status: 429, headers: { "Retry-After": String(seconds) } },
    });
    this.retryAfterSeconds = seconds;
  }
}

/**
 * A service Shutter needs (the database, object storage) cannot be reached right now: nothing is wrong with the
 * request, and the same request will work once it is back. HTTP 503 with Retry-After when nothing could be
 * served; a field's error (with the rest of the answer) otherwise.
 */
export class ServiceUnavailableError extends ShutterError {
  constructor(service: "database" | "storage", retryAfterSeconds = 5) {
    super(
      ErrorCode.SERVICE_UNAVAILABLE,
      `We can't reach our ${service} right now. Try again in ${retryAfterSeconds} seconds; nothing was lost.`,
      {
        retryAfterSeconds,
        http: { status: 503, headers: { "Retry-After": String(retryAfterSeconds) } },
      },
    );
  }
}

export class InvalidCredentialsError extends ShutterError {
  constructor() {
    super(ErrorCode.INVALID_CREDENTIALS, "Wrong handle, email or password.");
  }
}

/**
 * Maps the Prisma errors that mean "your input was wrong" to typed errors; anything else is rethrown to be
 * masked. @throws always
 */
export function rethrowPrismaError(error: unknown, messages: { conflict?: string; notFound?: string } = {}): never {
  if (error instanceof Prisma.PrismaClientKnownRequestError) {
    if (error.code === "P2002") throw new ConflictError(messages.conflict ?? "That already exists.");
    if (error.code === "P2003" || error.code === "P2025") throw new NotFoundError(messages.notFound);
  }
  throw error;
}
