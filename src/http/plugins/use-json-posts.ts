import type { Plugin } from "graphql-yoga";
import { RequestErrorCode } from "../../errors.ts";
import { requestScope } from "../../platform/request-scope.ts";

/** Content types a web page may POST to another site without a CORS preflight (an HTML form, a beacon). */
const SIMPLE_CONTENT_TYPES = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"];

/**
 * Cross-site request forgery, decided from the threat. Shutter authenticates with a bearer header, never a
 * cookie, so a request another website makes a browser send carries no credentials: it can do nothing its
 * author could not do from their own machine. What such a request still carries is the visitor's address,
 * which per-address limits count (failed logins, the anonymous budget): a page could make its visitors'
 * browsers spend them. So the only requests a browser can send cross-site without a preflight — GETs and
 * form-style POSTs — are harmless here: a GET can only run a query (mutations over GET are refused with 405),
 * and a POST must be JSON (a content type a page cannot send cross-site unless CORS allows its origin).
 * Clients need no extra header (urql and Apollo send persisted queries over GET with their defaults). If
 * cookie authentication is ever added, a CSRF header requirement must come back for it.
 */
export function useJsonPosts(): Plugin {
  return {
    onRequest({ request, endResponse, fetchAPI }) {
      if (request.method !== "POST") return;
      const type = (request.headers.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
      if (!SIMPLE_CONTENT_TYPES.includes(type)) return;
      endResponse(
        new fetchAPI.Response(
          JSON.stringify({
            errors: [
              {
                message: "Send the operation as application/json (or application/graphql-response+json), or use GET.",
                extensions: {
                  code: RequestErrorCode.UNSUPPORTED_MEDIA_TYPE,
                  requestId: requestScope.getStore()?.requestId,
                },
              },
            ],
          }),
          { status: 415, headers: { "content-type": "application/json" } },
        ),
      );
    },
  };
}
