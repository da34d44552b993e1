-- Keys are kept as their SHA-256 and answers sealed with the key (src/platform/idempotency.ts). Answers stored in
-- clear before (sign-ins' tokens among them) are dropped: a repeat of such a key is told its answer was lost.
UPDATE "idempotency_keys" SET "key" = encode(sha256(convert_to("key", 'UTF8')), 'hex'), "response" = NULL;
