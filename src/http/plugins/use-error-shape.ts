import { GraphQLError } from "graphql";
import { isAsyncIterable, mapAsyncIterator, type Plugin } from "graphql-yoga";
import { ErrorCode, RequestErrorCode } from "../../errors.ts";
import { requestScope } from "../../platform/request-scope.ts";

/**
 * Every error leaves in one shape: a stable `extensions.code`, the request id (also in every log line of the
 * request, and the `x-request-id` header), and no internals. Refusals Yoga answers without a body (415) get a
 * GraphQL error too.
 */
export function useErrorShape(): Plugin {
  return {
    onResultProcess({ result, setResult }) {
      const scope = requestScope.getStore();
      if (!scope) return;
      const stamp = <R extends SingleResult>(single: R, beforeExecution = !("data" in single)): R =>
        single.errors?.length
          ? {
              ...single,
              errors: single.errors.map((error) => normalizeError(error, scope.requestId, beforeExecution)),
            }
          : single;
      // Parts sent as they come (a deferred query's, a subscription's events): each stamped on its way out, the
      // errors of its deferred parts too.
      if (isAsyncIterable(result)) {
        setResult(
          mapAsyncIterator(result as AsyncIterable<SingleResult & { incremental?: SingleResult[] }>, (part) =>
            part.incremental
              ? { ...stamp(part, false), incremental: part.incremental.map((single) => stamp(single, false)) }
              : stamp(part, false),
          ),
        );
        return;
      }
      const results = (Array.isArray(result) ? result : [result]) as SingleResult[];
      if (!results.some((single) => single.errors?.length)) return;
      setResult(Array.isArray(result) ? result.map((single) => stamp(single)) : stamp(result as SingleResult));
    },
    onResponse({ response, setResponse, fetchAPI }) {
      const scope = requestScope.getStore();
      if (!scope || response.status < 400 || response.headers.get("content-type")) return;
      const code = STATUS_CODES[response.status] ?? RequestErrorCode.BAD_REQUEST;
      const message =
        response.status === 415
          ? "Send the operation as application/json (or application/graphql-response+json), or use GET."
          : "The request was refused.";
      setResponse(
        new fetchAPI.Response(
          JSON.stringify({ errors: [{ message, extensions: { code, requestId: scope.requestId } }] }),
          {
            status: response.status,
            headers: { ...Object.fromEntries(response.headers), "content-type": "application/json" },
          },
        ),
      );
    },
  };
}

/** One execution result, as much of it as the stamp reads. */
type SingleResult = { errors?: readonly GraphQLError[]; extensions?: Record<string, unknown> };

/** Codes of refusals that come with an HTTP status but no code of their own. */
const STATUS_CODES: Record<number, string> = {
  400: RequestErrorCode.BAD_REQUEST,
  401: ErrorCode.UNAUTHENTICATED,
  403: ErrorCode.FORBIDDEN,
  405: RequestErrorCode.METHOD_NOT_ALLOWED,
  413: RequestErrorCode.PAYLOAD_TOO_LARGE,
  415: RequestErrorCode.UNSUPPORTED_MEDIA_TYPE,
  429: ErrorCode.RATE_LIMITED,
};

/**
 * Every error leaves with a stable `extensions.code` and the request id, and without internals: Yoga attaches
 * the underlying exception as `originalError` to some HTTP-level errors (a JSON parse error quotes the body).
 */
function normalizeError(error: GraphQLError, requestId: string, beforeExecution: boolean): GraphQLError {
  if (!(error instanceof GraphQLError)) return error;
  const { originalError: _internal, ...extensions } = error.extensions as Record<string, unknown>;
  const { message } = error;
  const status = (extensions.http as { status?: number } | undefined)?.status;
  // A refusal before execution is a request error (HTTP 400 with application/graphql-response+json), also
  // when it comes from a validation rule that set no status (GraphQL Armor's).
  if (beforeExecution && !status) extensions.http = { spec: true, status: 400 };
  // These statuses say precisely what was wrong; Yoga labels them all BAD_REQUEST.
  if ((status === 405 || status === 413 || status === 415) && extensions.code === RequestErrorCode.BAD_REQUEST) {
    extensions.code = STATUS_CODES[status];
  }
  // A malformed HTTP request (bad JSON, wrong parameter types: no place in a document to point at) is a 400
  // whatever media type was asked for, as the GraphQL-over-HTTP audit expects.
  const http = extensions.http as { spec?: boolean; status?: number } | undefined;
  if (http?.spec && extensions.code === RequestErrorCode.BAD_REQUEST && !error.locations?.length) {
    extensions.http = { ...http, spec: false };
  }
  if (!extensions.code) {
    // Without a status these are Armor's limits (depth, aliases, tokens, directives), found while validating.
    extensions.code = (status && STATUS_CODES[status]) ?? RequestErrorCode.GRAPHQL_VALIDATION_FAILED;
  }
  return new GraphQLError(message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    extensions: { ...extensions, requestId },
  });
}
