// The webhooks' signature (inbound and outbound): bound to the timestamp, the delivery id and the body, any one
// of several signatures may match while a secret is rotated, and v1 (no delivery id) is no longer accepted.
import { createHmac } from "node:crypto";
import { expect, test } from "vitest";
import { sign, signatureMatches } from "../../src/domain/webhook-signature.ts";

const secret = "whsec_test";
const body = '{"kind":"photo.reprocess"}';

test("a signature matches only its own timestamp, delivery id, body and secret", () => {
  const signature = sign(secret, 1_733_270_400, "d-1", body);
  expect(signature).toMatch(/^v2=[0-9a-f]{64}$/);
  expect(signatureMatches(secret, "1733270400", "d-1", body, signature)).toBe(true);
  expect(signatureMatches(secret, "1733270401", "d-1", body, signature)).toBe(false);
  expect(signatureMatches(secret, "1733270400", "d-2", body, signature)).toBe(false);
  expect(signatureMatches(secret, "1733270400", "d-1", `${body} `, signature)).toBe(false);
  expect(signatureMatches("other", "1733270400", "d-1", body, signature)).toBe(false);
});

test("while a secret rotates, any one of the signatures sent may match; garbage never does", () => {
  const current = sign(secret, 1, "d", body);
  const previous = sign("old secret", 1, "d", body);
  expect(signatureMatches(secret, "1", "d", body, `${previous}, ${current}`)).toBe(true);
  expect(signatureMatches(secret, "1", "d", body, previous)).toBe(false);
  expect(signatureMatches(secret, "1", "d", body, "")).toBe(false);
  expect(signatureMatches(secret, "1", "d", body, "v2=")).toBe(false);
});

test("v1 signatures (no delivery id: replayable under fresh ids) are refused", () => {
  const v1 = `v1=${createHmac("sha256", secret).update(`1.${body}`).digest("hex")}`;
  expect(signatureMatches(secret, "1", "d", body, v1)).toBe(false);
});
