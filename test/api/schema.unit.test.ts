import { readFileSync } from "node:fs";
import { getNullableType, isInputObjectType, isInterfaceType, isListType, isObjectType } from "graphql";
import { expect, test } from "vitest";
import { printedSchema, schema } from "../../schema/index.ts";

test("schema/schema.graphql matches the code-first schema (run `npm run schema:print` after changing it)", () => {
  const committed = readFileSync(new URL("../../schema/schema.graphql", import.meta.url), "utf8");
  expect(committed).toBe(printedSchema());
});

test("every list in the schema declares how long it can be: the cost model prices it, the gate caps it", () => {
  const undeclared: string[] = [];
  const declares = (extensions: Record<string, unknown>) => "maxItems" in extensions || "listSize" in extensions;
  for (const type of Object.values(schema.getTypeMap())) {
    if (type.name.startsWith("__")) continue;
    if (isObjectType(type) || isInterfaceType(type)) {
      for (const field of Object.values(type.getFields())) {
        // A connection's edges are as many as its page size (first/last), which the cost model reads.
        const isEdges = field.name === "edges" && type.name.endsWith("Connection");
        if (isListType(getNullableType(field.type)) && !isEdges && !declares(field.extensions)) {
          undeclared.push(`${type.name}.${field.name}`);
        }
        for (const arg of field.args) {
          if (isListType(getNullableType(arg.type)) && !declares(arg.extensions) && !declares(field.extensions)) {
            undeclared.push(`${type.name}.${field.name}(${arg.name})`);
          }
        }
      }
    }
    if (isInputObjectType(type)) {
      for (const field of Object.values(type.getFields())) {
        if (isListType(getNullableType(field.type)) && !declares(field.extensions)) {
          undeclared.push(`${type.name}.${field.name}`);
        }
      }
    }
  }
  expect(undeclared).toEqual([]);
});
