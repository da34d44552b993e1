// Subscriptions on the Lambda handler that streams (lambda-stream, lambda-url), where each invocation holding a
// stream is an instance of its own: a stream ends cleanly before the invocation's deadline, telling its client to
// subscribe again. (subscriptions.test.ts runs there too: events, log-out, expiry, and the per-viewer limit, which
// counts a viewer's streams across instances there.)
import { expect } from "vitest";
import { test } from "../kit/helpers.ts";
import { openStream, startInstance } from "../kit/instances.ts";

test("a stream ends before the invocation's deadline, its last event telling the client to subscribe again", async ({
  alice,
}) => {
  const instance = await startInstance({}, { timeoutMs: 5_000 });
  const stream = await openStream(instance, alice.token);
  expect(stream.response.status).toBe(200);
  // Ended by the function, not cut by the platform: its last event, then `complete` (a cut stream has neither,
  // and its read fails).
  const text = await stream.untilEnd();
  const events = text.split("\n\n").filter((event) => event.startsWith("event:"));
  expect(events.slice(-2).map((event) => event.split("\n")[0])).toEqual(["event: next", "event: complete"]);
  expect(JSON.parse(events.at(-2)?.split("\n")[1]?.slice("data: ".length) ?? "{}")).toMatchObject({
    errors: [{ extensions: { code: "STREAM_ENDED" } }],
  });
  await instance.close();
});
