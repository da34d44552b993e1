// `npm run build`: bundles the functions with esbuild into minified ESM under dist/functions, one file per
// handler plus shared chunks (code that only some paths need — GraphiQL, the AWS SDK, upload verification —
// stays in chunks loaded on first use). Prisma runs its query compiler as WebAssembly, a file next to the
// handlers (see queryCompilerFile). The one native binary is the images function's: sharp (libvips), shipped as
// its packages under dist/functions/node_modules for the platform it deploys to (see shipPackages). Prints the
// size of each output.

import { spawnSync } from "node:child_process";
import { cpSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { build, type Plugin } from "esbuild";

const root = new URL("..", import.meta.url).pathname;
// --outdir: build elsewhere (tests build their own copy, so parallel test files never share one).
// --platform: where the functions run, for sharp's native binary (linux-arm64 for the CDK stack's Lambdas;
// this machine's by default).
const { values } = parseArgs({ options: { outdir: { type: "string" }, platform: { type: "string" } } });
const platform = values.platform ?? `${process.platform}-${process.arch}`;
const outdir = values.outdir ? `${resolve(values.outdir)}/` : new URL("../dist/functions/", import.meta.url).pathname;
rmSync(outdir, { recursive: true, force: true });
/** Packages shipped whole rather than bundled (see shipPackages). */
const SHIPPED = ["sharp", "heic-decode"] as const;
/** Prisma's query compiler in the bundle: a WebAssembly file next to the handlers (see queryCompilerFile). */
const QUERY_COMPILER = "query_compiler_bg.wasm";
/** V8's compile cache of the handlers, in the bundle (see compileCache). */
const COMPILE_CACHE = "compile-cache";

/**
 * Handlers whose cold start the first request waits for: each ships as a small `<name>.mjs` that turns on the V8
 * compile cache shipped next to it (see compileCache), then loads the handler itself from `<name>.app.mjs`.
 */
const CACHED = ["graphql", "server"] as const;

const result = await build({
  absWorkingDir: root,
  entryPoints: {
    "graphql.app": "functions/graphql.ts",
    cleanup: "functions/cleanup.ts",
    events: "functions/events.ts",
    "server.app": "functions/server.ts",
    migrate: "functions/migrate.ts",
    images: "functions/images.ts",
  },
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node24",
  // ESM entry points first ("module" before "main"). A package's CommonJS build loaded with import() lands in a
  // split chunk as `export default require_x()`: esbuild gives it no named exports, so
  // `const { S3Client } = await import("@aws-sdk/client-s3")` got undefined in the bundle (sign-up's argon2
  // likewise) while it worked from source. The ESM builds (the AWS SDK's dist-es) have real named exports, and
  // tree-shake better. checkLazyChunks() below fails the build if a lazy import still lands on CommonJS.
  mainFields: ["module", "main"],
  plugins: [oneGraphql(), queryCompilerFile()],
  minify: true,
  sourcemap: "linked",
  outExtension: { ".js": ".mjs" },
  chunkNames: "chunks/[name]-[hash]",
  // Some dependencies are CommonJS and require() Node built-ins: give the ESM output a real `require`.
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
  // Development-only log formatting, loaded by name by pino when LOG_FORMAT=pretty; never in a deployment. The
  // images function's decoders are shipped as packages (shipPackages): a native addon, and a CommonJS module that
  // embeds its WebAssembly.
  external: ["pino-pretty", ...SHIPPED],
  metafile: true,
  legalComments: "none",
  logLevel: "warning",
});

checkLazyChunks(result.metafile.outputs);
checkOneCopy(Object.keys(result.metafile.inputs));

/**
 * graphql ships each module twice, CommonJS (.js) and ESM (.mjs). With "module" first its entry is the ESM one,
 * but deep imports without an extension (GraphQL Armor's `graphql/language/parser`) would resolve to the .js
 * files: two copies of graphql whose classes don't recognise each other (a syntax error then surfaced as an
 * internal error). Every graphql import goes to the ESM files.
 */
function oneGraphql(): Plugin {
  const require = createRequire(import.meta.url);
  return {
    name: "one-graphql",
    setup(build) {
      build.onResolve({ filter: /^graphql\// }, (args) => ({
        path: require.resolve(args.path.replace(/(\.m?js)?$/, ".mjs")),
      }));
    },
  };
}

/**
 * Prisma's query compiler as a file, compiled while the function initialises. The generated client imports it as
 * a 4.5 MB base64 JavaScript module and compiles it synchronously when the first query needs it: ~60–100 ms of the
 * first request (parsing the module, decoding it, compiling). The bundle ships the .wasm instead, read and compiled
 * asynchronously (V8 compiles off the main thread) as soon as the client's module loads, so the schema build and
 * the first request's own work overlap it.
 */
function queryCompilerFile(): Plugin {
  return {
    name: "query-compiler-file",
    setup(build) {
      build.onLoad({ filter: /generated[\\/]prisma[\\/]internal[\\/]class\.ts$/ }, (args) => {
        const source = readFileSync(args.path, "utf8");
        const fromBase64 = /getQueryCompilerWasmModule: async \(\) => \{[\s\S]*?\n {2}\},/;
        if (!fromBase64.test(source)) {
          throw new Error("Prisma's generated client changed: update queryCompilerFile() in scripts/build.ts");
        }
        // Shared code lands in chunks/, the file next to the handlers.
        const file = `new URL(import.meta.url.includes("/chunks/") ? "../${QUERY_COMPILER}" : "./${QUERY_COMPILER}", import.meta.url)`;
        return {
          loader: "ts",
          resolveDir: dirname(args.path),
          contents: `${source.replace(fromBase64, "getQueryCompilerWasmModule: () => queryCompilerModule,")}
import { readFileSync as readQueryCompiler } from "node:fs";
const queryCompilerModule = WebAssembly.compile(readQueryCompiler(${file}));
// A failure is reported where the client awaits the module (its first query), not as an unhandled rejection.
queryCompilerModule.catch(() => {});
`,
        };
      });
    },
  };
}

/** Fails the build when a module is bundled as both its CommonJS and its ESM build (a dual-package hazard). */
function checkOneCopy(inputs: string[]) {
  const files = new Set(inputs);
  const twice = inputs.filter((file) => file.endsWith(".mjs") && files.has(file.replace(/\.mjs$/, ".js")));
  if (twice.length) {
    console.error(`Build failed: bundled as both CommonJS and ESM: ${twice.slice(0, 5).join(", ")}`);
    process.exit(1);
  }
}

/**
 * Fails the build when a module loaded with import() was bundled from CommonJS: its chunk then ends in
 * `export default require_x();` and has no named exports, so destructuring it (`const { S3Client } = await
 * import(...)`) yields undefined at run time, in the bundle only. Prefer the package's ESM build, or import its
 * default export.
 */
function checkLazyChunks(outputs: Record<string, { imports: { path: string; kind: string; external?: boolean }[] }>) {
  const lazy = new Set(
    Object.values(outputs).flatMap((output) =>
      output.imports.filter((i) => i.kind === "dynamic-import" && !i.external).map((i) => i.path),
    ),
  );
  const commonJs = [...lazy].filter((file) =>
    /export default [\w$]+\(\);\s*(\/\/# sourceMappingURL=\S+\s*)?$/.test(readFileSync(resolve(root, file), "utf8")),
  );
  if (commonJs.length) {
    console.error(
      `Build failed: ${commonJs.join(", ")} ${commonJs.length > 1 ? "are" : "is"} CommonJS loaded with import(), which has no named exports in the bundle. Use the package's ESM build or its default export.`,
    );
    process.exit(1);
  }
}

/**
 * Copies packages the bundle loads at run time, with the dependencies they need (sharp's libvips for `platform`
 * only), to dist/functions/node_modules, where Node finds them from every handler and chunk.
 */
function shipPackages(names: readonly string[]) {
  const shipped = new Set<string>();
  const ship = (name: string, from: string) => {
    if (shipped.has(name)) return;
    const dir = [`${from}/node_modules/${name}`, `${root}node_modules/${name}`].find((d) => existsSync(d));
    if (!dir) throw new Error(`${name} is not installed`);
    shipped.add(name);
    cpSync(dir, `${outdir}node_modules/${name}`, { recursive: true, dereference: true });
    const manifest = JSON.parse(readFileSync(`${dir}/package.json`, "utf8")) as {
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    for (const dependency of Object.keys(manifest.dependencies ?? {})) ship(dependency, dir);
    // Optional dependencies are sharp's binaries, one package per platform: only the target's.
    for (const dependency of Object.keys(manifest.optionalDependencies ?? {})) {
      if (dependency.endsWith(`-${platform}`)) ship(dependency, dir);
    }
  };
  for (const name of names) ship(name, root);
  const binary = `@img/sharp-${platform}`;
  if (!shipped.has(binary)) {
    console.error(
      `Build failed: sharp has no binary for ${platform} installed. Run: npm install --no-save --os=${platform.split("-")[0]} --cpu=${platform.split("-")[1]} sharp`,
    );
    process.exit(1);
  }
}
shipPackages(SHIPPED);

// The migration function reads the committed migrations and runs Prisma's schema engine as WebAssembly.
cpSync(`${root}prisma/migrations`, `${outdir}migrations`, { recursive: true });
const engineWasm = createRequire(import.meta.url)
  .resolve("@prisma/schema-engine-wasm/schema_engine_bg")
  .replace(/\.js$/, ".wasm");
cpSync(engineWasm, `${outdir}schema_engine_bg.wasm`);
// Prisma's query compiler, decoded from the base64 module the generated client would import (queryCompilerFile).
const base64Module = "@prisma/client/runtime/query_compiler_fast_bg.postgresql.wasm-base64.mjs";
const { wasm } = (await import(base64Module)) as { wasm: string };
writeFileSync(`${outdir}${QUERY_COMPILER}`, Buffer.from(wasm, "base64"));

const outputs = result.metafile.outputs;
writeLoaders();
compileCache();
const kb = (bytes: number) => `${(bytes / 1024).toFixed(0).padStart(6)} KiB`;

/**
 * Each of CACHED's `<name>.mjs`: turns on the compile cache when it was made by the Node.js that runs it (a cache
 * made by another version or architecture is useless to V8, which would only compile again, and try to write the
 * result next to the code), then loads `<name>.app.mjs` and exports what it exports.
 */
function writeLoaders() {
  for (const name of CACHED) {
    const app = `${name}.app.mjs`;
    const exported = outputs[Object.keys(outputs).find((file) => file.endsWith(`/${app}`)) ?? ""]?.exports ?? [];
    writeFileSync(
      `${outdir}${name}.mjs`,
      `// Made by scripts/build.ts: V8's compile cache for ${app} and its chunks, then ${app} itself.
import { readdirSync } from "node:fs";
import { enableCompileCache } from "node:module";
import { fileURLToPath } from "node:url";
const directory = fileURLToPath(new URL("./${COMPILE_CACHE}", import.meta.url));
const made = (() => { try { return readdirSync(directory); } catch { return []; } })();
if (made.some((entry) => entry.startsWith(\`\${process.version}-\${process.arch}-\`))) enableCompileCache({ directory, portable: true });
else if (made.length) console.error(JSON.stringify({ level: 40, time: Date.now(), msg: \`compile cache not used: made by Node.js \${made.join(", ")}, this is \${process.version}-\${process.arch}; build with the Node.js that runs the function\` }));
${exported.length ? `export const { ${exported.join(", ")} } = ` : ""}await import("./${app}");
`,
    );
  }
}

/**
 * V8's code cache of the handlers and every chunk, made at build time by running them (Node's compile cache, in
 * its portable form: it stays valid wherever the folder is copied). A cold start then deserializes compiled code
 * instead of parsing and compiling ~1.5 MB of JavaScript (functions V8 compiles lazily, on their first call, are not
 * in it). The cache is only valid for the Node.js version, architecture and V8 flags that made
 * it: it is made with this Node.js, once as the container runs it and once with the flags Lambda's Node.js runtime
 * starts with (--expose-gc changes V8's flag hash), and only when building for this machine's platform — a cache for
 * another architecture can only be made there (the loaders above ignore a cache that is not theirs).
 */
function compileCache() {
  if (platform !== `${process.platform}-${process.arch}`) {
    console.log(`no compile cache: it is made by the Node.js that runs the functions (build on ${platform})`);
    return;
  }
  for (const flags of [[], ["--expose-gc"]]) {
    const trained = spawnSync(process.execPath, [...flags, `${root}scripts/compile-cache.ts`, outdir], {
      encoding: "utf8",
      env: { PATH: process.env.PATH ?? "" },
    });
    if (trained.status !== 0) {
      console.error(`Build failed: making the compile cache failed:\n${trained.stderr}${trained.stdout}`);
      process.exit(1);
    }
  }
}

/**
 * What a handler loads at init (its static imports, transitively, and another handler it starts with, as the
 * container entry starts the GraphQL function), and what it may load later on demand.
 */
function closure(entry: string) {
  const isEntry = (file: string) => outputs[file]?.entryPoint?.startsWith("functions/") ?? false;
  const reach = (from: string, followDynamic: boolean, seen = new Set<string>()) => {
    if (seen.has(from)) return seen;
    seen.add(from);
    for (const imported of outputs[from]?.imports ?? []) {
      const eager = imported.kind !== "dynamic-import" || isEntry(imported.path);
      if (!imported.external && (followDynamic || eager)) reach(imported.path, followDynamic, seen);
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
  `${kb(total)} of JavaScript in ${files.length} files, ${kb(statSync(`${outdir}${QUERY_COMPILER}`).size)} query compiler .wasm, ${kb(statSync(engineWasm).size)} engine .wasm (migrate only); in dist/functions`,
);
