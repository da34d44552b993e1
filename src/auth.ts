import { createHash, randomBytes, randomUUID } from "node:crypto";
import {
  calculateJwkThumbprint,
  createRemoteJWKSet,
  decodeJwt,
  exportJWK,
  generateKeyPair,
  importPKCS8,
  type JWK,
  jwtVerify,
  type KeyObject,
  SignJWT,
} from "jose";
import { config } from "./config.ts";
import { db } from "./db.ts";
import { UnauthenticatedError } from "./errors.ts";
import { type CachedEntity, loadThroughCache } from "./loaders/cached.ts";
import { logger } from "./logger.ts";

// Passwords: argon2id with OWASP's minimum memory-hard parameters (19 MiB, 2 passes). hash-wasm runs it in
// WebAssembly: no native addon to build per platform, same code on Lambda arm64 and a laptop. Loaded on first
// use: only sign-up, log-in and password changes need it, not the cold start of every instance.
const ARGON2 = { parallelism: 1, iterations: 2, memorySize: 19_456, hashLength: 32 } as const;

/** Hashes a password into a self-describing PHC string (parameters and salt included). */
export async function hashPassword(password: string): Promise<string> {
  const { argon2id } = await import("hash-wasm");
  return argon2id({ ...ARGON2, password, salt: randomBytes(16), outputType: "encoded" });
}

export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const { argon2Verify } = await import("hash-wasm");
  return argon2Verify({ password, hash });
}

let dummyHash: Promise<string> | undefined;

/** Spends the same time as a real check, so a login for an unknown account is not faster than a wrong password. */
export async function verifyAgainstDummy(password: string): Promise<void> {
  dummyHash ??= hashPassword(randomUUID());
  await verifyPassword(password, await dummyHash);
}

interface SigningKeys {
  privateKey: CryptoKey | KeyObject;
  publicKey: CryptoKey | KeyObject;
  publicJwk: JWK;
  kid: string;
}

let keys: Promise<SigningKeys> | undefined;

const ALG = "ES256";

async function loadSigningKeys(): Promise<SigningKeys> {
  const pem = config().auth.privateKeyPem;
  let privateKey: CryptoKey | KeyObject;
  if (pem) {
    privateKey = await importPKCS8(pem, ALG, { extractable: true });
  } else {
    ({ privateKey } = await generateKeyPair(ALG, { extractable: true }));
    logger().warn("JWT_PRIVATE_KEY is not set: signing with a key generated for this process only (dev mode)");
  }
  const { d: _private, ...publicJwk } = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const publicKey = await crypto.subtle.importKey("jwk", publicJwk, { name: "ECDSA", namedCurve: "P-256" }, true, [
    "verify",
  ]);
  return { privateKey, publicKey, publicJwk: { ...publicJwk, kid, alg: ALG, use: "sig" }, kid };
}

function signingKeys(): Promise<SigningKeys> {
  keys ??= loadSigningKeys();
  return keys;
}

/** The public keys, as a JSON Web Key Set an API gateway's JWT authorizer can verify tokens with. */
export async function jwks(): Promise<{ keys: JWK[] }> {
  return { keys: [(await signingKeys()).publicJwk] };
}

export interface AccessTokenClaims {
  userId: string;
  sessionId: string;
}

/** A short-lived access token (ES256 JWT): `sub` is the user, `sid` the session it belongs to. */
export async function signAccessToken(claims: AccessTokenClaims): Promise<{ token: string; expiresAt: Date }> {
  const { privateKey, kid } = await signingKeys();
  const { issuer, audience, accessTokenTtlSeconds } = config().auth;
  const expiresAt = new Date(Date.now() + accessTokenTtlSeconds * 1000);
  const token = await new SignJWT({ sid: claims.sessionId })
    .setProtectedHeader({ alg: ALG, kid, typ: "JWT" })
    .setSubject(claims.userId)
    .setIssuer(issuer)
    .setAudience(audience)
    .setIssuedAt()
    .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
    .setJti(randomUUID())
    .sign(privateKey);
  return { token, expiresAt };
}

/** A person as an external OpenID Connect issuer knows them. */
export interface ExternalIdentity {
  issuer: string;
  subject: string;
}

export type TokenClaims =
  | { kind: "shutter"; userId: string; sessionId: string }
  | { kind: "external"; identity: ExternalIdentity };

const invalidToken = (error?: unknown) =>
  new UnauthenticatedError(
    (error as { code?: string } | undefined)?.code === "ERR_JWT_EXPIRED"
      ? "Your session token has expired. Refresh it and try again."
      : "Your session token is not valid.",
  );

/** @throws UnauthenticatedError for any token that is not a valid, unexpired Shutter access token. */
export async function verifyAccessToken(token: string): Promise<AccessTokenClaims> {
  const { publicKey } = await signingKeys();
  const { issuer, audience } = config().auth;
  try {
    const { payload } = await jwtVerify(token, publicKey, { issuer, audience, algorithms: [ALG] });
    if (typeof payload.sub !== "string" || typeof payload.sid !== "string") throw new Error("missing claims");
    return { userId: payload.sub, sessionId: payload.sid };
  } catch (error) {
    throw invalidToken(error);
  }
}

let remoteKeys: ReturnType<typeof createRemoteJWKSet> | undefined;

/**
 * Verifies a bearer token: Shutter's own, or (when OIDC_ISSUER is configured) one of that issuer's, checked
 * against its published keys (fetched and cached by jose), its issuer and the configured audience.
 * @throws UnauthenticatedError
 */
export async function verifyBearerToken(token: string): Promise<TokenClaims> {
  const { oidc } = config().auth;
  let claimedIssuer: unknown;
  try {
    claimedIssuer = decodeJwt(token).iss;
  } catch {
    throw invalidToken();
  }
  if (!oidc || claimedIssuer !== oidc.issuer) {
    const { userId, sessionId } = await verifyAccessToken(token);
    return { kind: "shutter", userId, sessionId };
  }
  remoteKeys ??= createRemoteJWKSet(new URL(oidc.jwksUri), { timeoutDuration: 2_000, cooldownDuration: 30_000 });
  try {
    const { payload } = await jwtVerify(token, remoteKeys, {
      issuer: oidc.issuer,
      audience: oidc.audience,
      algorithms: ["RS256", "ES256", "PS256", "EdDSA"],
    });
    if (typeof payload.sub !== "string" || !payload.sub) throw new Error("missing sub");
    return { kind: "external", identity: { issuer: oidc.issuer, subject: payload.sub } };
  } catch (error) {
    throw invalidToken(error);
  }
}

/** The Shutter user an external identity is linked to (cached: links never change), or null. */
export async function userIdForIdentity(identity: ExternalIdentity): Promise<string | null> {
  const [entry] = await loadThroughCache(identityEntity, [JSON.stringify([identity.issuer, identity.subject])]);
  return entry?.userId ?? null;
}

const identityEntity: CachedEntity<{ id: string; userId: string }> = {
  parts: [{ kind: "identity", ttlSeconds: 3600, fields: ["userId"] }],
  isValidId: (id) => id.length <= 600,
  load: async (ids) => {
    const pairs = ids.map((id) => JSON.parse(id) as [string, string]);
    const rows = await db().identity.findMany({
      where: { OR: pairs.map(([issuer, subject]) => ({ issuer, subject })) },
    });
    return rows.map((row) => ({ id: JSON.stringify([row.issuer, row.subject]), userId: row.userId }));
  },
};

const hashToken = (token: string) => createHash("sha256").update(token).digest("hex");

export interface SessionTokens {
  userId: string;
  accessToken: string;
  accessTokenExpiresAt: Date;
  refreshToken: string;
  refreshTokenExpiresAt: Date;
}

function refreshTokenExpiry(): Date {
  return new Date(Date.now() + config().auth.refreshTokenTtlDays * 86_400_000);
}

async function tokensFor(userId: string, sessionId: string, expiresAt: Date, refreshToken: string) {
  const access = await signAccessToken({ userId, sessionId });
  return {
    userId,
    accessToken: access.token,
    accessTokenExpiresAt: access.expiresAt,
    refreshToken,
    refreshTokenExpiresAt: expiresAt,
  };
}

/** Starts a session (one device) and returns its first access and refresh tokens. */
export async function startSession(userId: string): Promise<SessionTokens> {
  const refreshToken = randomBytes(32).toString("base64url");
  const expiresAt = refreshTokenExpiry();
  const session = await db().session.create({
    data: { userId, expiresAt, refreshTokens: { create: { tokenHash: hashToken(refreshToken) } } },
  });
  return tokensFor(userId, session.id, expiresAt, refreshToken);
}

/**
 * Exchanges a refresh token for new tokens. Each refresh token works once: presenting a spent one means it
 * was stolen or replayed, so the whole session (every token descended from the same sign-in) is revoked.
 * @throws UnauthenticatedError for unknown, spent, expired or revoked tokens.
 */
export async function rotateRefreshToken(refreshToken: string): Promise<SessionTokens> {
  const tokenHash = hashToken(refreshToken);
  const invalid = new UnauthenticatedError("This refresh token is not valid. Sign in again.");
  const next = randomBytes(32).toString("base64url");
  const expiresAt = refreshTokenExpiry();
  const outcome = await db().$transaction(async (tx) => {
    const stored = await tx.refreshToken.findUnique({ where: { tokenHash }, include: { session: true } });
    if (!stored) return { kind: "unknown" as const };
    const { session } = stored;
    if (session.revokedAt || session.expiresAt < new Date()) return { kind: "invalid" as const };
    // Only one of two concurrent uses can flip used_at: the loser is treated as a replay.
    const spent = await tx.refreshToken.updateMany({
      where: { id: stored.id, usedAt: null },
      data: { usedAt: new Date() },
    });
    if (spent.count === 0) {
      await tx.session.update({ where: { id: session.id }, data: { revokedAt: new Date() } });
      return { kind: "reused" as const, sessionId: session.id };
    }
    await tx.refreshToken.create({ data: { sessionId: session.id, tokenHash: hashToken(next) } });
    await tx.session.update({ where: { id: session.id }, data: { lastUsedAt: new Date(), expiresAt } });
    return { kind: "rotated" as const, userId: session.userId, sessionId: session.id };
  });
  if (outcome.kind === "reused") {
    logger().warn({ sessionId: outcome.sessionId }, "refresh token reused: session revoked");
  }
  if (outcome.kind !== "rotated") throw invalid;
  return tokensFor(outcome.userId, outcome.sessionId, expiresAt, next);
}

/** Ends a session: its refresh tokens stop working (access tokens lapse within their short lifetime). */
export async function revokeSession(sessionId: string): Promise<void> {
  await db().session.updateMany({ where: { id: sessionId, revokedAt: null }, data: { revokedAt: new Date() } });
}
