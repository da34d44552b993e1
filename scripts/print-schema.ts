// Writes schema/schema.graphql from the code-first schema. A test fails when the committed file drifts.
import { writeFileSync } from "node:fs";
import { printedSchema } from "../schema/index.ts";

const path = new URL("../schema/schema.graphql", import.meta.url);
writeFileSync(path, printedSchema());
console.log(`wrote ${path.pathname}`);
