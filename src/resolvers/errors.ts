import { builder } from "../../schema/builder.ts";
import {
  ConflictError,
  ErrorCode,
  ForbiddenError,
  InvalidCredentialsError,
  NotFoundError,
  RateLimitedError,
  type ShutterError,
  UnauthenticatedError,
  ValidationError,
} from "../errors.ts";

// Expected failures as schema types: mutations return them in their result unions, so clients handle them
// with the same typed code paths as success, not by parsing top-level error strings.

export const ErrorCodeEnum = builder.enumType("ErrorCode", { values: Object.values(ErrorCode) });

export const ErrorInterface = builder.interfaceRef<ShutterError>("Error").implement({
  description: "An expected failure, with a message for the person using the app and a stable code for the client.",
  fields: (t) => ({
    message: t.exposeString("message"),
    code: t.field({ type: ErrorCodeEnum, resolve: (error) => error.code }),
  }),
});

const FieldErrorRef = builder.objectRef<{ path: string[]; message: string }>("FieldError").implement({
  description: "What is wrong with one input field.",
  fields: (t) => ({
    path: t.exposeStringList("path", {
      description: 'Path of the input, e.g. ["input", "handle"].',
      extensions: { maxItems: 10 },
    }),
    message: t.exposeString("message"),
  }),
});

builder.objectType(RateLimitedError, {
  name: "RateLimitedError",
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof RateLimitedError,
  fields: (t) => ({
    retryAfterSeconds: t.exposeInt("retryAfterSeconds", { description: "When to try again." }),
  }),
});

builder.objectType(ValidationError, {
  name: "ValidationError",
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof ValidationError,
  fields: (t) => ({
    // One per invalid input field: an input type has a handful of them.
    fieldErrors: t.field({
      type: [FieldErrorRef],
      extensions: { maxItems: 20 },
      resolve: (error) => error.fieldErrors,
    }),
  }),
});

for (const [ErrorClass, name] of [
  [NotFoundError, "NotFoundError"],
  [ForbiddenError, "ForbiddenError"],
  [ConflictError, "ConflictError"],
  [UnauthenticatedError, "UnauthenticatedError"],
  [InvalidCredentialsError, "InvalidCredentialsError"],
] as const) {
  builder.objectType(ErrorClass, {
    name,
    interfaces: [ErrorInterface],
    isTypeOf: (value) => value instanceof ErrorClass,
  });
}
