// The soak's clients, a process of their own (bench/soak.ts starts it):  node bench/soak-load.ts <spec.json>
// Open-loop: operations start at the spec's rate whatever the servers' latency, so a slow patch shows as latency
// and errors, never as load quietly backing off. Each operation is what an app does for a screen or a tap — a
// read, a write with an `Idempotency-Key`, or an upload (createUpload, PUT, createPost) — and is retried the way
// a well-behaved mobile client retries: on a network error (on the other instance, as a load balancer would),
// on 503 and on IDEMPOTENCY_KEY_IN_USE, after Retry-After or a short backoff, with the same key, for up to
// `retryForMs`. Prints a JSON line per `windowSec` (attempts by outcome, latency percentiles), and at the end the
// ledger of every write (its key, its marker, how it ended), which the integrity checks read.
import { createHash, randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import * as hdr from "hdr-histogram-js";
import type { Fixtures } from "./data.ts";
import type { Documents } from "./scenarios.ts";

export interface SoakLoadSpec {
  urls: string[];
  rate: number;
  durationSec: number;
  windowSec: number;
  retryForMs: number;
  fixtures: Fixtures;
  documents: Documents;
  /** Share of operations (in %) that post a new photo. */
  uploadShare: number;
  /** A JPEG the upload operations send. */
  photoPath: string;
  /** Where the ledger of writes goes. */
  ledgerPath: string;
}

/** One line per window: what every HTTP attempt in it ended as, and how long attempts took. */
export interface SoakWindow {
  second: number;
  operations: number;
  attempts: number;
  outcomes: Record<string, number>;
  /** How each request ended, after its retries (a PUT to storage is one). */
  final: Record<string, number>;
  latencyMs: { p50: number; p99: number; max: number };
  /** Operations not started because `maxInFlight` were still running (the clients' own limit). */
  skipped: number;
  inFlight: number;
}

export interface LedgerEntry {
  kind: string;
  key: string;
  /** The text that makes the write's row findable (a comment's body, a post's caption). */
  marker?: string;
  ok: boolean;
  /** The last outcome, when the operation gave up. */
  outcome?: string;
  attempts: number;
}

const spec: SoakLoadSpec = JSON.parse(readFileSync(process.argv[2] as string, "utf8"));
const photo = readFileSync(spec.photoPath);
const maxInFlight = Math.max(50, spec.rate * 4);

// Documents not in the mobile app's manifest, sent whole with their hash (the APQ protocol).
const EXTRA: Record<string, string> = {
  CreateUpload: `mutation CreateUpload($input: CreateUploadInput!) {
  createUpload(input: $input) {
    __typename
    ... on CreateUploadSuccess { photo { id } upload { url headers { name value } } }
    ... on Error { code message }
  }
}`,
};
const documents: Documents = { ...spec.documents };
for (const [name, document] of Object.entries(EXTRA)) {
  documents[name] = { id: `sha256:${createHash("sha256").update(document).digest("hex")}`, document };
}

const pick = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)] as T;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000 });
let outcomes: Record<string, number> = {};
let final: Record<string, number> = {};
let attempts = 0;
let operations = 0;
let skipped = 0;
let inFlight = 0;
const ledger: LedgerEntry[] = [];
/** Answers that are neither a success, a typed payload nor a refusal to retry: kept to show in the report. */
const oddities: { outcome: string; request: string; response: string }[] = [];
const count = (outcome: string, into = outcomes) => {
  into[outcome] = (into[outcome] ?? 0) + 1;
};

/** Outcomes worth another attempt (with the same key): the server said so, or never answered. */
const RETRYABLE = /^(network|http:50[234]|SERVICE_UNAVAILABLE|IDEMPOTENCY_KEY_IN_USE|field:SERVICE_UNAVAILABLE)/;

interface Answer {
  outcome: string;
  data?: Record<string, unknown>;
  retryAfterMs?: number;
}

/** One HTTP attempt, classified: `ok`, a GraphQL error code, `http:<status>`, or `network:<code>`. */
async function attempt(instance: number, init: { body: string; headers: Record<string, string> }): Promise<Answer> {
  attempts++;
  const started = performance.now();
  try {
    const response = await fetch(`${spec.urls[instance % spec.urls.length]}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", ...init.headers },
      body: init.body,
      signal: AbortSignal.timeout(15_000),
    });
    const text = await response.text();
    histogram.recordValue(Math.max(1, Math.round((performance.now() - started) * 1000)));
    const retryAfter = Number(response.headers.get("retry-after"));
    const retryAfterMs = Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined;
    let json: { data?: Record<string, unknown> | null; errors?: { extensions?: { code?: string } }[] };
    try {
      json = JSON.parse(text);
    } catch {
      return { outcome: `http:${response.status}`, retryAfterMs };
    }
    const code = json.errors?.[0]?.extensions?.code;
    if (code) {
      const outcome = json.data ? `field:${code}` : code;
      if (!RETRYABLE.test(outcome) && oddities.length < 30) {
        oddities.push({ outcome, request: init.body.slice(0, 300), response: text.slice(0, 500) });
      }
      return { outcome, retryAfterMs };
    }
    if (response.status !== 200) return { outcome: `http:${response.status}`, retryAfterMs };
    // A mutation's typed error (its payload's __typename) is an answer, not a failure of the request.
    const payload = Object.values(json.data ?? {})[0] as { __typename?: string; code?: string } | null;
    if (payload?.__typename?.endsWith("Error")) return { outcome: `payload:${payload.code ?? payload.__typename}` };
    return { outcome: "ok", data: json.data ?? undefined };
  } catch (error) {
    histogram.recordValue(Math.max(1, Math.round((performance.now() - started) * 1000)));
    const cause = (error as { cause?: { code?: string } }).cause;
    const outcome = `network:${cause?.code ?? (error as Error).name}`;
    // A server that took longer than the clients wait is worth a look: which operation, which request id.
    if (outcome === "network:TimeoutError" && oddities.length < 30) {
      oddities.push({ outcome, request: `${init.headers["x-request-id"]} ${init.body.slice(0, 300)}`, response: "" });
    }
    return { outcome };
  }
}

/** An operation's requests until one is answered for good (or `retryForMs` is over), with the same key. */
async function send(
  operation: string,
  variables: Record<string, unknown>,
  options: { token?: string; key?: string } = {},
): Promise<Answer & { attempts: number }> {
  const document = documents[operation];
  if (!document) throw new Error(`no document for ${operation}`);
  const body = JSON.stringify({
    query: document.document,
    variables,
    operationName: operation,
    extensions: { persistedQuery: { version: 1, sha256Hash: document.id.replace(/^sha256:/, "") } },
  });
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.key) headers["idempotency-key"] = options.key;
  const deadline = Date.now() + spec.retryForMs;
  let instance = Math.floor(Math.random() * spec.urls.length);
  for (let n = 1; ; n++) {
    // Our own request id per attempt, to find it in the servers' logs.
    const answer = await attempt(instance, { body, headers: { ...headers, "x-request-id": `soak-${randomUUID()}` } });
    count(answer.outcome);
    if (!RETRYABLE.test(answer.outcome) || Date.now() > deadline) {
      count(answer.outcome, final);
      return { ...answer, attempts: n };
    }
    if (answer.outcome.startsWith("network")) instance++;
    // Exponential backoff with jitter, never sooner than Retry-After: clients that all come back exactly when
    // told would arrive together and keep an overloaded server overloaded.
    const backoff = Math.min(4_000, 100 * 2 ** n);
    const wait = Math.max(answer.retryAfterMs ?? 0, backoff) * (1 + Math.random() / 2);
    await sleep(Math.min(wait, Math.max(0, deadline - Date.now())));
  }
}

/** The PUT of an upload, retried like the app's upload queue does. */
async function put(upload: { url: string; headers: { name: string; value: string }[] }): Promise<string> {
  const headers = Object.fromEntries(
    upload.headers.filter((h) => h.name !== "Content-Length").map((h) => [h.name, h.value]),
  );
  const deadline = Date.now() + spec.retryForMs;
  for (let n = 1; ; n++) {
    let outcome: string;
    try {
      const response = await fetch(upload.url, {
        method: "PUT",
        headers,
        body: new Uint8Array(photo),
        signal: AbortSignal.timeout(15_000),
      });
      await response.arrayBuffer();
      outcome = response.ok ? "ok" : `storage:${response.status}`;
    } catch (error) {
      outcome = `storage:network:${(error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name}`;
    }
    count(outcome);
    if (outcome === "ok" || Date.now() > deadline || /^storage:4/.test(outcome)) {
      count(outcome === "ok" ? "ok" : outcome, final);
      return outcome;
    }
    await sleep(Math.min(2_000, 100 * 2 ** n));
  }
}

const viewer = () => pick(spec.fixtures.viewers);
const record = (entry: LedgerEntry) => ledger.push(entry);

/** A write: a fresh key for the tap, kept across its retries; the ledger says how it ended. */
async function write(kind: string, variables: Record<string, unknown>, token: string, marker?: string) {
  const key = randomUUID();
  const answer = await send(kind, variables, { token, key });
  record({ kind, key, marker, ok: answer.outcome === "ok", outcome: answer.outcome, attempts: answer.attempts });
  return answer;
}

// What the app does, by share of operations.
const MIX: [number, () => Promise<unknown>][] = [
  [30, () => send("Feed", { first: 20 }, { token: viewer().token })],
  [18, () => send("PostDetail", { id: pick(spec.fixtures.posts) }, { token: viewer().token })],
  [8, () => send("Profile", { handle: pick(spec.fixtures.handles) }, { token: viewer().token })],
  [6, () => send("Explore", {})],
  [5, () => send("Notifications", {}, { token: viewer().token })],
  [4, () => send("UnreadCount", {}, { token: viewer().token })],
  [10, () => write("LikePost", { postId: pick(spec.fixtures.posts) }, viewer().token)],
  [4, () => write("UnlikePost", { postId: pick(spec.fixtures.posts) }, viewer().token)],
  [
    6,
    () => {
      const marker = `soak ${randomUUID()}`;
      return write("AddComment", { postId: pick(spec.fixtures.posts), body: marker }, viewer().token, marker);
    },
  ],
  [3, () => write("Follow", { userId: pick(spec.fixtures.users) }, viewer().token)],
  [2, () => write("Unfollow", { userId: pick(spec.fixtures.users) }, viewer().token)],
  [2, () => write("MarkNotificationsRead", {}, viewer().token)],
  [spec.uploadShare, () => uploadAndPost()],
];
const TOTAL = MIX.reduce((sum, [share]) => sum + share, 0);

/** A new post with a photo: createUpload, the PUT to storage, createPost (each tap with its own key). */
async function uploadAndPost() {
  const { token } = viewer();
  const created = await write(
    "CreateUpload",
    { input: { contentType: "image/jpeg", byteSize: photo.length, purpose: "POST_PHOTO" } },
    token,
  );
  const success = created.data?.createUpload as
    | { photo: { id: string }; upload: { url: string; headers: { name: string; value: string }[] } }
    | undefined;
  // No answer (an instance killed before it answered, say): a photo may exist that the client never learnt of.
  if (!success?.upload) {
    record({ kind: "UploadFlow", key: "", ok: false, outcome: created.outcome, attempts: 0 });
    return;
  }
  // The flow as a whole, by its photo: a photo never posted must be one of a flow that gave up.
  const flow = (ok: boolean, outcome: string) =>
    record({ kind: "UploadFlow", key: success.photo.id, ok, outcome, attempts: 0 });
  const stored = await put(success.upload);
  if (stored !== "ok") return flow(false, stored);
  const marker = `soak ${randomUUID()}`;
  const posted = await write("CreatePost", { caption: marker, photoIds: [success.photo.id] }, token, marker);
  flow(posted.outcome === "ok", posted.outcome);
}

function operation() {
  let roll = Math.random() * TOTAL;
  for (const [share, run] of MIX) {
    roll -= share;
    if (roll < 0) return run();
  }
  return MIX[0]?.[1]();
}

const started = Date.now();
let second = 0;
function flush() {
  second += spec.windowSec;
  const ms = (us: number) => Math.round(us) / 1000;
  const line: SoakWindow = {
    second,
    operations,
    attempts,
    outcomes,
    final,
    latencyMs: {
      p50: ms(histogram.getValueAtPercentile(50)),
      p99: ms(histogram.getValueAtPercentile(99)),
      max: ms(histogram.maxValue),
    },
    skipped,
    inFlight,
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
  histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000 });
  outcomes = {};
  final = {};
  attempts = 0;
  operations = 0;
  skipped = 0;
}
const windows = setInterval(flush, spec.windowSec * 1000);

// Operations start on a 10 ms tick, as many as the rate owes since the start. The rate ramps up over the first
// `rampSec` (traffic does not jump from nothing to full on cold caches), then holds.
const rampSec = Math.min(30, spec.durationSec / 10);
const owed = (t: number) => (t < rampSec ? (spec.rate * t * t) / (2 * rampSec) : spec.rate * (t - rampSec / 2));
const running = new Set<Promise<unknown>>();
let begun = 0;
await new Promise<void>((resolve) => {
  const tick = setInterval(() => {
    const elapsed = Date.now() - started;
    if (elapsed >= spec.durationSec * 1000) {
      clearInterval(tick);
      resolve();
      return;
    }
    for (const due = Math.floor(owed(elapsed / 1000)); begun < due; begun++) {
      if (inFlight >= maxInFlight) {
        skipped++;
        continue;
      }
      operations++;
      inFlight++;
      const run = Promise.resolve()
        .then(operation)
        .catch((error: unknown) => count(`client:${(error as Error).message}`, final))
        .finally(() => {
          inFlight--;
          running.delete(run);
        });
      running.add(run);
    }
  }, 10);
});
// Operations under way finish (their retries included) before the ledger is written.
await Promise.all(running);
clearInterval(windows);
flush();
writeFileSync(spec.ledgerPath, JSON.stringify({ ledger, oddities }));
process.stdout.write(`${JSON.stringify({ done: true, ledger: ledger.length })}\n`);
