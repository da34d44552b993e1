// The bundled function behind the local API Gateway emulator: cold and warm starts, reaping, timeouts, payload
// limits, and surviving a freeze (the platform pauses an idle instance; meanwhile the database and Redis close
// its connections).
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startGateway } from "../../scripts/gateway.ts";
import { bundleDir } from "../kit/bundle.ts";
import { createPost, createUser } from "../kit/helpers.ts";
import { startProxy } from "../kit/tcp-proxy.ts";

let bundle: string;
const QUERY = JSON.stringify({ query: "{ explore(first: 3) { edges { node { id caption } } } }" });

beforeAll(() => {
  bundle = `${bundleDir()}/graphql.mjs`;
}, 120_000);

type Gateway = Awaited<ReturnType<typeof startGateway>>;
const lines: string[] = [];
const start = (options: Partial<Parameters<typeof startGateway>[0]> = {}) =>
  startGateway({
    module: bundle,
    env: { ...process.env, LOG_LEVEL: "silent" },
    log: (line) => lines.push(line),
    ...options,
  });
const post = (gateway: Gateway, body = QUERY, headers: Record<string, string> = {}) =>
  fetch(`${gateway.url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });

describe("instances", () => {
  let gateway: Gateway;
  beforeAll(async () => {
    gateway = await start({ maxInstances: 3, idleTimeoutMs: 1_500 });
  });
  afterAll(() => gateway.close());

  test("the first request starts an instance (cold), the next reuses it (warm)", async () => {
    const alice = await createUser();
    await createPost(alice, { caption: "through the gateway" });
    const first = await post(gateway);
    expect(first.status).toBe(200);
    expect((await first.json()).data.explore.edges[0].node.caption).toBe("through the gateway");
    expect((await post(gateway)).status).toBe(200);
    const [cold, warm] = gateway.invocations.slice(-2);
    expect(cold).toMatchObject({ cold: true, instance: warm?.instance });
    expect(cold?.initMs).toBeGreaterThan(0);
    expect(warm?.cold).toBe(false);
    const reports = lines.filter((l) => l.startsWith("REPORT"));
    expect(reports.at(-2)).toMatch(
      /Duration: [\d.]+ ms\tBilled Duration: \d+ ms\tMemory Size: 1024 MB\tMax Memory Used: \d+ MB\tInit Duration: [\d.]+ ms$/,
    );
    expect(reports.at(-1)).not.toContain("Init Duration");
  });

  test("concurrent requests get their own instances, at most maxInstances", async () => {
    const responses = await Promise.all(Array.from({ length: 6 }, () => post(gateway)));
    expect(responses.every((r) => r.status === 200)).toBe(true);
    const used = new Set(gateway.invocations.slice(-6).map((i) => i.instance));
    expect(used.size).toBeGreaterThan(1);
    expect(used.size).toBeLessThanOrEqual(3);
    expect(gateway.instancePids().length).toBeLessThanOrEqual(3);
  });

  test("idle instances are reaped; the next request is cold again", async () => {
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    expect(gateway.instancePids()).toEqual([]);
    expect(lines.some((l) => l.includes("reaped (idle)"))).toBe(true);
    await post(gateway);
    expect(gateway.invocations.at(-1)?.cold).toBe(true);
  });
});

test("an invocation over the timeout is answered 504 and its instance discarded", async () => {
  const gateway = await start({ timeoutMs: 1 });
  try {
    const response = await post(gateway);
    expect(response.status).toBe(504);
    expect(await response.json()).toEqual({ message: "Endpoint request timed out" });
    expect(lines.some((l) => /Task timed out after 0\.00 seconds/.test(l))).toBe(true);
    expect(gateway.instancePids()).toEqual([]);
  } finally {
    await gateway.close();
  }
});

test("requests over the gateway's payload limit are refused", async () => {
  const gateway = await start();
  try {
    const response = await post(gateway, JSON.stringify({ query: `{ __typename } #${"x".repeat(11 * 1024 * 1024)}` }));
    expect(response.status).toBe(413);
    expect(gateway.invocations).toEqual([]);
  } finally {
    await gateway.close();
  }
});

// Uncached reads (a search) and cached ones: both PostgreSQL and Redis are needed after the thaw.
const THAW_QUERY = JSON.stringify({
  query: `{ searchUsers(prefix: "user_", first: 3) { edges { node { handle } } } explore(first: 3) { edges { node { id } } } }`,
});

describe("freeze and thaw", () => {
  test("after its connections were closed while it was frozen, the next invocation succeeds", async () => {
    // The instance reaches PostgreSQL (and Redis) through proxies, which close its connections from the server's
    // side on demand: what an idle timeout (idle_session_timeout, a proxy's, Redis `timeout`) does to a frozen
    // instance.
    const database = await startProxy(process.env.DATABASE_URL as string);
    const redis = process.env.REDIS_URL ? await startProxy(process.env.REDIS_URL) : undefined;
    const gateway = await start({
      maxInstances: 1,
      env: {
        ...process.env,
        LOG_LEVEL: "silent",
        DATABASE_URL: database.url,
        ...(redis ? { REDIS_URL: redis.url } : {}),
      },
    });
    try {
      const alice = await createUser();
      const token = { authorization: `Bearer ${alice.token}` };
      expect((await post(gateway, THAW_QUERY, token)).status).toBe(200); // warm, with open connections
      const [pid] = gateway.instancePids();
      process.kill(pid as number, "SIGSTOP");
      expect(database.dropAll()).toBeGreaterThan(0);
      if (redis) expect(redis.dropAll()).toBeGreaterThan(0);
      // The next invocation is already waiting when the instance thaws, as on the platform.
      const first = post(gateway, THAW_QUERY, token);
      await new Promise((resolve) => setTimeout(resolve, 100));
      process.kill(pid as number, "SIGCONT");
      for (let i = 0; i < 3; i++) {
        const response = await (i === 0 ? first : post(gateway, THAW_QUERY, token));
        const body = await response.json();
        expect(response.status, JSON.stringify(body)).toBe(200);
        expect(body.errors).toBeUndefined();
        expect(body.extensions.sqlStatements).toBeGreaterThan(0);
      }
      expect(gateway.invocations.every((i) => i.instance === gateway.invocations[0]?.instance)).toBe(true);
    } finally {
      await gateway.close();
      await Promise.all([database.close(), redis?.close()]);
    }
  });
});
