import { execFileSync } from "node:child_process";
import { SignJWT } from "jose";
import { describe, expect } from "vitest";
import { hashPassword, verifyPassword } from "../../src/domain/auth.ts";
import { db } from "../../src/platform/db.ts";
import { gql, ok, PASSWORD, rowCounts, test } from "../kit/helpers.ts";
import { startInstance } from "../kit/instances.ts";

const SIGN_UP = `mutation ($input: SignUpInput!) {
  signUp(input: $input) {
    __typename
    ... on SignUpSuccess { session { accessToken refreshToken accessTokenExpiresAt user { handle displayName } } }
    ... on ValidationError { code message fieldErrors { path message } }
    ... on Error { code message }
  }
}`;

const LOG_IN = `mutation ($input: LogInInput!) {
  logIn(input: $input) {
    __typename
    ... on LogInSuccess { session { accessToken refreshToken user { handle } } }
    ... on Error { code message }
  }
}`;

const REFRESH = `mutation ($input: RefreshSessionInput!) {
  refreshSession(input: $input) {
    __typename
    ... on RefreshSessionSuccess { session { accessToken refreshToken } }
    ... on Error { code message }
  }
}`;

const VIEWER = `{ viewer { email user { handle } } }`;

describe("signUp", () => {
  test("creates an account, normalizes handle and email, and signs it in", async () => {
    const data = await ok(SIGN_UP, {
      input: {
        handle: "@New_Person",
        displayName: "  New Person ",
        email: " New@Example.COM ",
        password: "long enough pw",
      },
    });
    expect(data.signUp.__typename).toBe("SignUpSuccess");
    expect(data.signUp.session.user).toEqual({ handle: "new_person", displayName: "New Person" });
    expect(new Date(data.signUp.session.accessTokenExpiresAt).getTime()).toBeGreaterThan(Date.now());
    const stored = await db().user.findUniqueOrThrow({ where: { handle: "new_person" } });
    expect(stored.email).toBe("new@example.com");
    expect(stored.passwordHash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    const viewer = await ok(VIEWER, {}, { token: data.signUp.session.accessToken });
    expect(viewer.viewer).toEqual({ email: "new@example.com", user: { handle: "new_person" } });
  });

  test.each([
    [{ handle: "ab" }, ["input", "handle"], "A handle is 3 to 30 characters"],
    [{ handle: "no spaces!" }, ["input", "handle"], "letters, digits, underscores and dots"],
    [{ email: "not-an-email" }, ["input", "email"], "doesn't look like an email"],
    [{ password: "short" }, ["input", "password"], "at least 8 characters"],
    [{ displayName: "   " }, ["input", "displayName"], "can't be empty"],
  ])("rejects %o with a message to act on, creating nothing", async (override, path, message) => {
    const before = await rowCounts();
    const input = {
      handle: "valid_handle",
      displayName: "Valid",
      email: "valid@example.com",
      password: "long enough pw",
      ...override,
    };
    const data = await ok(SIGN_UP, { input });
    expect(data.signUp.__typename).toBe("ValidationError");
    expect(data.signUp.code).toBe("BAD_USER_INPUT");
    expect(data.signUp.message).toContain(message);
    expect(data.signUp.fieldErrors[0].path).toEqual(path);
    expect(await rowCounts()).toEqual(before);
  });

  test("a taken handle or email is a conflict", async ({ alice }) => {
    const before = await rowCounts();
    const byHandle = await ok(SIGN_UP, {
      input: {
        handle: alice.handle.toUpperCase(),
        displayName: "X",
        email: "other@example.com",
        password: "long enough pw",
      },
    });
    expect(byHandle.signUp).toMatchObject({ __typename: "ConflictError", code: "CONFLICT" });
    expect(byHandle.signUp.message).toContain(`@${alice.handle} is taken`);
    const byEmail = await ok(SIGN_UP, {
      input: { handle: "fresh_handle", displayName: "X", email: alice.email.toUpperCase(), password: "long enough pw" },
    });
    expect(byEmail.signUp).toMatchObject({ __typename: "ConflictError", code: "CONFLICT" });
    expect(await rowCounts()).toEqual(before);
  });
});

describe("logIn", () => {
  test("by handle or by email", async ({ alice }) => {
    for (const login of [alice.handle, `@${alice.handle.toUpperCase()}`, alice.email.toUpperCase()]) {
      const data = await ok(LOG_IN, { input: { login, password: PASSWORD } });
      expect(data.logIn.__typename).toBe("LogInSuccess");
      expect(data.logIn.session.user.handle).toBe(alice.handle);
    }
  });

  test("a wrong password and an unknown account get the same answer", async ({ alice }) => {
    const before = await rowCounts();
    const wrong = await ok(LOG_IN, { input: { login: alice.handle, password: "not the password" } });
    const unknown = await ok(LOG_IN, { input: { login: "nobody_here", password: PASSWORD } });
    for (const result of [wrong.logIn, unknown.logIn]) {
      expect(result).toEqual({
        __typename: "InvalidCredentialsError",
        code: "INVALID_CREDENTIALS",
        message: "Wrong handle, email or password.",
      });
    }
    expect(await rowCounts()).toEqual(before);
  });
});

describe("access tokens", () => {
  test("no token: signed out, viewer is null", async () => {
    expect((await ok(VIEWER)).viewer).toBeNull();
  });

  test("a malformed, forged or foreign token is refused with 401", async ({ alice }) => {
    const [header, payload] = alice.token.split(".");
    const otherKey = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
      "sign",
    ])) as CryptoKeyPair;
    const wrongKey = await new SignJWT({ sid: "x" })
      .setProtectedHeader({ alg: "ES256" })
      .setSubject(alice.id)
      .setIssuer("shutter")
      .setAudience("shutter-api")
      .setExpirationTime("5m")
      .sign(otherKey.privateKey);
    const none = `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${payload}.`;
    for (const token of ["garbage", `${header}.${payload}.AAAA`, wrongKey, none]) {
      const result = await gql(VIEWER, {}, { token });
      expect(result.status).toBe(401);
      expect(result.headers.get("www-authenticate")).toContain("Bearer");
      expect(result.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
      expect(result.errors?.[0]?.message).toBe("Your session token is not valid.");
      expect(result.data ?? null).toBeNull();
    }
    const basic = await gql(VIEWER, {}, { headers: { authorization: "Basic abc" } });
    expect(basic.status).toBe(401);
  });

  test("an expired token says so", async ({ alice }) => {
    const pem = process.env.JWT_PRIVATE_KEY as string;
    const { importPKCS8 } = await import("jose");
    const key = await importPKCS8(pem, "ES256");
    const expired = await new SignJWT({ sid: "s" })
      .setProtectedHeader({ alg: "ES256" })
      .setSubject(alice.id)
      .setIssuer("shutter")
      .setAudience("shutter-api")
      .setIssuedAt(Math.floor(Date.now() / 1000) - 3600)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(key);
    const result = await gql(VIEWER, {}, { token: expired });
    expect(result.status).toBe(401);
    expect(result.errors?.[0]?.message).toContain("expired");
  });
});

describe("refresh tokens", () => {
  test("rotate on every use", async ({ alice }) => {
    const first = await ok(REFRESH, { input: { refreshToken: alice.refreshToken } });
    expect(first.refreshSession.__typename).toBe("RefreshSessionSuccess");
    const next = first.refreshSession.session;
    expect(next.refreshToken).not.toBe(alice.refreshToken);
    expect((await ok(VIEWER, {}, { token: next.accessToken })).viewer.user.handle).toBe(alice.handle);
    const second = await ok(REFRESH, { input: { refreshToken: next.refreshToken } });
    expect(second.refreshSession.__typename).toBe("RefreshSessionSuccess");
  });

  test("reusing a spent token revokes the whole session family", async ({ alice }) => {
    const rotated = await ok(REFRESH, { input: { refreshToken: alice.refreshToken } });
    const stolenReplay = await ok(REFRESH, { input: { refreshToken: alice.refreshToken } });
    expect(stolenReplay.refreshSession).toMatchObject({ __typename: "UnauthenticatedError", code: "UNAUTHENTICATED" });
    // The legitimate holder's newer token is dead too: the family is revoked.
    const legit = await ok(REFRESH, { input: { refreshToken: rotated.refreshSession.session.refreshToken } });
    expect(legit.refreshSession.__typename).toBe("UnauthenticatedError");
    const sessions = await db().session.findMany({ where: { userId: alice.id } });
    expect(sessions).toHaveLength(1);
    expect(sessions[0]?.revokedAt).toBeInstanceOf(Date);
  });

  test("an unknown token is refused", async () => {
    const data = await ok(REFRESH, { input: { refreshToken: "made-up" } });
    expect(data.refreshSession).toMatchObject({ __typename: "UnauthenticatedError", code: "UNAUTHENTICATED" });
  });

  test("logOut ends the session: its refresh token stops working", async ({ alice }) => {
    const out = await ok(
      `mutation { logOut { __typename ... on LogOutSuccess { loggedOut } } }`,
      {},
      { token: alice.token },
    );
    expect(out.logOut).toEqual({ __typename: "LogOutSuccess", loggedOut: true });
    const data = await ok(REFRESH, { input: { refreshToken: alice.refreshToken } });
    expect(data.refreshSession.__typename).toBe("UnauthenticatedError");
  });
});

test("`npm run keys:generate` makes a key an instance starts with, and whose tokens it accepts", async () => {
  const root = new URL("../..", import.meta.url).pathname;
  const settings = JSON.parse(
    execFileSync(process.execPath, ["scripts/generate-key.ts"], { cwd: root, encoding: "utf8" }),
  );
  expect(Object.keys(settings)).toEqual(["JWT_PRIVATE_KEY"]);
  const instance = await startInstance({ JWT_PRIVATE_KEY: settings.JWT_PRIVATE_KEY });
  try {
    const signUp = await instance.query(SIGN_UP, {
      input: { handle: "keyed_kim", email: "kim@keyed.test", password: PASSWORD, displayName: "Kim" },
    });
    const token = signUp.data.signUp.session.accessToken;
    expect((await instance.query(`{ viewer { user { handle } } }`, {}, token)).data.viewer.user.handle).toBe(
      "keyed_kim",
    );
    // Signed by the new key, not the test run's: the other instance refuses it.
    expect((await gql(`{ viewer { user { handle } } }`, {}, { token })).errors?.[0]?.extensions?.code).toBe(
      "UNAUTHENTICATED",
    );
  } finally {
    await instance.close();
  }
});

describe("passwords", () => {
  test("are hashed off the event loop: the process keeps serving while a burst of hashes runs", async () => {
    // Counted, not timed: turns of the event loop completed while eight hashes run. Hashing on the loop (as the
    // WebAssembly argon2 before it did) blocks every turn until a hash is done: a handful of turns in all.
    let done = false;
    const hashing = Promise.all(Array.from({ length: 8 }, (_, i) => hashPassword(`password ${i}`))).then(() => {
      done = true;
    });
    let turns = 0;
    while (!done) {
      await new Promise((resolve) => setImmediate(resolve));
      turns++;
    }
    await hashing;
    expect(turns).toBeGreaterThan(100);
  });

  test("hashes written before (argon2id PHC strings of the WebAssembly implementation) still verify", async () => {
    const earlier = "$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$69I7qCjDTsQwhQqFvpQJiqEI0lGQvxC84fXE0Ktxca4";
    expect(await verifyPassword("correct horse battery", earlier)).toBe(true);
    expect(await verifyPassword("correct horse battery!", earlier)).toBe(false);
    const fresh = await hashPassword("correct horse battery");
    expect(fresh).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(await verifyPassword("correct horse battery", fresh)).toBe(true);
    expect(await verifyPassword("anything", "not a hash")).toBe(false);
  });
});
