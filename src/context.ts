import type { YogaInitialContext } from "graphql-yoga";
import type { Context, Viewer } from "../schema/builder.ts";
import {
  type ExternalIdentity,
  expiryOf,
  type TokenClaims,
  userIdForIdentity,
  verifyBearerToken,
} from "./domain/auth.ts";
import { UnauthenticatedError } from "./errors.ts";
import { resolveClientAddress } from "./http/client-address.ts";
import type { GatewayEvent } from "./http/lambda.ts";
import { createLoaders } from "./loaders/index.ts";
import { config } from "./platform/config.ts";
import { requestScope } from "./platform/logger.ts";

/** What the function entry passes along with the request. */
export interface ServerContext {
  /** The API Gateway event, when invoked through Lambda. */
  event?: GatewayEvent;
  /** The Lambda invocation context. */
  lambdaContext?: unknown;
  /** The TCP peer, when served by the Node HTTP entry. */
  remoteAddress?: string;
}

/**
 * Builds the per-request context. This is the only place that reads credentials: a bearer token is verified
 * once here (or, in trust-the-gateway mode, the claims the gateway's authorizer verified are read from the
 * event), and resolvers only ever see `viewer`.
 * @throws UnauthenticatedError (HTTP 401) when credentials are present but invalid or expired: the client must
 * refresh or sign in, rather than silently browse as someone signed out.
 */
export async function createContext(initial: YogaInitialContext & ServerContext): Promise<Context> {
  const { request, event } = initial;
  const { viewer, externalIdentity } = await authenticate(request, event);
  return {
    requestId: requestScope.getStore()?.requestId ?? "unknown",
    viewer,
    externalIdentity,
    clientAddress: clientAddress(request, initial),
    loaders: createLoaders(viewer?.id ?? null),
    request,
  };
}

async function authenticate(
  request: Request,
  event: GatewayEvent | undefined,
): Promise<{ viewer: Viewer | null; externalIdentity: ExternalIdentity | null }> {
  const gatewayClaims = config().auth.trustGateway ? claimsFromGateway(event) : undefined;
  let claims: TokenClaims;
  if (gatewayClaims) {
    claims = gatewayClaims;
  } else {
    const header = request.headers.get("authorization");
    if (!header) return { viewer: null, externalIdentity: null };
    const [scheme, token] = header.split(" ");
    if (scheme?.toLowerCase() !== "bearer" || !token) {
      throw withStatus(new UnauthenticatedError('Send the access token as "Authorization: Bearer <token>".'));
    }
    try {
      claims = await verifyBearerToken(token);
    } catch (error) {
      throw error instanceof UnauthenticatedError ? withStatus(error) : error;
    }
  }
  const { expiresAt } = claims;
  if (claims.kind === "shutter")
    return { viewer: { id: claims.userId, sessionId: claims.sessionId, expiresAt }, externalIdentity: null };
  // An external issuer's token: the person is whoever that identity was linked to, if anyone yet.
  const userId = await userIdForIdentity(claims.identity);
  return userId
    ? { viewer: { id: userId, sessionId: null, expiresAt }, externalIdentity: claims.identity }
    : { viewer: null, externalIdentity: claims.identity };
}

/**
 * Claims verified by an API Gateway JWT authorizer (HTTP API) or Cognito authorizer (REST API). Read only in
 * trust-the-gateway mode: otherwise anyone able to invoke the function could pass claims of their choosing.
 */
function claimsFromGateway(event: GatewayEvent | undefined): TokenClaims | undefined {
  const authorizer = (event?.requestContext as { authorizer?: { jwt?: { claims?: Claims }; claims?: Claims } })
    ?.authorizer;
  const raw = authorizer?.jwt?.claims ?? authorizer?.claims;
  if (!raw || typeof raw.sub !== "string" || typeof raw.iss !== "string") return undefined;
  const { auth } = config();
  // HTTP API authorizers pass numeric claims as strings.
  const expiresAt = expiryOf(Number(raw.exp) || undefined);
  if (raw.iss === auth.issuer && typeof raw.sid === "string")
    return { kind: "shutter", userId: raw.sub, sessionId: raw.sid, expiresAt };
  if (auth.oidc && raw.iss === auth.oidc.issuer)
    return { kind: "external", identity: { issuer: raw.iss, subject: raw.sub }, expiresAt };
  throw withStatus(new UnauthenticatedError("Your session token is not valid."));
}

type Claims = Record<string, string | number | boolean | undefined>;

/**
 * The caller's address, for per-address limits: from API Gateway's sourceIp on Lambda or the TCP peer, and the
 * X-Forwarded-For hops that trusted proxies appended (TRUSTED_PROXIES; see client-address.ts).
 */
export function clientAddress(request: Request, server: ServerContext): string {
  const context = server.event?.requestContext as
    | { http?: { sourceIp?: string }; identity?: { sourceIp?: string } }
    | undefined;
  const peer = context?.http?.sourceIp ?? context?.identity?.sourceIp ?? server.remoteAddress;
  return resolveClientAddress(peer, request.headers.get("x-forwarded-for"));
}

function withStatus(error: UnauthenticatedError): UnauthenticatedError {
  Object.assign(error.extensions, { http: { status: 401, headers: { "WWW-Authenticate": 'Bearer realm="shutter"' } } });
  return error;
}
