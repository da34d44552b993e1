import type { Plugin } from "graphql-yoga";
import { RequestErrorCode } from "../../errors.ts";
import { config } from "../../platform/config.ts";
import { requestScope } from "../../platform/request-scope.ts";

/**
 * Refuses bodies larger than MAX_BODY_BYTES (413) before anything parses them, whether or not the client
 * declared a length; an accepted body is handed on already read.
 */
export function useBodyLimit(): Plugin {
  return {
    async onRequest({ request, setRequest, endResponse, fetchAPI }) {
      if (!request.body) return;
      const limit = config().limits.bodyBytes;
      const tooLarge = () =>
        endResponse(
          new fetchAPI.Response(
            JSON.stringify({
              errors: [
                {
                  message: `The request body is larger than ${limit} bytes.`,
                  extensions: {
                    code: RequestErrorCode.PAYLOAD_TOO_LARGE,
                    requestId: requestScope.getStore()?.requestId,
                  },
                },
              ],
            }),
            { status: 413, headers: { "content-type": "application/json" } },
          ),
        );
      if (Number(request.headers.get("content-length")) > limit) return tooLarge();
      const reader = request.body.getReader();
      const chunks: Uint8Array[] = [];
      let size = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > limit) {
          await reader.cancel();
          return tooLarge();
        }
        chunks.push(value);
      }
      setRequest(
        new fetchAPI.Request(request.url, {
          method: request.method,
          headers: request.headers,
          body: Buffer.concat(chunks),
        }),
      );
    },
  };
}
