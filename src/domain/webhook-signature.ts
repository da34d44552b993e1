import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * The signature of both webhooks, inbound and outbound: `x-shutter-signature: v2=<hex HMAC-SHA256 of
 * "<timestamp>.<delivery id>.<body>">` with the shared secret. (v1 signed no delivery id: a captured request
 * could be replayed under fresh ids. It is no longer accepted.)
 */
export function sign(secret: string, timestamp: number | string, deliveryId: string, body: string): string {
  return `v2=${createHmac("sha256", secret).update(`${timestamp}.${deliveryId}.${body}`).digest("hex")}`;
}

export function signatureMatches(secret: string, timestamp: string, deliveryId: string, body: string, given: string) {
  const expected = Buffer.from(sign(secret, timestamp, deliveryId, body));
  // Several signatures may be sent while a secret is rotated: any one of them may match.
  return given
    .split(",")
    .map((part) => Buffer.from(part.trim()))
    .some((candidate) => candidate.length === expected.length && timingSafeEqual(candidate, expected));
}
