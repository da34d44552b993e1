import { readFileSync } from "node:fs";
import { expect, test } from "vitest";
import { printedSchema } from "../schema/index.ts";

test("schema/schema.graphql matches the code-first schema (run `npm run schema:print` after changing it)", () => {
  const committed = readFileSync(new URL("../schema/schema.graphql", import.meta.url), "utf8");
  expect(committed).toBe(printedSchema());
});
