import { builder } from "../../schema/builder.ts";
import {
  hashPassword,
  revokeSession,
  rotateRefreshToken,
  type SessionTokens,
  startSession,
  verifyAgainstDummy,
  verifyPassword,
} from "../domain/auth.ts";
import { chargeSignUp, loginSucceeded, reserveLoginAttempt } from "../domain/rate-limit.ts";
import { displayNameRule, emailRule, handleRule, passwordRule } from "../domain/validation.ts";
import {
  ConflictError,
  InvalidCredentialsError,
  RateLimitedError,
  rethrowPrismaError,
  UnauthenticatedError,
  ValidationError,
} from "../errors.ts";
import { db } from "../platform/db.ts";
import { UserRef } from "./users.ts";

const SessionRef = builder.objectRef<SessionTokens>("Session").implement({
  extensions: { personal: true },
  description:
    "Tokens of a signed-in device. Send the access token as `Authorization: Bearer <token>`; before it expires, " +
    "exchange the refresh token (once) for new tokens with refreshSession.",
  fields: (t) => ({
    accessToken: t.exposeString("accessToken"),
    accessTokenExpiresAt: t.expose("accessTokenExpiresAt", { type: "DateTime" }),
    refreshToken: t.exposeString("refreshToken", { description: "Works once. Store it like a password." }),
    refreshTokenExpiresAt: t.expose("refreshTokenExpiresAt", { type: "DateTime" }),
    user: t.field({
      type: UserRef,
      resolve: async (session, _args, context) => {
        const user = await context.loaders.user.load(session.userId);
        if (!user) throw new UnauthenticatedError("This account no longer exists.");
        return user;
      },
    }),
  }),
});

const SignUpInput = builder.inputType("SignUpInput", {
  fields: (t) => ({
    handle: t.string({ required: true }).validate(handleRule),
    displayName: t.string({ required: true }).validate(displayNameRule),
    email: t.string({ required: true }).validate(emailRule),
    password: t
      .string({
        required: false,
        description:
          "Required, unless the request carries a token of the external issuer (the account is linked to it).",
      })
      .validate(passwordRule),
  }),
});

const LogInInput = builder.inputType("LogInInput", {
  fields: (t) => ({
    login: t.string({ required: true, description: "Your handle or your email address." }),
    password: t.string({ required: true }),
  }),
});

const RefreshSessionInput = builder.inputType("RefreshSessionInput", {
  fields: (t) => ({ refreshToken: t.string({ required: true }) }),
});

builder.mutationFields((t) => ({
  signUp: t.field({
    type: SessionRef,
    description: "Creates an account and signs it in.",
    skipTypeScopes: true,
    args: { input: t.arg({ type: SignUpInput, required: true }) },
    errors: { types: [ConflictError, RateLimitedError], dataField: { name: "session" } },
    resolve: async (_root, { input }, context) => {
      const identity = context.externalIdentity;
      if (context.viewer) throw new ConflictError("You are already signed in to an account.");
      // Every attempt counts, taken or not: creating accounts and probing for emails cost the same.
      await chargeSignUp(context.clientAddress);
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
      const user = await db()
        .user.create({
          data: {
            handle: input.handle,
            displayName: input.displayName,
            email: input.email,
            passwordHash: input.password ? await hashPassword(input.password) : null,
            identities: identity ? { create: { issuer: identity.issuer, subject: identity.subject } } : undefined,
          },
        })
        // Two sign-ups racing for the same handle: the unique index decides.
        .catch((error) => rethrowPrismaError(error, { conflict: "That handle or email was just taken. Try again." }));
      return startSession(user.id);
    },
  }),
  logIn: t.field({
    type: SessionRef,
    description: "Signs in with a handle or email and a password.",
    skipTypeScopes: true,
    args: { input: t.arg({ type: LogInInput, required: true }) },
    errors: { types: [InvalidCredentialsError, RateLimitedError], dataField: { name: "session" } },
    resolve: async (_root, { input }, context) => {
      const login = input.login.trim().replace(/^@/, "").toLowerCase().slice(0, 254);
      const user = await db().user.findFirst({
        where: login.includes("@") ? { email: login } : { handle: login },
        select: { id: true, passwordHash: true },
      });
      // The attempt takes its place in the limits before any password is checked, counted on the account
      // (its handle and its email are one account), from this address (see rate-limit.ts).
      const reservation = await reserveLoginAttempt(user ? `user:${user.id}` : `login:${login}`, context.clientAddress);
      const valid = user?.passwordHash
        ? await verifyPassword(input.password, user.passwordHash)
        : await verifyAgainstDummy(input.password).then(() => false);
      if (!user || !valid) throw new InvalidCredentialsError();
      await loginSucceeded(reservation);
      return startSession(user.id);
    },
  }),
  refreshSession: t.field({
    type: SessionRef,
    description: "Exchanges a refresh token for new tokens. Reusing a spent refresh token ends the session.",
    skipTypeScopes: true,
    args: { input: t.arg({ type: RefreshSessionInput, required: true }) },
    errors: { types: [UnauthenticatedError], dataField: { name: "session" } },
    resolve: (_root, { input }) => rotateRefreshToken(input.refreshToken),
  }),
  logOut: t.boolean({
    description: "Ends the viewer's current session: its refresh token stops working.",
    errors: { dataField: { name: "loggedOut" } },
    resolve: async (_root, _args, context) => {
      // Signed in with an external issuer's token: there is no Shutter session to end (sign out there).
      const { sessionId } = context.viewer!;
      if (sessionId) await revokeSession(sessionId);
      return true;
    },
  }),
}));
