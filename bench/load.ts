// The load generator, a process of its own (so it never shares an event loop with the server it measures):
//   node bench/load.ts <spec.json>
// Drives autocannon at the spec's URL for its duration with its connections, each request built by the
// scenario's generator, and prints one JSON line: requests/s, latency percentiles (from every response), errors.
// Progress goes to stderr once a second.
import { readFileSync } from "node:fs";
import autocannon from "autocannon";
import * as hdr from "hdr-histogram-js";
import type { Fixtures } from "./data.ts";
import { type Documents, peerRequestsFor, requestsFor, type Scenario } from "./scenarios.ts";

export interface LoadSpec {
  url: string;
  scenario: Scenario;
  durationSec: number;
  connections: number;
  fixtures: Fixtures;
  documents: Documents;
  /** Drive PostGraphile (bench/peer.ts) with the same screens instead of Shutter. */
  peer?: boolean;
}

export interface LoadResult {
  requests: number;
  durationSec: number;
  rps: number;
  latencyMs: { p50: number; p95: number; p99: number; max: number; mean: number };
  errors: number;
  errorSamples: string[];
}

const spec: LoadSpec = JSON.parse(readFileSync(process.argv[2] as string, "utf8"));
const next = spec.peer
  ? peerRequestsFor(spec.scenario, spec.fixtures)
  : requestsFor(spec.scenario, spec.fixtures, spec.documents);
const histogram = hdr.build({
  lowestDiscernibleValue: 1,
  highestTrackableValue: 120_000_000,
  numberOfSignificantValueDigits: 3,
});
let errors = 0;
const errorSamples: string[] = [];
const fail = (why: string) => {
  errors++;
  if (errorSamples.length < 5) errorSamples.push(why.slice(0, 300));
};

const instance = autocannon(
  {
    url: spec.url,
    connections: spec.connections,
    duration: spec.durationSec,
    requests: [
      {
        setupRequest: (request) => ({ ...request, ...next() }),
        // A GraphQL error in a 200 is an error too (payload errors of mutations, typed results, are not).
        onResponse: (status: number, body: string) => {
          if (status >= 400) fail(`HTTP ${status}: ${body}`);
          else if (body.includes('"errors":[')) fail(`GraphQL errors: ${body}`);
        },
      },
    ],
  },
  (error, result) => done(error, result),
);
instance.on("response", (_client, _status, _bytes, responseTime) => {
  histogram.recordValue(Math.max(1, Math.round(responseTime * 1000)));
});
let seconds = 0;
let last = 0;
const ticker = setInterval(() => {
  seconds++;
  const count = histogram.totalCount;
  process.stderr.write(`${JSON.stringify({ second: seconds, rps: count - last })}\n`);
  last = count;
}, 1000);

function done(error: Error | null, result: autocannon.Result) {
  clearInterval(ticker);
  if (error) throw error;
  // The last second's progress, which the ticker may have missed by a few milliseconds.
  if (seconds < spec.durationSec) {
    process.stderr.write(`${JSON.stringify({ second: spec.durationSec, rps: histogram.totalCount - last })}\n`);
  }
  for (let i = 0; i < result.errors + result.timeouts; i++) fail("connection error or timeout");
  const ms = (us: number) => Math.round(us) / 1000;
  const out: LoadResult = {
    requests: histogram.totalCount,
    durationSec: result.duration,
    rps: Math.round((histogram.totalCount / result.duration) * 10) / 10,
    latencyMs: {
      p50: ms(histogram.getValueAtPercentile(50)),
      p95: ms(histogram.getValueAtPercentile(95)),
      p99: ms(histogram.getValueAtPercentile(99)),
      max: ms(histogram.maxValue),
      mean: ms(histogram.mean),
    },
    errors,
    errorSamples,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}
