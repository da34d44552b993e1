import type { YogaInitialContext } from "graphql-yoga";
import type { Context, Viewer } from "../schema/builder.ts";
import { verifyAccessToken } from "./auth.ts";
import { UnauthenticatedError } from "./errors.ts";
import { createLoaders } from "./loaders/index.ts";
import { requestScope } from "./logger.ts";

/**
 * Builds the per-request context. This is the only place that reads credentials: a bearer token is verified
 * once here, and resolvers only ever see `viewer`.
 * @throws UnauthenticatedError (HTTP 401) when a token is present but invalid or expired: the client must
 * refresh or sign in, rather than silently browse as someone signed out.
 */
export async function createContext({ request }: YogaInitialContext): Promise<Context> {
  const viewer = await viewerFrom(request);
  return {
    requestId: requestScope.getStore()?.requestId ?? "unknown",
    viewer,
    loaders: createLoaders(viewer?.id ?? null),
    request,
  };
}

async function viewerFrom(request: Request): Promise<Viewer | null> {
  const header = request.headers.get("authorization");
  if (!header) return null;
  const [scheme, token] = header.split(" ");
  if (scheme?.toLowerCase() !== "bearer" || !token) {
    throw withStatus(new UnauthenticatedError('Send the access token as "Authorization: Bearer <token>".'));
  }
  try {
    const claims = await verifyAccessToken(token);
    return { id: claims.userId, sessionId: claims.sessionId };
  } catch (error) {
    throw error instanceof UnauthenticatedError ? withStatus(error) : error;
  }
}

function withStatus(error: UnauthenticatedError): UnauthenticatedError {
  Object.assign(error.extensions, { http: { status: 401, headers: { "WWW-Authenticate": 'Bearer realm="shutter"' } } });
  return error;
}
