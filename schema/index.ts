import { GraphQLDeferDirective, GraphQLStreamDirective } from "@graphql-tools/utils";
import { lexicographicSortSchema, printSchema, specifiedDirectives } from "graphql";
import "../src/resolvers/index.ts";
import { builder } from "./builder.ts";

builder.queryType({});

// Secure by default: every mutation needs a signed-in viewer unless its field opts out with
// `skipTypeScopes: true` (sign-up, log-in, refresh).
builder.mutationType({ authScopes: { viewer: true } });
builder.subscriptionType({ authScopes: { viewer: true } });

/** Shutter's executable schema, built once per process. */
performance.mark("shutter:schema:build");
// @defer and @stream belong to the schema (introspection, code generators, GraphiQL know them);
// src/http/plugins/use-incremental-delivery.ts serves them.
export const schema = builder.toSchema({
  sortSchema: true,
  directives: [...specifiedDirectives, GraphQLDeferDirective, GraphQLStreamDirective],
});
performance.mark("shutter:schema:built");

/** The SDL committed as schema/schema.graphql (written by `npm run schema:print`, checked by a test). */
export function printedSchema(): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}
