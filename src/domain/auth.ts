import { argon2, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
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
import { LRUCache } from "lru-cache";
import { UnauthenticatedError } from "../errors.ts";
import { config } from "../platform/config.ts";
import { logger } from "../platform/logger.ts";

// Passwords: argon2id with OWASP's minimum memory-hard parameters (19 MiB, 2 passes), by Node's own argon2
// (node:crypto, Node 24.7+). It runs on libuv's thread pool, off the event loop: a burst of sign-ups or
// guesses waits for a hashing thread instead of stalling every other request of the instance (the WebAssembly
// implementation it replaces ran on the event loop). Native code on every platform, no dependency.
const ARGON2 = { memory: 19_456, passes: 2, parallelism: 1, tagLength: 32 } as const;

const argon2id = (password: string, salt: Buffer, params: { memory: number; passes: number; parallelism: number }) =>
  new Promise<Buffer>((resolve, reject) =>
    argon2("argon2id", { message: password, nonce: salt, tagLength: ARGON2.tagLength, ...params }, (error, hash) =>
      error ? reject(error) : resolve(hash),
    ),
  );

const b64 = (bytes: Buffer) => bytes.toString("base64").replace(/=+$/, "");

/** Hashes a password into a self-describing PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await argon2id(password, salt, ARGON2);
  return `$argon2id$v=19$m=${ARGON2.memory},t=${ARGON2.passes},p=${ARGON2.parallelism}$${b64(salt)}$${b64(hash)}`;
}

const PHC = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

/** Checks a password against a PHC string made by hashPassword (with whatever parameters it was made). */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const match = PHC.exec(encoded);
  if (!match) return false;
  const [, memory, passes, parallelism, salt, expected] = match as unknown as string[];
  const want = Buffer.from(expected as string, "base64");
  const got = await argon2id(password, Buffer.from(salt as string, "base64"), {
    memory: Number(memory),
    passes: Number(passes),
    parallelism: Number(parallelism),
  });
  return got.length === want.length && timingSafeEqual(got, want);
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
  expiresAt?: Date | null;
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

/** The signed-in person, as proven by a verified access token. */
export interface Viewer {
  id: string;
  /** The Shutter session (null when signed in with an external issuer's token). */
  sessionId: string | null;
  /** When the credentials of the request expire (long-lived streams end then); null when they don't say. */
  expiresAt: Date | null;
}

/** A person as an external OpenID Connect issuer knows them. */
export interface ExternalIdentity {
  issuer: string;
  subject: string;
}

/** A verified token: whose it is, and until when (long-lived streams end then). */
export type TokenClaims =
  | { kind: "shutter"; userId: string; sessionId: string; expiresAt: Date | null }
  | { kind: "external"; identity: ExternalIdentity; expiresAt: Date | null };

/** A JWT's `exp` (seconds), as a date. */
export const expiryOf = (exp: unknown) => (typeof exp === "number" ? new Date(exp * 1000) : null);

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
    return { userId: payload.sub, sessionId: payload.sid, expiresAt: expiryOf(payload.exp) };
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
  // A token verified before is not verified again until it expires: the same text, signed by the same key, has the
  // same claims (an ECDSA verification is a few percent of a signed-in request's CPU). A session ended early is not
  // this check's concern: its access token stays valid until it expires, as it would on any instance.
  const known = verifiedTokens.get(token);
  if (known?.expiresAt && known.expiresAt.getTime() > Date.now()) return known;
  const claims = await verifyUncached(token);
  const ttl = (claims.expiresAt?.getTime() ?? 0) - Date.now();
  if (ttl > 0) verifiedTokens.set(token, claims, { ttl });
  return claims;
}

// Bounded: at most this many distinct live tokens are remembered per instance (the least recently used go).
const verifiedTokens = new LRUCache<string, TokenClaims>({ max: 10_000 });

async function verifyUncached(token: string): Promise<TokenClaims> {
  const { oidc } = config().auth;
  let claimedIssuer: unknown;
  try {
    claimedIssuer = decodeJwt(token).iss;
  } catch {
    throw invalidToken();
  }
  if (!oidc || claimedIssuer !== oidc.issuer) {
    const { userId, sessionId, expiresAt } = await verifyAccessToken(token);
    return { kind: "shutter", userId, sessionId, expiresAt: expiresAt ?? null };
  }
  remoteKeys ??= createRemoteJWKSet(new URL(oidc.jwksUri), { timeoutDuration: 2_000, cooldownDuration: 30_000 });
  try {
    const { payload } = await jwtVerify(token, remoteKeys, {
      issuer: oidc.issuer,
      audience: oidc.audience,
      algorithms: ["RS256", "ES256", "PS256", "EdDSA"],
    });
    if (typeof payload.sub !== "string" || !payload.sub) throw new Error("missing sub");
    return {
      kind: "external",
      identity: { issuer: oidc.issuer, subject: payload.sub },
      expiresAt: expiryOf(payload.exp),
    };
  } catch (error) {
    throw invalidToken(error);
  }
}
