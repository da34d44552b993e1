// `npm run build`: bundles the functions with esbuild into minified ESM under dist/functions, one file per
// handler plus shared chunks (code that only some paths need — GraphiQL, Prisma's query compiler, upload
// verification — stays in chunks loaded on first use). No native binaries: Prisma runs its query compiler as
// WebAssembly, embedded in a chunk. Prints the size of each output.
import { cpSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { build } from "esbuild";

const root = new URL("..", import.meta.url).pathname;
// --outdir: build elsewhere (tests build their own copy, so parallel test files never share one).
const { values } = parseArgs({ options: { outdir: { type: "string" } } });
const outdir = values.outdir ? `${resolve(values.outdir)}/` : new URL("../dist/functions/", import.meta.url).pathname;
rmSync(outdir, { recursive: true, force: true });

const result = await build({
  absWorkingDir: root,
  entryPoints: {
    graphql: "functions/graphql.ts",
    cleanup: "functions/cleanup.ts",
    events: "functions/events.ts",
    server: "functions/server.ts",
    migrate: "functions/migrate.ts",
  },
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node24",
  minify: true,
  sourcemap: "linked",
  outExtension: { ".js": ".mjs" },
  chunkNames: "chunks/[name]-[hash]",
  // Some dependencies are CommonJS and require() Node built-ins: give the ESM output a real `require`.
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
  // Development-only log formatting, loaded by name by pino when LOG_FORMAT=pretty; never in a deployment.
  external: ["pino-pretty"],
  metafile: true,
  legalComments: "none",
  logLevel: "warning",
});

// The migration function reads the committed migrations and runs Prisma's schema engine as WebAssembly.
cpSync(`${root}prisma/migrations`, `${outdir}migrations`, { recursive: true });
const engineWasm = createRequire(import.meta.url)
  .resolve("@prisma/schema-engine-wasm/schema_engine_bg")
  .replace(/\.js$/, ".wasm");
cpSync(engineWasm, `${outdir}schema_engine_bg.wasm`);

const outputs = result.metafile.outputs;
const kb = (bytes: number) => `${(bytes / 1024).toFixed(0).padStart(6)} KiB`;

/** What a handler loads at init (its static imports, transitively), and what it may load later on demand. */
function closure(entry: string) {
  const reach = (from: string, followDynamic: boolean, seen = new Set<string>()) => {
    if (seen.has(from)) return seen;
    seen.add(from);
    for (const imported of outputs[from]?.imports ?? []) {
      if (!imported.external && (followDynamic || imported.kind !== "dynamic-import"))
        reach(imported.path, followDynamic, seen);
    }
    return seen;
  };
  const eager = reach(entry, false);
  const all = reach(entry, true);
  const bytes = (files: Iterable<string>) => [...files].reduce((sum, file) => sum + (outputs[file]?.bytes ?? 0), 0);
  return { eager: bytes(eager), lazy: bytes([...all].filter((file) => !eager.has(file))) };
}

const files = Object.entries(outputs).filter(([file]) => file.endsWith(".mjs"));
const total = files.reduce((sum, [, output]) => sum + output.bytes, 0);
console.log("handler                 loaded at init   loadable on demand");
for (const [file, output] of files.filter(([, output]) => output.entryPoint?.startsWith("functions/"))) {
  const { eager, lazy } = closure(file);
  console.log(`${(output.entryPoint as string).padEnd(24)}  ${kb(eager)}       ${kb(lazy)}`);
}
console.log(
  `${kb(total)} of JavaScript in ${files.length} files, ${kb(statSync(engineWasm).size)} engine .wasm (migrate only); in dist/functions`,
);
