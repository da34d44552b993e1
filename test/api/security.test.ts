// Secure-by-default behaviour that depends on configuration: each scenario runs in its own function instance.
import { createServer, type Server } from "node:http";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { db } from "../../src/platform/db.ts";
import { createUser, PASSWORD, test } from "../kit/helpers.ts";
import { type Instance, operationBody, type RequestOptions, startInstance } from "../kit/instances.ts";

const FEED = `{ feed(first: 10) { edges { node { id } } } }`;
const LOG_IN = `mutation ($login: String!, $password: String!) {
  logIn(input: { login: $login, password: $password }) {
    __typename ... on LogInSuccess { session { accessToken } } ... on RateLimitedError { code retryAfterSeconds message } ... on Error { code }
  }
}`;

/**
 * A raw request to an instance, its answer read to the end as a client does before asking again (a streaming
 * Lambda invocation holds its instance until then: asked sooner, the next request finds another instance).
 */
async function raw(instance: Instance, init: RequestOptions & { url?: string } = {}) {
  const response = await instance.fetch(init.url ?? "/graphql", init);
  const body = await response.arrayBuffer();
  // (A 204 or 304 has no body to give the copy.)
  return new Response(body.byteLength ? body : null, { status: response.status, headers: response.headers });
}

describe("rate limiting", () => {
  let instance: Instance;
  beforeAll(async () => {
    instance = await startInstance({
      RATE_LIMIT_POINTS: "100",
      RATE_LIMIT_ANONYMOUS_POINTS: "60",
      RATE_LIMIT_WINDOW_SECONDS: "60",
    });
  });
  afterAll(() => instance.close());

  test("a viewer's operations are charged by cost; over budget gets 429 with Retry-After", async ({ alice }) => {
    // feed(first: 10) { edges { node { id } } } costs 1 + 10 × (edges 1 + node 1 + id 1) = 31 points:
    // three fit in a budget of 100.
    const results = [];
    for (let i = 0; i < 4; i++) {
      results.push(
        await raw(instance, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${alice.token}` },
          body: JSON.stringify(operationBody(FEED)),
        }),
      );
    }
    expect(results.slice(0, 3).map((r) => r.status)).toEqual([200, 200, 200]);
    // Every answer says what it cost and what is left, in its extensions and in the IETF headers.
    const reports = await Promise.all(results.slice(0, 3).map(async (r) => (await r.clone().json()).extensions.cost));
    expect(reports.map((cost) => [cost.requestedQueryCost, cost.throttleStatus.currentlyAvailable])).toEqual([
      [31, 69],
      [31, 38],
      [31, 7],
    ]);
    expect(reports[0].throttleStatus).toMatchObject({ maximumAvailable: 100, windowSeconds: 60 });
    expect(reports[0].throttleStatus.resetSeconds).toBeGreaterThan(0);
    expect(results[2]?.headers.get("ratelimit-policy")).toBe('"points";q=100;w=60');
    expect(results[2]?.headers.get("ratelimit")).toMatch(/^"points";r=7;t=\d+$/);
    const limited = results[3] as Response;
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    const body = await limited.json();
    expect(body.errors[0].extensions).toMatchObject({ code: "RATE_LIMITED", retryAfterSeconds: expect.any(Number) });
    expect(body.errors[0].message).toMatch(/Too many requests\. Try again in \d+ seconds?\./);
    expect(body.data).toBeUndefined();
    // Another viewer has their own budget.
    const other = await createUser();
    expect((await instance.query(FEED, {}, other.token)).errors).toBeUndefined();
  });

  test("signed out, the budget is the client address's", async () => {
    const explore = `{ explore(first: 10) { edges { node { id } } } }`; // 31 points: one fits in 60
    const event = (ip: string) => ({ "x-forwarded-for": ip });
    const ask = (ip: string) =>
      raw(instance, {
        method: "POST",
        headers: { "content-type": "application/json", ...event(ip) },
        body: JSON.stringify(operationBody(explore)),
      });
    // With no trusted proxy (the default) a forwarded address is the client's claim: all of these share one budget.
    const statuses = [];
    for (const ip of ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]) statuses.push((await ask(ip)).status);
    expect(statuses).toEqual([200, 429, 429, 429]);
  });
});

describe("login throttling", () => {
  let instance: Instance;
  beforeAll(async () => {
    instance = await startInstance({
      LOGIN_MAX_FAILURES_PER_ACCOUNT: "3",
      LOGIN_MAX_FAILURES_PER_ADDRESS: "5",
      LOGIN_MAX_FAILURES_PER_ACCOUNT_FROM_NEW_ADDRESSES: "4",
    });
  });
  afterAll(() => instance.close());

  /** A login attempt from a client at this (loopback) address. */
  const attempt = async (login: string, password: string, ip: string) => {
    const response = await raw(instance, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(operationBody(LOG_IN, { login, password })),
      from: ip,
    });
    return (await response.json()).data.logIn;
  };

  test("a guesser is throttled on the account, by handle and email alike, and cannot lock its owner out", async () => {
    const victim = await createUser();
    // The owner has signed in from their address before.
    expect((await attempt(victim.handle, PASSWORD, "127.1.0.1")).__typename).toBe("LogInSuccess");
    // A guesser elsewhere: three tries on the handle, then its address is throttled for this account...
    for (let i = 0; i < 3; i++) {
      expect((await attempt(victim.handle, "wrong password", "127.1.0.66")).code).toBe("INVALID_CREDENTIALS");
    }
    const throttled = await attempt(victim.handle, PASSWORD, "127.1.0.66");
    expect(throttled).toMatchObject({ __typename: "RateLimitedError", code: "RATE_LIMITED" });
    expect(throttled.retryAfterSeconds).toBeGreaterThan(800);
    expect(throttled.message).toContain("Too many failed sign-in attempts");
    // ...and the email is the same account, not a fresh count.
    expect((await attempt(victim.email, "wrong password", "127.1.0.66")).code).toBe("RATE_LIMITED");
    expect(await db().session.count({ where: { userId: victim.id } })).toBe(2); // the fixture's, the owner's
    // The owner, at their address, is not locked out.
    expect((await attempt(victim.handle, PASSWORD, "127.1.0.1")).__typename).toBe("LogInSuccess");
  });

  test("many guessers on one account: new addresses are refused, the owner's known one is not", async () => {
    const victim = await createUser();
    expect((await attempt(victim.email, PASSWORD, "127.3.0.1")).__typename).toBe("LogInSuccess");
    for (let i = 10; i < 14; i++) {
      expect((await attempt(victim.handle, "wrong password", `127.3.0.${i}`)).code).toBe("INVALID_CREDENTIALS");
    }
    // Four failures from addresses it never signed in from: the account is guarded against new addresses...
    expect((await attempt(victim.handle, PASSWORD, "127.3.0.20")).code).toBe("RATE_LIMITED");
    // ...not against its owner's.
    expect((await attempt(victim.handle, PASSWORD, "127.3.0.1")).__typename).toBe("LogInSuccess");
  });

  test("concurrent guesses cannot exceed the limit: each takes its place before the password is checked", async () => {
    const victim = await createUser();
    const results = await Promise.all(
      Array.from({ length: 12 }, () => attempt(victim.handle, "wrong password", "127.4.0.1")),
    );
    const codes = results.map((r) => r.code).sort();
    expect(codes).toEqual([...Array(3).fill("INVALID_CREDENTIALS"), ...Array(9).fill("RATE_LIMITED")]);
  });

  test("an address is throttled after failures across many accounts; success resets an account", async () => {
    const users = await Promise.all(Array.from({ length: 6 }, () => createUser()));
    expect((await attempt(users[0]!.handle, "nope nope", "127.2.0.1")).code).toBe("INVALID_CREDENTIALS");
    expect((await attempt(users[0]!.handle, PASSWORD, "127.2.0.1")).__typename).toBe("LogInSuccess");
    for (const user of users.slice(1, 5))
      expect((await attempt(user.handle, "nope nope", "127.2.0.1")).code).toBe("INVALID_CREDENTIALS");
    const blocked = await attempt(users[5]!.handle, PASSWORD, "127.2.0.1");
    expect(blocked.code).toBe("RATE_LIMITED");
    expect((await attempt(users[5]!.handle, PASSWORD, "127.2.0.2")).__typename).toBe("LogInSuccess");
  });
});

describe("sign-up throttling", () => {
  let instance: Instance;
  beforeAll(async () => {
    instance = await startInstance({ SIGNUP_MAX_PER_ADDRESS: "2" });
  });
  afterAll(() => instance.close());

  const signUp = async (handle: string, email: string, ip: string) => {
    const response = await raw(instance, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(
        operationBody(
          `mutation ($input: SignUpInput!) { signUp(input: $input) { __typename ... on Error { code } } }`,
          { input: { handle, email, displayName: "New", password: PASSWORD } },
        ),
      ),
      from: ip,
    });
    return (await response.json()).data.signUp;
  };

  test("every attempt counts, taken emails included: probing for accounts costs what creating them does", async () => {
    const known = await createUser();
    expect((await signUp("signup_one", "one@example.com", "127.5.0.1")).__typename).toBe("SignUpSuccess");
    expect((await signUp("signup_two", known.email, "127.5.0.1")).code).toBe("CONFLICT");
    expect((await signUp("signup_three", "three@example.com", "127.5.0.1")).code).toBe("RATE_LIMITED");
    expect(await db().user.count({ where: { handle: "signup_three" } })).toBe(0);
    expect((await signUp("signup_three", "three@example.com", "127.5.0.2")).__typename).toBe("SignUpSuccess");
  });
});

describe("who the client is (TRUSTED_PROXIES)", () => {
  const explore = operationBody(`{ explore(first: 10) { edges { node { id } } } }`); // 31 points
  const ask = (instance: Instance, forwardedFor: string) =>
    raw(instance, {
      method: "POST",
      headers: { "content-type": "application/json", "x-forwarded-for": forwardedFor },
      body: JSON.stringify(explore),
      from: "127.6.0.1",
    }).then((response) => response.status);

  test("one trusted proxy: the address it appended, whatever the client wrote before it", async () => {
    const instance = await startInstance({ TRUSTED_PROXIES: "1", RATE_LIMIT_ANONYMOUS_POINTS: "60" });
    // The client writes anything it likes on the left; the proxy appends who connected to it.
    expect(await ask(instance, "1.1.1.1, 203.0.113.1")).toBe(200);
    expect(await ask(instance, "2.2.2.2, 203.0.113.1")).toBe(429);
    expect(await ask(instance, "1.1.1.1, 203.0.113.2")).toBe(200);
    await instance.close();
  });

  test("trusted ranges: the right-most address outside them, however many proxies there are", async () => {
    const instance = await startInstance({
      TRUSTED_PROXIES: "loopback,10.0.0.0/8",
      RATE_LIMIT_ANONYMOUS_POINTS: "60",
    });
    expect(await ask(instance, "9.9.9.9, 198.51.100.7, 10.1.2.3")).toBe(200);
    // One proxy fewer in the path (Knative's activator only while scaling), the same client.
    expect(await ask(instance, "8.8.8.8, 198.51.100.7")).toBe(429);
    expect(await ask(instance, "198.51.100.8, 10.9.9.9")).toBe(200);
    await instance.close();
  });
});

describe("IPv6 clients (RATE_LIMIT_IPV6_PREFIX)", () => {
  // Each request says, through one trusted proxy, which IPv6 address it comes from.
  const from = (instance: Instance, address: string, body: unknown) =>
    raw(instance, {
      method: "POST",
      headers: { "content-type": "application/json", "x-forwarded-for": address },
      body: JSON.stringify(body),
      from: "127.6.0.2",
    });

  test("one /64 is one client: a new host part buys no new budget, another network has its own", async () => {
    const instance = await startInstance({ TRUSTED_PROXIES: "1", RATE_LIMIT_ANONYMOUS_POINTS: "60" });
    const explore = operationBody(`{ explore(first: 10) { edges { node { id } } } }`); // 31 points
    const status = async (address: string) => (await from(instance, address, explore)).status;
    expect(await status("2001:db8:aa:1::1")).toBe(200);
    expect(await status("2001:db8:aa:1:8f3e:12ff:fe00:77")).toBe(429);
    expect(await status("2001:0db8:00aa:0001::ffff")).toBe(429);
    expect(await status("2001:db8:aa:2::1")).toBe(200);
    // An IPv4 client seen through IPv6 (mapped, or through NAT64) is that IPv4 client, alone.
    expect(await status("::ffff:198.51.100.20")).toBe(200);
    expect(await status("198.51.100.20")).toBe(429);
    expect(await status("64:ff9b::198.51.100.21")).toBe(200);
    expect(await status("64:ff9b::198.51.100.22")).toBe(200);
    await instance.close();
  });

  test("sign-ups and failed sign-ins are counted per /64 too; a wider prefix can be set", async () => {
    const instance = await startInstance({
      TRUSTED_PROXIES: "1",
      SIGNUP_MAX_PER_ADDRESS: "2",
      LOGIN_MAX_FAILURES_PER_ADDRESS: "2",
      RATE_LIMIT_IPV6_PREFIX: "56",
    });
    const signUp = (address: string, n: number) =>
      from(instance, address, {
        query: `mutation ($input: SignUpInput!) { signUp(input: $input) { __typename ... on Error { code } } }`,
        variables: {
          input: {
            handle: `v6_${n}_${Math.random().toString(36).slice(2, 7)}`,
            displayName: "V6",
            email: `v6.${n}.${Math.random().toString(36).slice(2, 7)}@example.com`,
            password: PASSWORD,
          },
        },
      }).then(async (response) => (await response.json()).data.signUp.code ?? "ok");
    // Three hosts of one /56 (two of its /64s): one subscriber.
    expect(await signUp("2001:db8:bb:100::1", 1)).toBe("ok");
    expect(await signUp("2001:db8:bb:1ff::2", 2)).toBe("ok");
    expect(await signUp("2001:db8:bb:1ab::3", 3)).toBe("RATE_LIMITED");
    expect(await signUp("2001:db8:bb:200::1", 4)).toBe("ok");
    const victims = await Promise.all([createUser(), createUser(), createUser()]);
    const guess = (address: string, handle: string) =>
      from(instance, address, operationBody(LOG_IN, { login: handle, password: "wrong password" })).then(
        async (response) => (await response.json()).data.logIn.code,
      );
    expect(await guess("2001:db8:cc:1::1", victims[0]!.handle)).toBe("INVALID_CREDENTIALS");
    expect(await guess("2001:db8:cc:2::1", victims[1]!.handle)).toBe("INVALID_CREDENTIALS");
    expect(await guess("2001:db8:cc:3::1", victims[2]!.handle)).toBe("RATE_LIMITED");
    await instance.close();
  });
});

describe("in production", () => {
  let instance: Instance;
  beforeAll(async () => {
    // Ad-hoc operations are needed to probe these: production defaults to "apq" (see persisted.test.ts).
    instance = await startInstance({
      NODE_ENV: "production",
      CORS_ORIGINS: "https://app.example.com",
      PERSISTED_QUERIES: "open",
    });
  });
  afterAll(() => instance.close());

  test("introspection, GraphiQL, field suggestions and dev extensions are off", async () => {
    const introspection = await instance.query(`{ __schema { types { name } } }`);
    expect(introspection.errors?.[0]?.message).toMatch(/introspection/i);
    expect(introspection.data).toBeUndefined();
    const typo = await instance.query(`{ exploer(first: 1) { edges { cursor } } }`);
    expect(typo.errors?.[0]?.message).not.toMatch(/Did you mean/);
    const ok = await instance.query(`{ explore(first: 1) { edges { cursor } } }`);
    // Only what the client is meant to see: the answer's cost (no statement counts, no request id).
    expect(Object.keys(ok.extensions ?? {})).toEqual(["cost"]);
    const graphiql = await raw(instance, { headers: { accept: "text/html" } });
    expect(graphiql.headers.get("content-type") ?? "").not.toContain("text/html");
    const sdl = await raw(instance, { url: "http://shutter.test/schema.graphql" });
    expect(sdl.status).toBe(404);
    const jwks = await raw(instance, { url: "http://shutter.test/.well-known/jwks.json" });
    expect((await jwks.json()).keys).toHaveLength(1);
  });

  test("CORS allows the configured origin only", async () => {
    const preflight = (origin: string) =>
      raw(instance, {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
      });
    expect((await preflight("https://app.example.com")).headers.get("access-control-allow-origin")).toBe(
      "https://app.example.com",
    );
    // Browsers compare the answer with their own origin: anything but "*" or that origin is a refusal.
    const refused = (await preflight("https://evil.example")).headers.get("access-control-allow-origin");
    expect([null, "https://app.example.com"]).toContain(refused);
  });

  test("configuration is validated at start", async () => {
    await expect(
      startInstance({ NODE_ENV: "production", JWT_PRIVATE_KEY: "", S3_BUCKET: "", MAX_DEPTH: "one" }),
    ).rejects.toThrow(/JWT_PRIVATE_KEY[\s\S]*|MAX_DEPTH: must be a number/);
    await expect(startInstance({ DATABASE_URL: "mysql://nope" })).rejects.toThrow(
      /DATABASE_URL: must start with postgres:\/\/ or postgresql:\/\//,
    );
  });
});

describe("an external OpenID Connect issuer", () => {
  let idp: Server;
  let issuer: string;
  let instance: Instance;
  let keys: Awaited<ReturnType<typeof generateKeyPair>>;
  const sign = (claims: { sub: string; aud?: string; iss?: string }) =>
    new SignJWT({})
      .setProtectedHeader({ alg: "RS256", kid: "idp-1" })
      .setSubject(claims.sub)
      .setIssuer(claims.iss ?? issuer)
      .setAudience(claims.aud ?? "shutter-mobile")
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(keys.privateKey);

  beforeAll(async () => {
    // A real JWKS endpoint (this test's identity provider), as Cognito or Auth0 would publish one.
    keys = await generateKeyPair("RS256");
    const jwk = { ...(await exportJWK(keys.publicKey)), kid: "idp-1", alg: "RS256", use: "sig" };
    idp = createServer((_req, res) => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => idp.listen(0, "127.0.0.1", resolve));
    issuer = `http://127.0.0.1:${(idp.address() as { port: number }).port}`;
    instance = await startInstance({
      OIDC_ISSUER: issuer,
      OIDC_AUDIENCE: "shutter-mobile",
      OIDC_JWKS_URI: `${issuer}/jwks`,
    });
  });
  afterAll(async () => {
    await instance.close();
    idp.close();
  });

  test("its tokens are accepted: an unknown identity signs up once, then is that account", async () => {
    const token = await sign({ sub: "idp|12345" });
    expect((await instance.query(`{ viewer { user { handle } } }`, {}, token)).data.viewer).toBeNull();
    const signUp = await instance.query(
      `mutation { signUp(input: { handle: "from_idp", displayName: "Idp", email: "idp@example.com" }) { __typename } }`,
      {},
      token,
    );
    expect(signUp.data.signUp.__typename).toBe("SignUpSuccess");
    expect((await instance.query(`{ viewer { user { handle } } }`, {}, token)).data.viewer.user.handle).toBe(
      "from_idp",
    );
    const user = await db().user.findUniqueOrThrow({ where: { handle: "from_idp" }, include: { identities: true } });
    expect(user.passwordHash).toBeNull();
    expect(user.identities).toMatchObject([{ issuer, subject: "idp|12345" }]);
    // No password: logging in with one is refused like any wrong password.
    const login = await instance.query(LOG_IN, { login: "from_idp", password: "anything at all" });
    expect(login.data.logIn.code).toBe("INVALID_CREDENTIALS");
  });

  test("tokens for another audience, from another issuer or signed with another key are refused", async () => {
    const otherKey = await generateKeyPair("RS256");
    const forged = await new SignJWT({})
      .setProtectedHeader({ alg: "RS256", kid: "idp-1" })
      .setSubject("x")
      .setIssuer(issuer)
      .setAudience("shutter-mobile")
      .setExpirationTime("5m")
      .sign(otherKey.privateKey);
    for (const token of [
      await sign({ sub: "x", aud: "someone-else" }),
      await sign({ sub: "x", iss: "https://other.example" }),
      forged,
    ]) {
      const result = await raw(instance, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify(operationBody("{ viewer { email } }")),
      });
      expect(result.status).toBe(401);
    }
  });
});
