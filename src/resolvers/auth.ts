import { builder } from "../../schema/builder.ts";
import { displayNameRule, emailRule, handleRule, passwordRule } from "../domain/validation.ts";
import { ConflictError, InvalidCredentialsError, RateLimitedError, UnauthenticatedError } from "../errors.ts";
import { logIn, logOut, rotateRefreshToken, type SessionTokens, signUp } from "../services/auth.ts";
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
    resolve: (_root, { input }, context) => signUp(context, input),
  }),
  logIn: t.field({
    type: SessionRef,
    description: "Signs in with a handle or email and a password.",
    skipTypeScopes: true,
    args: { input: t.arg({ type: LogInInput, required: true }) },
    errors: { types: [InvalidCredentialsError, RateLimitedError], dataField: { name: "session" } },
    resolve: (_root, { input }, context) => logIn(context, input),
  }),
  refreshSession: t.field({
    type: SessionRef,
    description: "Exchanges a refresh token for new tokens. Reusing a spent refresh token ends the session.",
    skipTypeScopes: true,
    args: { input: t.arg({ type: RefreshSessionInput, required: true }) },
    errors: { types: [UnauthenticatedError], dataField: { name: "session" } },
    resolve: (_root, { input }, context) => rotateRefreshToken(context, input.refreshToken),
  }),
  logOut: t.boolean({
    description: "Ends the viewer's current session: its refresh token stops working.",
    errors: { dataField: { name: "loggedOut" } },
    resolve: async (_root, _args, context) => {
      await logOut(context.actor!);
      return true;
    },
  }),
}));
