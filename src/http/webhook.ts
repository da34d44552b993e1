// The operations webhook: CI/CD and monitoring systems POST events (build succeeded or failed, deployment
// finished, server restarted) to /webhooks/ops/<source>. A request is accepted only if it is signed with the
// source's secret (OPS_WEBHOOK_SECRETS) over its timestamp, delivery id and exact body (everything the server
// relies on: a captured request replayed under a new delivery id fails), recent (OPS_WEBHOOK_TOLERANCE_SECONDS),
// new (its delivery id never seen), small (OPS_WEBHOOK_MAX_BYTES) and well-formed. An accepted event becomes
// an outbox event in the same transaction that records its delivery id, and the events handler notifies the
// source's subscribers. A refused request gets a JSON error with a stable code and changes nothing.
import * as z from "zod/mini";
import { chargeOperation, chargeOpsEvent } from "../domain/rate-limit.ts";
import { deceptiveText } from "../domain/validation.ts";
import { signatureMatches } from "../domain/webhook-signature.ts";
import { RateLimitedError } from "../errors.ts";
import { config } from "../platform/config.ts";
import { logger } from "../platform/logger.ts";
import { acceptOpsEvent } from "../services/sources.ts";

export const OPS_EVENT_TYPES = ["build.succeeded", "build.failed", "deployment.finished", "server.restarted"] as const;

const OpsEvent = z.object({
  type: z.enum(OPS_EVENT_TYPES, { error: `type must be one of ${OPS_EVENT_TYPES.join(", ")}` }),
  title: z.string({ error: "title must be a string" }).check(
    z.trim(),
    z.minLength(1, "title can't be empty"),
    z.maxLength(200, "title can be at most 200 characters"),
    z.refine((title) => deceptiveText(title) === null, "title can't contain control or formatting characters"),
  ),
  url: z.optional(z.url({ error: "url must be an http(s) URL", protocol: /^https?$/ })),
  details: z.optional(
    z.string().check(
      z.maxLength(2000, "details can be at most 2000 characters"),
      z.refine(
        (details) => deceptiveText(details, { multiline: true }) === null,
        "details can't contain control or formatting characters",
      ),
    ),
  ),
});

const DELIVERY_ID = /^[\w.:-]{1,100}$/;

/** A percent-encoded path segment, decoded; null when its encoding is broken. */
function decodePathSegment(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

type Refusal = { status: number; code: string; message: string; details?: unknown };

const rateLimited = (error: RateLimitedError, requestId: string) =>
  Response.json(
    { error: { code: "RATE_LIMITED", message: error.message, requestId } },
    {
      status: 429,
      headers: { "cache-control": "no-store", "retry-after": String(error.retryAfterSeconds) },
    },
  );

const refuse = (refusal: Refusal, requestId: string) =>
  Response.json(
    { error: { code: refusal.code, message: refusal.message, details: refusal.details, requestId } },
    { status: refusal.status, headers: { "cache-control": "no-store" } },
  );

/** Reads at most `max` bytes of the body; null when there are more. */
async function readBody(request: Request, max: number): Promise<string | null> {
  if (Number(request.headers.get("content-length") ?? 0) > max) return null;
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body?.getReader();
  for (let read = await reader?.read(); read && !read.done; read = await reader?.read()) {
    size += read.value.byteLength;
    if (size > max) {
      await reader?.cancel();
      return null;
    }
    chunks.push(read.value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** What a webhook request costs the sender's address (signed or not), in rate-limit points. */
const REQUEST_COST = 10;

/**
 * The webhook at `/webhooks/ops/<source>`, `source` as it stands in the path (still percent-encoded). Every
 * request is charged to its sender's address first, like an anonymous operation; every accepted event to its
 * source (OPS_WEBHOOK_EVENTS_PER_MINUTE), so a leaked secret cannot flood the subscribers.
 */
export async function handleOpsWebhook(
  request: Request,
  rawSource: string,
  clientAddress: string,
  requestId: string,
): Promise<Response> {
  const { secrets, toleranceSeconds, maxBytes } = config().opsWebhook;
  try {
    await chargeOperation(REQUEST_COST, null, clientAddress);
  } catch (error) {
    if (!(error instanceof RateLimitedError)) throw error;
    return rateLimited(error, requestId);
  }
  const source = decodePathSegment(rawSource);
  // A Map: a source named like an object's property ("constructor", "__proto__") is just an unknown source.
  const secret = source === null ? undefined : secrets.get(source);
  if (!secret || source === null) {
    const message = `No source "${(source ?? rawSource).slice(0, 100)}".`;
    return refuse({ status: 404, code: "UNKNOWN_SOURCE", message }, requestId);
  }
  const body = await readBody(request, maxBytes);
  if (body === null) {
    return refuse({ status: 413, code: "PAYLOAD_TOO_LARGE", message: `Send at most ${maxBytes} bytes.` }, requestId);
  }
  const timestamp = request.headers.get("x-shutter-timestamp") ?? "";
  if (!/^\d{1,12}$/.test(timestamp)) {
    const message = "Send x-shutter-timestamp: the Unix time (seconds) the request was signed at.";
    return refuse({ status: 400, code: "MISSING_TIMESTAMP", message }, requestId);
  }
  const deliveryId = request.headers.get("x-shutter-delivery") ?? "";
  if (!DELIVERY_ID.test(deliveryId)) {
    const message = "Send x-shutter-delivery: a unique id per event (1-100 letters, digits, '.', ':', '_', '-').";
    return refuse({ status: 400, code: "MISSING_DELIVERY_ID", message }, requestId);
  }
  if (!signatureMatches(secret, timestamp, deliveryId, body, request.headers.get("x-shutter-signature") ?? "")) {
    const message =
      "x-shutter-signature must be v2=<hex HMAC-SHA256 of '<timestamp>.<delivery id>.<body>' with the source's secret>.";
    return refuse({ status: 401, code: "BAD_SIGNATURE", message }, requestId);
  }
  const skew = Math.abs(Date.now() / 1000 - Number(timestamp));
  if (skew > toleranceSeconds) {
    const message = `The timestamp is ${Math.round(skew)} s away from now; at most ${toleranceSeconds} s are accepted.`;
    return refuse({ status: 400, code: "STALE_TIMESTAMP", message }, requestId);
  }
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return refuse({ status: 400, code: "INVALID_JSON", message: "The body is not JSON." }, requestId);
  }
  const parsed = OpsEvent.safeParse(json);
  if (!parsed.success) {
    const details = parsed.error.issues.map((issue) => ({ path: issue.path.join("."), message: issue.message }));
    const message = details.map((d) => d.message).join("; ");
    return refuse({ status: 422, code: "INVALID_EVENT", message, details }, requestId);
  }
  try {
    await chargeOpsEvent(source);
  } catch (error) {
    if (!(error instanceof RateLimitedError)) throw error;
    return rateLimited(error, requestId);
  }
  if (!(await acceptOpsEvent(source, deliveryId, parsed.data))) {
    const message = `Delivery ${deliveryId} was accepted before: it is not processed twice.`;
    return refuse({ status: 409, code: "REPLAYED", message }, requestId);
  }
  logger().info({ source, deliveryId, type: parsed.data.type }, "ops webhook: event accepted");
  return Response.json(
    { accepted: true, deliveryId, requestId },
    { status: 202, headers: { "cache-control": "no-store" } },
  );
}
