import type { Plugin } from "graphql-yoga";
import { printedSchema } from "../../../schema/index.ts";
import { jwks } from "../../domain/auth.ts";
import { config } from "../../platform/config.ts";
import { requestScope } from "../../platform/request-scope.ts";
import { clientAddress, type ServerContext } from "../context.ts";
import { handleOpsWebhook } from "../webhook.ts";

const isUrl = (value: string) => /^https?:\/\//.test(value);

/** Routes served next to GraphQL: the operations webhook (POST /webhooks/ops/<source>), the JWKS (and OpenID
 * discovery) for API gateway JWT authorizers and, outside production, the SDL.
 * (Yoga itself answers `GET /health` with an empty 200.) */
export function useRoutes(): Plugin {
  return {
    async onRequest({ request, url, endResponse, fetchAPI, serverContext }) {
      const webhook = /\/webhooks\/ops\/([^/]+)$/.exec(url.pathname);
      if (webhook && request.method === "POST") {
        const scope = requestScope.getStore();
        const address = clientAddress(request, serverContext as ServerContext);
        endResponse(await handleOpsWebhook(request, webhook[1] as string, address, scope?.requestId ?? ""));
        return;
      }
      if (request.method !== "GET") return;
      const json = (body: unknown, headers: Record<string, string> = {}) =>
        new fetchAPI.Response(JSON.stringify(body), { headers: { "content-type": "application/json", ...headers } });
      if (url.pathname.endsWith("/.well-known/jwks.json")) {
        endResponse(json(await jwks(), { "cache-control": "public, max-age=300" }));
      } else if (url.pathname.endsWith("/.well-known/openid-configuration") && isUrl(config().auth.issuer)) {
        // What an API gateway's JWT authorizer reads to find the keys of an issuer given as a URL (JWT_ISSUER).
        const { issuer } = config().auth;
        endResponse(
          json(
            {
              issuer,
              jwks_uri: `${issuer.replace(/\/$/, "")}/.well-known/jwks.json`,
              id_token_signing_alg_values_supported: ["ES256"],
            },
            { "cache-control": "public, max-age=300" },
          ),
        );
      } else if (url.pathname.endsWith("/schema.graphql") && !config().production) {
        endResponse(
          new fetchAPI.Response(printedSchema(), { headers: { "content-type": "text/plain; charset=utf-8" } }),
        );
      }
    },
  };
}
