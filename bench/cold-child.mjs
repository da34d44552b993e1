// One cold start (a process of its own, spawned by bench/cold-start.ts): loads a Lambda handler module, invokes
// it once with the API Gateway event in argv[4], and prints the timings (ms since the process started, from
// performance.now()) with every performance mark the code under test set on the way, then exits.
//   node bench/cold-child.mjs <module> <export> <event.json>
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [modulePath, exportName, eventPath] = process.argv.slice(2);
const started = performance.now();
const event = JSON.parse(readFileSync(eventPath, "utf8"));
const handler = (await import(pathToFileURL(modulePath).href))[exportName];
const loaded = performance.now();
const result = await handler(event, {
  awsRequestId: "cold-start",
  functionName: "bench",
  getRemainingTimeInMillis: () => 30_000,
});
const answered = performance.now();
const marks = Object.fromEntries(performance.getEntriesByType("mark").map((mark) => [mark.name, mark.startTime]));
process.stdout.write(
  `${JSON.stringify({ started, loaded, answered, marks, statusCode: result.statusCode, body: result.body })}\n`,
);
process.exit(0);
