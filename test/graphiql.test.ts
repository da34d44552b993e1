import { expect, test } from "vitest";
import { fetch } from "../functions/graphql.ts";

test("GraphiQL is served with its assets inline: no CDN needed", async () => {
  const response = await fetch(new Request("http://shutter.test/graphql", { headers: { accept: "text/html" } }));
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toContain("text/html");
  const html = await response.text();
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
