import type { YogaInitialContext } from "graphql-yoga";
import type { Change } from "../caching/changes.ts";
import { type ExternalIdentity, expiryOf, type TokenClaims, type Viewer, verifyBearerToken } from "../domain/auth.ts";
import { UnauthenticatedError } from "../errors.ts";
import { userIdForIdentity } from "../loaders/identities.ts";
import { createLoaders, type Loaders } from "../loaders/index.ts";
import { config } from "../platform/config.ts";
import { requestScope } from "../platform/request-scope.ts";
import type { RequestWrites, SignedIn } from "../services/write.ts";
import { resolveClientAddress } from "./client-address.ts";

export type { Viewer } from "../domain/auth.ts";

/**
 * What an entry knows about a request beyond the request itself, as neutral values: the Lambda adapter reads
 * them off the API Gateway event (http/lambda.ts), the container entry off its socket. Nothing below the entries
 * knows API Gateway's shapes.
 */
export interface ServerContext {
  /** The address the request came from: the TCP peer, or the address API Gateway saw (its `sourceIp`). */
  remoteAddress?: string;
  /** Claims an API gateway's authorizer verified (trusted only in trust-the-gateway mode). */
  gatewayClaims?: Record<string, unknown>;
  /** The platform answers each invocation once (Lambda, buffered): no response can stream. */
  answersOnce?: boolean;
  /**
   * When the platform ends a streamed response (ms since the epoch: a streaming Lambda invocation's deadline): a
   * subscription still open ends cleanly before it, telling its client to subscribe again.
   */
  streamsUntil?: number;
}

/** Per-request state, built by `createContext`: the only place that reads credentials. */
export interface Context {
  requestId: string;
  viewer: Viewer | null;
  /** A verified external identity (OIDC_ISSUER), also when it is not linked to an account yet. */
  externalIdentity: ExternalIdentity | null;
  /** The caller's address, for per-address limits. */
  clientAddress: string;
  loaders: Loaders;
  /** What the request's writes hand back to it: its Idempotency-Key to claim, its loaders to clear. */
  writes: RequestWrites;
  /** The signed-in viewer as the services of signed-in mutations take them (null when nobody is signed in). */
  actor: SignedIn | null;
  request: Request;
}

/**
 * Builds the per-request context. This is the only place that reads credentials: a bearer token is verified
 * once here (or, in trust-the-gateway mode, the claims the gateway's authorizer verified are taken), and
 * resolvers only ever see `viewer`. The request's loaders forget what its writes change (services/write.ts).
 * @throws UnauthenticatedError (HTTP 401) when credentials are present but invalid or expired: the client must
 * refresh or sign in, rather than silently browse as someone signed out.
 */
export async function createContext(initial: YogaInitialContext & ServerContext): Promise<Context> {
  const { request } = initial;
  const { viewer, externalIdentity } = await authenticate(request, initial.gatewayClaims);
  const loaders = createLoaders(viewer?.id ?? null);
  const writes: RequestWrites = { forget: (changes) => forget(loaders, changes) };
  return {
    requestId: requestScope.getStore()?.requestId ?? "unknown",
    viewer,
    externalIdentity,
    clientAddress: clientAddress(request, initial),
    loaders,
    writes,
    actor: viewer ? { viewer, writes } : null,
    request,
  };
}

/** Clears what changed from the request's loaders, so the rest of the operation reads it anew. */
function forget(loaders: Loaders, changes: readonly Change[]): void {
  const byName = loaders as unknown as Record<string, { clear(id: string): unknown } | undefined>;
  for (const change of changes) if (change.loader) byName[change.loader]?.clear(change.loaderKey ?? change.id);
}

async function authenticate(
  request: Request,
  fromGateway: Record<string, unknown> | undefined,
): Promise<{ viewer: Viewer | null; externalIdentity: ExternalIdentity | null }> {
  const gatewayClaims = config().auth.trustGateway && fromGateway ? claimsFromGateway(fromGateway) : undefined;
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
function claimsFromGateway(raw: Record<string, unknown>): TokenClaims | undefined {
  if (typeof raw.sub !== "string" || typeof raw.iss !== "string") return undefined;
  const { auth } = config();
  // HTTP API authorizers pass numeric claims as strings.
  const expiresAt = expiryOf(Number(raw.exp) || undefined);
  if (raw.iss === auth.issuer && typeof raw.sid === "string")
    return { kind: "shutter", userId: raw.sub, sessionId: raw.sid, expiresAt };
  if (auth.oidc && raw.iss === auth.oidc.issuer)
    return { kind: "external", identity: { issuer: raw.iss, subject: raw.sub }, expiresAt };
  throw withStatus(new UnauthenticatedError("Your session token is not valid."));
}

/**
 * The caller's address, for per-address limits: the address the entry saw (API Gateway's sourceIp, the TCP
 * peer) and the X-Forwarded-For hops that trusted proxies appended (TRUSTED_PROXIES; see client-address.ts).
 */
export function clientAddress(request: Request, server: ServerContext): string {
  return resolveClientAddress(server.remoteAddress, request.headers.get("x-forwarded-for"));
}

function withStatus(error: UnauthenticatedError): UnauthenticatedError {
  Object.assign(error.extensions, { http: { status: 401, headers: { "WWW-Authenticate": 'Bearer realm="shutter"' } } });
  return error;
}
