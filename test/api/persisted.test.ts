// Persisted documents (trusted manifests and Automatic Persisted Queries) under each policy, GET caching, and
// GraphQL-over-HTTP conformance.
import { readFileSync } from "node:fs";
import { generate } from "@graphql-codegen/cli";
import { auditServer } from "graphql-http";
import { afterAll, beforeAll, describe, expect } from "vitest";
import mobile from "../../clients/mobile/generated/persisted-documents.json" with { type: "json" };
import web from "../../clients/web/generated/persisted-documents.json" with { type: "json" };
import codegenConfig from "../../codegen.ts";
import { sha256 } from "../../src/http/persisted-documents.ts";
import { createPost, test } from "../kit/helpers.ts";
import { type Instance, startInstance } from "../kit/instances.ts";

const idOf = (manifest: Record<string, string>, name: string) => {
  const entry = Object.entries(manifest).find(([, document]) =>
    new RegExp(`(query|mutation) ${name}\\b`).test(document),
  );
  if (!entry) throw new Error(`no document ${name}`);
  return { id: entry[0], hash: entry[0].replace("sha256:", ""), document: entry[1] };
};

async function send(
  instance: Instance,
  init: {
    method?: string;
    body?: unknown;
    search?: Record<string, unknown>;
    headers?: Record<string, string>;
    /** The client's address (another loopback address is another client). */
    from?: string;
  },
) {
  const url = new URL("http://shutter.test/graphql");
  for (const [key, value] of Object.entries(init.search ?? {}))
    url.searchParams.set(key, typeof value === "string" ? value : JSON.stringify(value));
  const response = await instance.fetch(
    new Request(url, {
      method: init.method ?? "POST",
      headers: {
        accept: "application/graphql-response+json",
        ...(init.body ? { "content-type": "application/json" } : {}),
        ...init.headers,
      },
      body: init.body ? JSON.stringify(init.body) : undefined,
    }),
    { from: init.from },
  );
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null };
}

test("the generated clients and manifests are up to date with the operations and the schema", async () => {
  const files = await generate({ ...codegenConfig, cwd: new URL("../..", import.meta.url).pathname }, false);
  expect(files.length).toBe(8);
  for (const file of files) {
    const committed = readFileSync(new URL(`../../${file.filename}`, import.meta.url), "utf8");
    expect(committed, `${file.filename} is stale: run npm run codegen`).toBe(file.content);
  }
  // Every manifest key is the SHA-256 of its document: what the server checks.
  for (const [id, document] of Object.entries({ ...mobile, ...web })) expect(id).toBe(`sha256:${sha256(document)}`);
});

describe.each(["open", "apq"] as const)("policy %s: Automatic Persisted Queries", (policy) => {
  let instance: Instance;
  beforeAll(async () => {
    instance = await startInstance({ PERSISTED_QUERIES: policy });
  });
  afterAll(() => instance.close());

  test("miss, then register with the full document, then hit by hash over POST and GET", async () => {
    const query = `query Probe${policy.replace("-", "")} { explore(first: 2) { edges { node { id } } } }`;
    const extensions = { persistedQuery: { version: 1, sha256Hash: sha256(query) } };
    const miss = await send(instance, { body: { extensions } });
    expect(miss.status).toBe(404);
    expect(miss.body.errors[0]).toMatchObject({
      message: "PersistedQueryNotFound",
      extensions: { code: "PERSISTED_QUERY_NOT_FOUND" },
    });
    expect(miss.headers.get("cache-control")).toBe("no-store");
    const register = await send(instance, { body: { query, extensions } });
    expect(register.status).toBe(200);
    expect(register.body.errors).toBeUndefined();
    const hit = await send(instance, { body: { extensions } });
    expect(hit.body.errors).toBeUndefined();
    expect(hit.body.data).toEqual(register.body.data);
    const get = await send(instance, { method: "GET", search: { extensions } });
    expect(get.status).toBe(200);
    expect(get.body.data).toEqual(register.body.data);
  });

  test("a hash that is not the document's is refused and nothing is stored", async () => {
    const query = "{ explore(first: 1) { edges { cursor } } }";
    const wrong = { persistedQuery: { version: 1, sha256Hash: sha256(`${query} `) } };
    const result = await send(instance, { body: { query, extensions: wrong } });
    expect(result.status).toBe(400);
    expect(result.body.errors[0]).toMatchObject({
      message: "PersistedQueryMismatch",
      extensions: { code: "PERSISTED_QUERY_MISMATCH" },
    });
    expect((await send(instance, { body: { extensions: wrong } })).status).toBe(404);
  });

  test("documents above the size limit are refused", async () => {
    const query = `{ explore(first: 1) { edges { cursor } } } # ${"x".repeat(20_000)}`;
    const result = await send(instance, {
      body: { query, extensions: { persistedQuery: { version: 1, sha256Hash: sha256(query) } } },
    });
    expect(result.status).toBe(413);
    expect(result.body.errors[0].extensions.code).toBe("PERSISTED_QUERY_TOO_LARGE");
  });

  test("trusted documents run by documentId, with variables", async ({ alice }) => {
    const post = await createPost(alice, { caption: "trusted" });
    const { id } = idOf(web, "PublicPost");
    const result = await send(instance, { body: { documentId: id, variables: { id: post.gid } } });
    expect(result.body.data.post.caption).toBe("trusted");
  });

  test(`operations without a hash are ${policy === "open" ? "accepted" : "refused"}`, async () => {
    const result = await send(instance, { body: { query: "{ explore(first: 1) { edges { cursor } } }" } });
    if (policy === "open") expect(result.status).toBe(200);
    else {
      expect(result.status).toBe(400);
      expect(result.body.errors[0].extensions.code).toBe("PERSISTED_QUERY_NOT_ALLOWED");
    }
  });
});

describe("policy persisted-only", () => {
  let instance: Instance;
  beforeAll(async () => {
    instance = await startInstance({ PERSISTED_QUERIES: "persisted-only" });
  });
  afterAll(() => instance.close());

  test("runs the apps' documents, by documentId or hash, over POST and GET", async ({ alice }) => {
    const explore = idOf(mobile, "Explore");
    expect((await send(instance, { body: { documentId: explore.id } })).body.data.explore).toBeDefined();
    expect(
      (await send(instance, { body: { extensions: { persistedQuery: { version: 1, sha256Hash: explore.hash } } } }))
        .body.data,
    ).toBeDefined();
    const me = idOf(mobile, "Me");
    const get = await send(instance, {
      method: "GET",
      search: { documentId: me.id },
      headers: { authorization: `Bearer ${alice.token}` },
    });
    expect(get.body.data.viewer.user.handle).toBe(alice.handle);
  });

  test("refuses ad-hoc documents and registrations, with a clear error", async () => {
    const query = "{ explore(first: 50) { edges { node { id caption } } } }";
    const adHoc = await send(instance, { body: { query } });
    expect(adHoc.status).toBe(400);
    expect(adHoc.body.errors[0].extensions.code).toBe("PERSISTED_QUERY_NOT_ALLOWED");
    expect(adHoc.body.errors[0].message).toContain("only runs the operations its apps were built with");
    const registration = await send(instance, {
      body: { query, extensions: { persistedQuery: { version: 1, sha256Hash: sha256(query) } } },
    });
    expect(registration.body.errors[0].extensions.code).toBe("PERSISTED_QUERY_NOT_ALLOWED");
    const unknown = await send(instance, { body: { documentId: `sha256:${sha256(query)}` } });
    expect(unknown.status).toBe(404);
    expect(unknown.body.errors[0].extensions.code).toBe("PERSISTED_QUERY_NOT_FOUND");
    const malformed = await send(instance, { body: { documentId: "not-a-hash" } });
    expect(malformed.status).toBe(400);
  });
});

describe("GET caching", () => {
  let instance: Instance;
  beforeAll(async () => {
    instance = await startInstance({ PERSISTED_QUERIES: "persisted-only" });
  });
  afterAll(() => instance.close());

  const get = (
    name: string,
    manifest: Record<string, string>,
    variables: Record<string, unknown> = {},
    headers: Record<string, string> = {},
    from?: string,
  ) =>
    send(instance, {
      method: "GET",
      search: { documentId: idOf(manifest, name).id, variables },
      headers,
      from,
    });

  test("viewer-independent answers are public, with an ETag that gives 304", async ({ alice }) => {
    const post = await createPost(alice, { caption: "public" });
    for (const [name, manifest, variables] of [
      ["Explore", mobile, {}],
      ["PublicProfile", web, { handle: alice.handle }],
      ["PublicPost", web, { id: post.gid }],
    ] as const) {
      const first = await get(name, manifest, variables);
      expect(first.status, name).toBe(200);
      expect(first.headers.get("cache-control"), name).toBe("public, max-age=30, stale-while-revalidate=60");
      expect(first.headers.get("vary")).toBe("Accept, Authorization");
      const etag = first.headers.get("etag") as string;
      expect(etag).toMatch(/^"[\w-]{32}"$/);
      const again = await get(name, manifest, variables, { "if-none-match": etag });
      expect(again.status).toBe(304);
      expect(again.body).toBeNull();
      expect(again.headers.get("etag")).toBe(etag);
      expect(again.headers.get("cache-control")).toBe(first.headers.get("cache-control"));
      // Another tag, or `*` ("whatever you have"), is not this answer's: the answer itself.
      for (const other of ["*", '"0000"', 'W/"*"']) {
        // (From a client of its own: these are charged, and the file's other tests share its budget.)
        const full = await get(name, manifest, variables, { "if-none-match": other }, "127.7.1.1");
        expect([full.status, full.headers.get("etag")], `${name} with If-None-Match: ${other}`).toEqual([200, etag]);
        expect(full.body).not.toBeNull();
      }
    }
  });

  test("anything that depends on the viewer is private; errors are never cached", async ({ alice }) => {
    const signedIn = await get("Explore", mobile, {}, { authorization: `Bearer ${alice.token}` });
    expect(signedIn.headers.get("cache-control")).toBe("private, no-cache");
    const feed = await get("Feed", mobile, {}, { authorization: `Bearer ${alice.token}` });
    expect(feed.headers.get("cache-control")).toBe("private, no-cache");
    // Signed out, but the document asks for viewer fields (the web explore selects viewerHasLiked): not shared.
    const personalFields = await get("WebExplore", web);
    expect(personalFields.body.data.explore).toBeDefined();
    expect(personalFields.headers.get("cache-control")).toBe("private, no-cache");
    const profileWithViewerFields = await get("Profile", mobile, { handle: alice.handle });
    expect(profileWithViewerFields.headers.get("cache-control")).toBe("private, no-cache");
    const error = await get("Feed", mobile);
    expect(error.body.errors[0].extensions.code).toBe("UNAUTHENTICATED");
    expect(error.headers.get("cache-control")).toBe("no-store");
    const notFound = await send(instance, {
      method: "GET",
      search: { documentId: `sha256:${"0".repeat(64)}` },
    });
    expect(notFound.status).toBe(404);
    expect(notFound.headers.get("cache-control")).toBe("no-store");
  });

  test("mutations are never accepted over GET; POST responses are not cacheable", async ({ alice }) => {
    const like = await get("LikePost", mobile, { postId: "x" }, { authorization: `Bearer ${alice.token}` });
    expect(like.status).toBe(405);
    expect(like.headers.get("cache-control")).toBe("no-store");
    const post = await send(instance, { body: { documentId: idOf(web, "WebExplore").id } });
    expect(post.headers.get("cache-control")).toBe("no-store");
  });
});

test("GraphQL over HTTP: the official audit (graphql-http) passes every MUST and SHOULD", async () => {
  // The audit asks for __type: introspection is part of what it checks.
  const instance = await startInstance({ PERSISTED_QUERIES: "open", INTROSPECTION: "true" });
  try {
    const results = await auditServer({
      url: "http://shutter.test/graphql",
      fetchFn: (input: RequestInfo | URL, init?: RequestInit) => instance.fetch(new Request(input, init)),
    });
    const failures = results
      .filter((r) => r.status !== "ok")
      .map((r) => `${r.id} ${r.name}: ${r.status === "warn" || r.status === "error" ? r.reason : ""}`);
    const mustOrShould = failures.filter((f) => / (MUST|SHOULD) /.test(f) && !/ SHOULD NOT /.test(f));
    expect(results.length).toBeGreaterThan(40);
    expect(mustOrShould).toEqual([]);
  } finally {
    await instance.close();
  }
});

describe("registering a document (APQ) passes the same gate as running it", () => {
  const register = (instance: Instance, query: string, from?: string) =>
    send(instance, {
      body: { query, extensions: { persistedQuery: { version: 1, sha256Hash: sha256(query) } } },
      from,
    });
  const byHash = (instance: Instance, query: string) =>
    send(instance, { body: { extensions: { persistedQuery: { version: 1, sha256Hash: sha256(query) } } } });

  test("a document that does not parse, or that the limits refuse, is never stored", async () => {
    const instance = await startInstance();
    const broken = "{ explore(first: 1) { edges ";
    expect((await register(instance, broken)).body.errors[0].extensions.code).toBe("GRAPHQL_PARSE_FAILED");
    const costly = `{ explore(first: 50) { edges { node { comments(first: 50) { edges { node { author {
      posts(first: 50) { edges { node { id } } } } } } } } } } }`;
    expect((await register(instance, costly)).body.errors[0].extensions.code).toBe("QUERY_TOO_COMPLEX");
    for (const query of [broken, costly]) expect((await byHash(instance, query)).status).toBe(404);
    await instance.close();
  });

  test("what a client registers is charged to it by size (APQ_REGISTRATION_BYTES_PER_HOUR)", async () => {
    const instance = await startInstance({ APQ_REGISTRATION_BYTES_PER_HOUR: "1024" });
    const padded = (name: string) => `query ${name} { explore(first: 1) { edges { cursor } } } # ${"x".repeat(600)}`;
    expect((await register(instance, padded("RegisterA"), "127.7.0.1")).status).toBe(200);
    const refused = await register(instance, padded("RegisterB"), "127.7.0.1");
    expect([refused.status, refused.body.errors[0].extensions.code]).toEqual([429, "RATE_LIMITED"]);
    expect((await byHash(instance, padded("RegisterB"))).status).toBe(404);
    // Another client has its own budget; the first one's document serves everyone.
    expect((await register(instance, padded("RegisterB"), "127.7.0.2")).status).toBe(200);
    expect((await byHash(instance, padded("RegisterA"))).status).toBe(200);
    await instance.close();
  });

  test("a document already registered costs nothing again: a client sending its text every time is never refused", async () => {
    const instance = await startInstance({ APQ_REGISTRATION_BYTES_PER_HOUR: "1024" });
    const query = `query Sent { explore(first: 1) { edges { cursor } } } # ${"x".repeat(600)}`;
    // What a web client without a persisted-query link does: the hash and the text with every request.
    const statuses = [];
    for (let i = 0; i < 20; i++) statuses.push((await register(instance, query, "127.7.0.3")).status);
    expect(statuses).toEqual(Array(20).fill(200));
    // Its budget is whole for what is new to it (after the first document's 650 bytes).
    expect(
      (await register(instance, "query Small { explore(first: 1) { edges { cursor } } }", "127.7.0.3")).status,
    ).toBe(200);
    await instance.close();
  });
});
