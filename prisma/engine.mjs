#!/usr/bin/env node
// Runs the Prisma CLI with the WebAssembly schema engine (`prisma/schema-engine.mjs`), so generate and
// migrations work without downloading Prisma's native engines (air-gapped machines, restricted CI).
// Set PRISMA_SCHEMA_ENGINE_BINARY yourself to use a native engine instead.
//   node prisma/engine.mjs migrate deploy
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { delimiter, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const cli = require.resolve("prisma/build/index.js");
const engine = fileURLToPath(new URL("./schema-engine.mjs", import.meta.url));

const result = spawnSync(process.execPath, [cli, ...process.argv.slice(2)], {
  stdio: "inherit",
  env: {
    ...process.env,
    // The engine shim starts through `#!/usr/bin/env node`: give it the Node that runs this script.
    PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}`,
    PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY || engine,
    PRISMA_HIDE_UPDATE_MESSAGE: "1",
    CHECKPOINT_DISABLE: "1",
  },
});
process.exit(result.status ?? 1);
