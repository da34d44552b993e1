import { createHash, randomBytes } from "node:crypto";
import { decodeJwt } from "jose";
import {
  type ExternalIdentity,
  hashPassword,
  signAccessToken,
  type Viewer,
  verifyAgainstDummy,
  verifyPassword,
} from "../domain/auth.ts";
import { chargeSignUp, loginSucceeded, reserveLoginAttempt } from "../domain/rate-limit.ts";
import {
  ConflictError,
  InvalidCredentialsError,
  rethrowPrismaError,
  UnauthenticatedError,
  ValidationError,
} from "../errors.ts";
import { notificationsPubSub } from "../events/pubsub.ts";
import type { Prisma } from "../generated/prisma/client.ts";
import { config } from "../platform/config.ts";
import { db } from "../platform/db.ts";
import { logger } from "../platform/logger.ts";
import type { Actor, RequestWrites, SignedIn } from "./write.ts";
import { write } from "./write.ts";

// Accounts and sessions: signing up, logging in and out, and the refresh tokens of each signed-in device.

/** Whoever sends a request, signed in or not: what signing up and logging in decide on. */
export interface Visitor {
  viewer: Viewer | null;
  /** A verified token of the external issuer (OIDC_ISSUER), also when no account is linked to it yet. */
  externalIdentity: ExternalIdentity | null;
  /** The caller's address, for per-address limits. */
  clientAddress: string;
  /** What the request's writes hand back to it (services/write.ts). */
  writes?: RequestWrites;
}

export interface SignUpInput {
  handle: string;
  displayName: string;
  email: string;
  /** Required, unless the visitor carries an external identity (the account is then linked to it). */
  password?: string | null;
}

/**
 * Creates an account and signs it in. Every attempt is charged to the address, taken or not: creating accounts
 * and probing for emails cost the same.
 * @throws ConflictError (signed in already; handle or email taken), RateLimitedError, ValidationError
 */
export async function signUp(visitor: Visitor, input: SignUpInput): Promise<SessionTokens> {
  const identity = visitor.externalIdentity;
  if (visitor.viewer) throw new ConflictError("You are already signed in to an account.");
  await chargeSignUp(visitor.clientAddress);
  if (!identity && !input.password) {
    throw ValidationError.field(["input", "password"], "Choose a password (at least 8 characters).");
  }
  const taken = await db().user.findFirst({
    where: { OR: [{ handle: input.handle }, { email: input.email }] },
    select: { handle: true },
  });
  if (taken) {
    throw new ConflictError(
      taken.handle === input.handle
        ? `The handle @${input.handle} is taken. Try another one.`
        : "An account with that email already exists. Log in instead.",
    );
  }
  const passwordHash = input.password ? await hashPassword(input.password) : null;
  // The account and its first session in one transaction: a sign-up retried with its Idempotency-Key finds both
  // or neither.
  return (
    write(visitor, async ({ tx }) => {
      const user = await tx.user.create({
        data: {
          handle: input.handle,
          displayName: input.displayName,
          email: input.email,
          passwordHash,
          identities: identity ? { create: { issuer: identity.issuer, subject: identity.subject } } : undefined,
        },
      });
      return startSession(user.id, tx);
    })
      // Two sign-ups racing for the same handle: the unique index decides.
      .catch((error) => rethrowPrismaError(error, { conflict: "That handle or email was just taken. Try again." }))
  );
}

/**
 * Signs in with a handle or email and a password. The attempt takes its place in the limits before any
 * password is checked, counted on the account (its handle and its email are one account) and on the address
 * (see domain/rate-limit.ts); an unknown account costs the same time as a wrong password.
 * @throws InvalidCredentialsError, RateLimitedError
 */
export async function logIn(visitor: Visitor, input: { login: string; password: string }): Promise<SessionTokens> {
  const login = input.login.trim().replace(/^@/, "").toLowerCase().slice(0, 254);
  const user = await db().user.findFirst({
    where: login.includes("@") ? { email: login } : { handle: login },
    select: { id: true, passwordHash: true },
  });
  const reservation = await reserveLoginAttempt(user ? `user:${user.id}` : `login:${login}`, visitor.clientAddress);
  const valid = user?.passwordHash
    ? await verifyPassword(input.password, user.passwordHash)
    : await verifyAgainstDummy(input.password).then(() => false);
  if (!user || !valid) throw new InvalidCredentialsError();
  await loginSucceeded(reservation);
  return write(visitor, ({ tx }) => startSession(user.id, tx));
}

/**
 * Ends the viewer's current session. Signed in with an external issuer's token, there is no Shutter session to
 * end (one signs out there).
 */
export async function logOut(actor: SignedIn): Promise<void> {
  if (actor.viewer.sessionId) await revokeSession(actor, actor.viewer.sessionId);
}

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

/**
 * Starts a session (one device) and returns its first access and refresh tokens: in the caller's write, or (the
 * tests' and benchmarks' way in) in a write of its own.
 */
export async function startSession(
  userId: string,
  tx?: Pick<Prisma.TransactionClient, "session">,
): Promise<SessionTokens> {
  if (!tx) return write(null, (w) => startSession(userId, w.tx));
  const refreshToken = randomBytes(32).toString("base64url");
  const expiresAt = refreshTokenExpiry();
  const session = await tx.session.create({
    data: { userId, expiresAt, refreshTokens: { create: { tokenHash: hashToken(refreshToken) } } },
  });
  return tokensFor(userId, session.id, expiresAt, refreshToken);
}

/**
 * Exchanges a refresh token for new tokens. Each refresh token works once: presenting a spent one means it
 * was stolen or replayed, so the whole session (every token descended from the same sign-in) is revoked.
 * @throws UnauthenticatedError for unknown, spent, expired or revoked tokens.
 */
export async function rotateRefreshToken(actor: Actor, refreshToken: string): Promise<SessionTokens> {
  const tokenHash = hashToken(refreshToken);
  const invalid = new UnauthenticatedError("This refresh token is not valid. Sign in again.");
  const next = randomBytes(32).toString("base64url");
  const expiresAt = refreshTokenExpiry();
  const outcome = await write(actor, async ({ tx }) => {
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
    sessionEnded(outcome.sessionId);
  }
  if (outcome.kind !== "rotated") throw invalid;
  return tokensFor(outcome.userId, outcome.sessionId, expiresAt, next);
}

/** Session tokens an answer handed out (what a client selected of them). */
export interface IssuedTokens {
  accessToken?: string;
  refreshToken?: string;
}

/**
 * Whether an answer that handed out session tokens may be handed out again (the repeat of an Idempotency-Key):
 * only while nothing has used them since — the client that asked never got them. Once the session has moved on
 * (its refresh token used, or the session ended), the answer reached someone: a repeat is refused. When the answer
 * was a refresh, the repeat presents a spent refresh token again, and ends the session as any reuse does
 * (rotateRefreshToken): a thief replaying a stolen request gets nothing and gives itself away.
 */
export async function mayRepeatSessionAnswer(tokens: IssuedTokens, refresh: boolean): Promise<boolean> {
  let sessionId: string | undefined;
  let tokenHash: string | undefined;
  if (tokens.refreshToken) {
    tokenHash = hashToken(tokens.refreshToken);
    sessionId = (await db().refreshToken.findUnique({ where: { tokenHash }, select: { sessionId: true } }))?.sessionId;
  } else if (tokens.accessToken) {
    // Our own token, from our own (sealed) record: its session claim is read, not verified again.
    const claims = decodeJwt(tokens.accessToken);
    sessionId = typeof claims.sid === "string" ? claims.sid : undefined;
  } else return true; // nothing that signs anyone in
  if (!sessionId) return false;
  const session = await db().session.findUnique({
    where: { id: sessionId },
    select: { revokedAt: true, refreshTokens: { orderBy: { createdAt: "desc" }, take: 1 } },
  });
  const latest = session?.refreshTokens[0];
  const untouched =
    !!session && !session.revokedAt && !!latest && !latest.usedAt && (!tokenHash || latest.tokenHash === tokenHash);
  if (!untouched && refresh && session && !session.revokedAt) {
    logger().warn({ sessionId }, "refresh repeated after its tokens were used: session revoked");
    await revokeSession(null, sessionId);
  }
  return untouched;
}

/**
 * Ends a session: its refresh tokens stop working, its open streams close (on every instance), and its access
 * tokens lapse within their short lifetime.
 */
export async function revokeSession(actor: Actor, sessionId: string): Promise<void> {
  await write(
    actor,
    ({ tx }) => tx.session.updateMany({ where: { id: sessionId, revokedAt: null }, data: { revokedAt: new Date() } }),
    { singleStatement: true },
  );
  sessionEnded(sessionId);
}

/** Tells every instance that a session ended (after it is recorded): streams opened with it close. */
function sessionEnded(sessionId: string): void {
  notificationsPubSub().publish("session:ended", sessionId, {});
}
