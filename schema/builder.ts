import SchemaBuilder from "@pothos/core";
import ErrorsPlugin from "@pothos/plugin-errors";
import RelayPlugin from "@pothos/plugin-relay";
import ScopeAuthPlugin from "@pothos/plugin-scope-auth";
import ValidationPlugin from "@pothos/plugin-validation";
import { LIMITS } from "../src/domain/validation.ts";
import { ForbiddenError, UnauthenticatedError, ValidationError } from "../src/errors.ts";
import type { Context } from "../src/http/context.ts";

// Marks of the cold start (what `npm run bench` breaks init down by): defining the types starts here.
performance.mark("shutter:schema:define");

export const builder = new SchemaBuilder<{
  Context: Context;
  AuthScopes: { viewer: boolean };
  DefaultFieldNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    ID: { Input: string; Output: string };
  };
}>({
  plugins: [ScopeAuthPlugin, ErrorsPlugin, ValidationPlugin, RelayPlugin],
  defaultFieldNullability: false,
  scopeAuth: {
    authScopes: (context) => ({ viewer: context.viewer !== null }),
    unauthorizedError: (_parent, context) => (context.viewer ? new ForbiddenError() : new UnauthenticatedError()),
  },
  errors: {
    // Every mutation can fail validation; each adds the failures specific to it.
    defaultTypes: [ValidationError],
    // Input validation failures become the typed ValidationError result. They are answered before the
    // field's auth scopes run: someone signed out learns what makes an input valid, which the docs say anyway.
    unsafelyHandleInputErrors: true,
    defaultResultOptions: { name: ({ fieldName }) => `${capitalize(fieldName)}Success` },
    defaultUnionOptions: { name: ({ fieldName }) => `${capitalize(fieldName)}Result` },
  },
  validation: {
    validationError: (result) =>
      new ValidationError(
        result.issues.map((issue) => issue.message).join(" "),
        result.issues.map((issue) => ({
          path: (issue.path ?? []).map((key) => String(typeof key === "object" ? key.key : key)),
          message: issue.message,
        })),
      ),
  },
  relay: {
    clientMutationId: "omit",
    cursorType: "String",
    // What `node` returns depends on who asks (notifications, pending photos): never shared-cacheable.
    nodeQueryOptions: { nullable: true, extensions: { personal: true } },
    nodesQueryOptions: {
      nullable: { list: false, items: true },
      // As many nodes as ids asked for, repeats included, at most LIMITS.nodeIds.max (http/cost.ts prices and
      // caps it).
      extensions: { personal: true, listSize: { argument: "ids", maxItems: LIMITS.nodeIds.max } },
    },
  },
});

function capitalize(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}
