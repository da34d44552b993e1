// `npm run build`: bundles the functions with esbuild into minified ESM under dist/functions, one file per
// handler plus shared chunks (code that only some paths need — GraphiQL, Prisma's query compiler, upload
// verification — stays in chunks loaded on first use). No native binaries: Prisma runs its query compiler as
// WebAssembly, embedded in a chunk. Prints the size of each output.
import { rmSync, statSync } from "node:fs";
import { build } from "esbuild";

const outdir = new URL("../dist/functions/", import.meta.url).pathname;
rmSync(outdir, { recursive: true, force: true });

const result = await build({
  entryPoints: {
    graphql: "functions/graphql.ts",
    cleanup: "functions/cleanup.ts",
    server: "functions/server.ts",
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

const outputs = Object.entries(result.metafile.outputs)
  .filter(([file]) => file.endsWith(".mjs"))
  .map(([file, output]) => ({
    file: file.replace(/^dist\/functions\//, ""),
    bytes: output.bytes,
    entry: output.entryPoint,
  }));
const total = outputs.reduce((sum, o) => sum + o.bytes, 0);
const kb = (bytes: number) => `${(bytes / 1024).toFixed(0).padStart(6)} KiB`;
for (const output of outputs.sort((a, b) => b.bytes - a.bytes).slice(0, 12)) {
  console.log(`${kb(output.bytes)}  ${output.file}${output.entry ? `  (entry: ${output.entry})` : ""}`);
}
console.log(`${kb(total)}  total JavaScript in ${outputs.length} files (${kb(statSync(outdir).size)} dir entry)`);
