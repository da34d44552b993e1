import { expect, test } from "vitest";
import { send as fetch } from "../kit/helpers.ts";
import { startInstance } from "../kit/instances.ts";

test("GraphiQL is served with its assets inline: no CDN needed", async () => {
  // On by default in development, and where a deployment turns it on (GRAPHIQL=true, as here).
  const instance = await startInstance({ GRAPHIQL: "true" });
  const response = await instance.fetch("/graphql", { headers: { accept: "text/html" } });
  const html = await response.text();
  await instance.close();
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toContain("text/html");
  expect(html).toContain("Shutter");
  expect(html).not.toMatch(/<script[^>]+src="https?:\/\//);
  expect(html).not.toMatch(/<link[^>]+href="https?:\/\//);
  expect(html).not.toMatch(/unpkg\.com|jsdelivr|esm\.sh/);
});

test("the JWKS and health routes answer", async () => {
  const jwks = await (await fetch(new Request("http://shutter.test/.well-known/jwks.json"))).json();
  expect(jwks.keys).toHaveLength(1);
  expect(jwks.keys[0]).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig" });
  expect(jwks.keys[0].d).toBeUndefined();
  const health = await fetch(new Request("http://shutter.test/health"));
  expect(health.status).toBe(200);
});

test("with an issuer URL, OpenID discovery points a JWT authorizer at the keys that verify Shutter's tokens", async () => {
  const notUrl = await fetch(new Request("http://shutter.test/.well-known/openid-configuration"));
  expect(notUrl.status).not.toBe(200); // the default issuer ("shutter") is no URL: nothing to discover
  const instance = await startInstance({ JWT_ISSUER: "https://api.shutter.test" });
  try {
    const discovery = await instance.fetch("/.well-known/openid-configuration");
    expect(await discovery.json()).toEqual({
      issuer: "https://api.shutter.test",
      jwks_uri: "https://api.shutter.test/.well-known/jwks.json",
      id_token_signing_alg_values_supported: ["ES256"],
    });
  } finally {
    await instance.close();
  }
});
