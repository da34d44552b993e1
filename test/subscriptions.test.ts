// `notificationAdded` over Server-Sent Events, with The Guild's graphql-sse client on its defaults (distinct
// connections, POST with `Accept: text/event-stream`), where deployments can hold a stream: the source's
// entry (with the events runner in process, as `npm run dev` runs it) and the container entry (with
// EVENTS_RUNNER=true, as the Knative manifest sets). Lambda refuses subscriptions (lambda.test.ts).
import { createClient } from "graphql-sse";
import { afterAll, beforeAll, expect } from "vitest";
import { runEvents } from "../src/events/runner.ts";
import { createPost, ok, target, test } from "./helpers.ts";
import { BUNDLED, type Instance, startInstance } from "./instances.ts";

const SUBSCRIPTION = `subscription { notificationAdded { kind actorCount actor { handle } post { id } } }`;

let instance: Instance;
const runner = new AbortController();
let running: Promise<void> = Promise.resolve();

beforeAll(async () => {
  // In process, the file's instance and the runner share one pub/sub (in-process, or Redis), as in
  // `npm run dev`.
  instance = BUNDLED ? await startInstance({ EVENTS_RUNNER: "true" }) : await target();
  if (!BUNDLED) running = runEvents(runner.signal, "subscriptions-test");
});
afterAll(async () => {
  runner.abort();
  await running;
});

test("a like reaches the author's open subscription as it happens", async ({ alice, bob }) => {
  const post = await createPost(alice);
  const client = createClient({
    url: await instance.url(),
    headers: { authorization: `Bearer ${alice.token}` },
    retryAttempts: 0,
  });
  const events = client.iterate({ query: SUBSCRIPTION });
  const first = events.next();
  // The stream is open once the server has answered its headers; a like after that must arrive.
  await new Promise((resolve) => setTimeout(resolve, 500));
  await ok(`mutation ($id: ID!) { likePost(input: { postId: $id }) { __typename } }`, { id: post.gid }, bob);
  const received = await Promise.race([
    first,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no event within 10 s")), 10_000)),
  ]);
  expect(received.value).toEqual({
    data: {
      notificationAdded: { kind: "LIKE", actorCount: 1, actor: { handle: bob.handle }, post: { id: post.gid } },
    },
  });
  await events.return?.();
  client.dispose();
});

test("signed out, there is nothing to subscribe to", async () => {
  const client = createClient({ url: await instance.url(), retryAttempts: 0 });
  const result = await client
    .iterate({ query: SUBSCRIPTION })
    .next()
    .then(
      (next) => next.value,
      (error: unknown) => error,
    );
  expect(JSON.stringify(result)).toContain("UNAUTHENTICATED");
  client.dispose();
});
