// The operations webhook: CI/CD and monitoring systems POST events (build succeeded or failed, deployment
// finished, server restarted) to /webhooks/ops/<source>. A request is accepted only if it is signed with the
// source's secret (OPS_WEBHOOK_SECRETS) over its timestamp and exact body, recent (OPS_WEBHOOK_TOLERANCE_SECONDS),
// new (its delivery id never seen), small (OPS_WEBHOOK_MAX_BYTES) and well-formed. An accepted event becomes
// an outbox event in the same transaction that records its delivery id, and the events handler notifies the
// source's subscribers. A refused request gets a JSON error with a stable code and changes nothing.
import { createHmac, timingSafeEqual } from "node:crypto";
import * as z from "zod/mini";
import { config } from "./config.ts";
import { db } from "./db.ts";
import { recordEvent } from "./events/outbox.ts";
import { logger } from "./logger.ts";

export const OPS_EVENT_TYPES = ["build.succeeded", "build.failed", "deployment.finished", "server.restarted"] as const;

const OpsEvent = z.object({
  type: z.enum(OPS_EVENT_TYPES, { error: `type must be one of ${OPS_EVENT_TYPES.join(", ")}` }),
  title: z
    .string({ error: "title must be a string" })
    .check(z.trim(), z.minLength(1, "title can't be empty"), z.maxLength(200, "title can be at most 200 characters")),
  url: z.optional(z.url({ error: "url must be an http(s) URL", protocol: /^https?$/ })),
  details: z.optional(z.string().check(z.maxLength(2000, "details can be at most 2000 characters"))),
});

const DELIVERY_ID = /^[\w.:-]{1,100}$/;

type Refusal = { status: number; code: string; message: string; details?: unknown };

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

/**
 * The signature of both webhooks, inbound and outbound: `x-shutter-signature: v1=<hex HMAC-SHA256 of
 * "<timestamp>.<body>">` with the shared secret.
 */
export function sign(secret: string, timestamp: number | string, body: string): string {
  return `v1=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

function signatureMatches(secret: string, timestamp: string, body: string, given: string): boolean {
  const expected = Buffer.from(sign(secret, timestamp, body));
  // Several signatures may be sent while a secret is rotated: any one of them may match.
  return given
    .split(",")
    .map((part) => Buffer.from(part.trim()))
    .some((candidate) => candidate.length === expected.length && timingSafeEqual(candidate, expected));
}

export async function handleOpsWebhook(request: Request, source: string, requestId: string): Promise<Response> {
  const { secrets, toleranceSeconds, maxBytes } = config().opsWebhook;
  const secret = secrets[source];
  if (!secret) return refuse({ status: 404, code: "UNKNOWN_SOURCE", message: `No source "${source}".` }, requestId);
  const body = await readBody(request, maxBytes);
  if (body === null) {
    return refuse({ status: 413, code: "PAYLOAD_TOO_LARGE", message: `Send at most ${maxBytes} bytes.` }, requestId);
  }
  const timestamp = request.headers.get("x-shutter-timestamp") ?? "";
  if (!/^\d{1,12}$/.test(timestamp)) {
    const message = "Send x-shutter-timestamp: the Unix time (seconds) the request was signed at.";
    return refuse({ status: 400, code: "MISSING_TIMESTAMP", message }, requestId);
  }
  if (!signatureMatches(secret, timestamp, body, request.headers.get("x-shutter-signature") ?? "")) {
    const message =
      "x-shutter-signature must be v1=<hex HMAC-SHA256 of '<timestamp>.<body>' with the source's secret>.";
    return refuse({ status: 401, code: "BAD_SIGNATURE", message }, requestId);
  }
  const skew = Math.abs(Date.now() / 1000 - Number(timestamp));
  if (skew > toleranceSeconds) {
    const message = `The timestamp is ${Math.round(skew)} s away from now; at most ${toleranceSeconds} s are accepted.`;
    return refuse({ status: 400, code: "STALE_TIMESTAMP", message }, requestId);
  }
  const deliveryId = request.headers.get("x-shutter-delivery") ?? "";
  if (!DELIVERY_ID.test(deliveryId)) {
    const message = "Send x-shutter-delivery: a unique id per event (1-100 letters, digits, '.', ':', '_', '-').";
    return refuse({ status: 400, code: "MISSING_DELIVERY_ID", message }, requestId);
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
  const accepted = await db().$transaction(async (tx) => {
    const { count } = await tx.webhookDelivery.createMany({ data: [{ source, deliveryId }], skipDuplicates: true });
    if (count === 0) return null;
    return recordEvent(tx, "ops.event", null, { source, deliveryId, ...parsed.data });
  });
  if (accepted === null) {
    const message = `Delivery ${deliveryId} was accepted before: it is not processed twice.`;
    return refuse({ status: 409, code: "REPLAYED", message }, requestId);
  }
  logger().info({ source, deliveryId, type: parsed.data.type }, "ops webhook: event accepted");
  return Response.json(
    { accepted: true, deliveryId, requestId },
    { status: 202, headers: { "cache-control": "no-store" } },
  );
}
