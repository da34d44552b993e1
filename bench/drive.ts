// Runs the load generator (bench/load.ts) in a process of its own against a server and returns its result,
// relaying its per-second progress.
import { spawn } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LoadResult, LoadSpec } from "./load.ts";

const root = new URL("..", import.meta.url).pathname;

export function drive(spec: LoadSpec, progress: (second: number, rps: number) => void): Promise<LoadResult> {
  const file = join(tmpdir(), `shutter-bench-${process.pid}-${Date.now()}.json`);
  writeFileSync(file, JSON.stringify(spec));
  const child = spawn(process.execPath, ["bench/load.ts", file], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => (stdout += chunk));
  child.stderr.on("data", (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n").filter(Boolean)) {
      try {
        const tick = JSON.parse(line);
        progress(tick.second, tick.rps);
      } catch {
        stderr += `${line}\n`;
      }
    }
  });
  return new Promise<LoadResult>((resolve, reject) =>
    child.once("exit", (code) => {
      rmSync(file, { force: true });
      try {
        resolve(JSON.parse(stdout.trim().split("\n").pop() ?? ""));
      } catch {
        reject(new Error(`load generator exited with ${code}:\n${stderr}`));
      }
    }),
  );
}
