// Subscriptions on the Lambda handler that streams (lambda-stream, lambda-url): without Redis an invocation hears no
// other instance's events, so they are refused, saying why (with Redis: lambda-subscriptions.redis.test.ts, and
// subscriptions.test.ts runs there too).
import { expect } from "vitest";
import { test } from "../kit/helpers.ts";
import { openStream, startInstance } from "../kit/instances.ts";

test("without Redis, a subscription is refused at once with SUBSCRIPTIONS_UNAVAILABLE, saying why", async ({
  alice,
}) => {
  const instance = await startInstance({ REDIS_URL: "" });
  const stream = await openStream(instance, alice.token);
  const text = await stream.untilEnd();
  expect(text).toContain('"code":"SUBSCRIPTIONS_UNAVAILABLE"');
  expect(text).toContain("Subscriptions on AWS Lambda need Redis (REDIS_URL)");
  await instance.close();
});
