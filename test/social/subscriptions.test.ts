// `notificationAdded` over Server-Sent Events, with The Guild's graphql-sse client on its defaults (distinct
// connections, POST with `Accept: text/event-stream`), where deployments can hold a stream: the source's
// entry (with the events runner in process, as `npm run dev` runs it), the container entry (with
// EVENTS_RUNNER=true, as the Knative manifest sets) and the Lambda handler that streams, with Redis. The buffered
// Lambda handler refuses subscriptions (lambda.test.ts).
import { createClient } from "graphql-sse";
import { decodeJwt, importPKCS8, SignJWT } from "jose";
import { afterAll, beforeAll, expect } from "vitest";
import { runEvents } from "../../src/workers/runner.ts";
import { createPost, target, test } from "../kit/helpers.ts";
import { BUNDLED, type Instance, openStream, STREAMING, startInstance } from "../kit/instances.ts";
import { mobile } from "../kit/operations.ts";

const SUBSCRIPTION = `subscription { notificationAdded { kind actorCount actor { handle } post { id } } }`;

let instance: Instance;
const runner = new AbortController();
let running: Promise<void> = Promise.resolve();

beforeAll(async () => {
  // In process, the file's instance and the runner share one pub/sub (in-process, or Redis), as in
  // `npm run dev`. The container runs the runner itself (EVENTS_RUNNER); on Lambda (the streaming handler, with
  // Redis) the runner is another function: here, this process, publishing through Redis.
  instance = !BUNDLED ? await target() : await startInstance(STREAMING ? {} : { EVENTS_RUNNER: "true" });
  if (!BUNDLED || STREAMING) running = runEvents(runner.signal, "subscriptions-test");
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
  await mobile.likePost(bob, { postId: post.gid });
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

// Counted per instance, or (on Lambda, where an instance holds one stream) across instances.
test("a viewer holds at most SUBSCRIPTIONS_PER_VIEWER streams", async ({ alice, bob }) => {
  const limited = await startInstance({ SUBSCRIPTIONS_PER_VIEWER: "2" });
  const first = await openStream(limited, alice.token);
  const second = await openStream(limited, alice.token);
  const third = await openStream(limited, alice.token);
  expect(await third.untilEnd()).toContain('"code":"RATE_LIMITED"');
  // Someone else has their own allowance; a closed stream gives its place back.
  const bobs = await openStream(limited, bob.token);
  expect(bobs.response.status).toBe(200);
  await first.close();
  await expect
    .poll(
      async () => {
        const again = await openStream(limited, alice.token);
        const refused = await Promise.race([
          again.untilEnd().then((text) => text.includes("RATE_LIMITED")),
          new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 300)),
        ]);
        await again.close();
        return refused;
      },
      { timeout: 10_000 },
    )
    .toBe(false);
  await Promise.all([second.close(), bobs.close()]);
  await limited.close();
});

test("a stream ends when its session does (log-out)", async ({ alice }) => {
  const stream = await openStream(instance, alice.token);
  expect(stream.response.status).toBe(200);
  // Through the instance holding the stream: without Redis, pub/sub is in-process and only that instance hears
  // it (a log-out through another instance ending the stream is subscriptions.redis.test.ts).
  const out = await instance.query(`mutation { logOut { __typename } }`, {}, alice.token);
  expect(out.errors).toBeUndefined();
  // It ends by itself: untilEnd resolves (a stream that outlived the session would hold the test until its timeout).
  expect(await stream.untilEnd()).not.toContain("notificationAdded");
});

test("a stream ends when the token that opened it expires", async ({ alice }) => {
  const { sid } = decodeJwt(alice.token);
  const key = await importPKCS8(process.env.JWT_PRIVATE_KEY as string, "ES256");
  const shortLived = await new SignJWT({ sid })
    .setProtectedHeader({ alg: "ES256" })
    .setSubject(alice.id)
    .setIssuer("shutter")
    .setAudience("shutter-api")
    .setExpirationTime(Math.floor(Date.now() / 1000) + 2)
    .sign(key);
  const stream = await openStream(instance, shortLived);
  expect(stream.response.status).toBe(200);
  expect(await stream.untilEnd()).not.toContain("notificationAdded");
});
