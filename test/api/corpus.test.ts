// The bad-input corpus: malformed requests, hostile documents, forged credentials, other people's ids. Every
// case must get a clear error with the right status and code, never a 5xx, never internals, and must change
// nothing in the database.
import { createHash, randomUUID } from "node:crypto";
import { importPKCS8, SignJWT } from "jose";
import { beforeAll, describe, expect, test } from "vitest";
import { encodeCursor } from "../../src/domain/pagination.ts";
import { db } from "../../src/platform/db.ts";
import {
  createPhoto,
  createPost,
  createUser,
  ENDPOINT,
  send as fetch,
  globalId,
  ok,
  processPendingEvents,
  rowCounts,
  type TestUser,
} from "../kit/helpers.ts";
import { operationBody, operationParams } from "../kit/instances.ts";

interface Case {
  name: string;
  request: () => Request | Promise<Request>;
  status: number;
  code: string;
  /** Where the code is: a top-level error (default) or the result union of this mutation field. */
  payload?: string;
}

const JSON_TYPE = "application/graphql-response+json";
let alice: TestUser;
let bob: TestUser;
let bobsPost: { gid: string; id: string };
let bobsComment: string;
let bobsPhoto: string;
let bobsNotification: string;
let pem: string;

const post = (body: unknown, headers: Record<string, string> = {}) =>
  new Request(ENDPOINT, {
    method: "POST",
    headers: { "content-type": "application/json", accept: JSON_TYPE, ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
const op = (query: string, variables: Record<string, unknown> = {}, token?: string) =>
  post(operationBody(query, variables), token ? { authorization: `Bearer ${token}` } : {});
const as = (token: string) => ({ authorization: `Bearer ${token}` });
/** An Automatic Persisted Queries registration: the document with its hash. */
const registration = (query: string) => ({
  query,
  extensions: { persistedQuery: { version: 1, sha256Hash: createHash("sha256").update(query).digest("hex") } },
});
/** Ids of posts (that need not exist: the limits look at the request, not the data). */
const postIds = (n: number) => Array.from({ length: n }, () => globalId("Post", randomUUID()));
/** [[[…"x"…]]], `depth` arrays deep (built without recursion). */
function nestedArray(depth: number): unknown {
  let value: unknown = "x";
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

async function jwt(
  claims: Record<string, unknown>,
  options: { alg?: string; exp?: number; key?: CryptoKey | Uint8Array } = {},
) {
  const key = options.key ?? (await importPKCS8(pem, "ES256"));
  return new SignJWT({ sid: "s", ...claims })
    .setProtectedHeader({ alg: options.alg ?? "ES256" })
    .setSubject(alice.id)
    .setIssuer((claims.iss as string) ?? "shutter")
    .setAudience((claims.aud as string) ?? "shutter-api")
    .setIssuedAt()
    .setExpirationTime(options.exp ?? Math.floor(Date.now() / 1000) + 300)
    .sign(key);
}

const nested = (depth: number) =>
  `{ explore(first: 1) { edges { node { ${"author { posts(first: 1) { edges { node { ".repeat(depth)}id${" } } } }".repeat(depth)} } } } }`;
const fragmentBomb = () => {
  // Each level spreads the previous one ten times: expanded naively, 10^8 selections from ~90 tokens.
  let document = "query { explore(first: 1) { edges { node { ...F8 } } } }\nfragment F0 on Post { id }\n";
  for (let i = 1; i <= 8; i++) document += `fragment F${i} on Post { ${`...F${i - 1} `.repeat(10)}}\n`;
  return document;
};

const CASES: Case[] = [
  // HTTP and transport
  { name: "malformed JSON", request: () => post("{not json"), status: 400, code: "BAD_REQUEST" },
  {
    name: "a batch (JSON array)",
    request: () => post([{ query: "{ viewer { email } }" }]),
    status: 400,
    code: "BAD_REQUEST",
  },
  {
    name: "a JSON string instead of an object",
    request: () => post('"{ viewer { email } }"'),
    status: 400,
    code: "BAD_REQUEST",
  },
  { name: "an empty body", request: () => post(""), status: 400, code: "BAD_REQUEST" },
  { name: "no query", request: () => post({}), status: 400, code: "BAD_REQUEST" },
  { name: "query is not a string", request: () => post({ query: 5 }), status: 400, code: "BAD_REQUEST" },
  {
    name: "variables are not an object",
    request: () => post({ ...operationBody("{ viewer { email } }"), variables: "x" }),
    status: 400,
    code: "BAD_REQUEST",
  },
  {
    name: "extensions are not an object",
    request: () => post({ query: "{ viewer { email } }", extensions: 3 }),
    status: 400,
    code: "BAD_REQUEST",
  },
  // What a page on another site can make a browser POST without a CORS preflight: never run.
  {
    name: "text/plain (a cross-site POST needs no preflight)",
    request: () =>
      new Request(ENDPOINT, {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: '{"query":"mutation { logOut { __typename } }"}',
      }),
    status: 415,
    code: "UNSUPPORTED_MEDIA_TYPE",
  },
  {
    name: "a form post",
    request: () =>
      new Request(ENDPOINT, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "query=x",
      }),
    status: 415,
    code: "UNSUPPORTED_MEDIA_TYPE",
  },
  {
    name: "a multipart form post",
    request: () => {
      const form = new FormData();
      form.set("operations", JSON.stringify({ query: "mutation { logOut { __typename } }" }));
      return new Request(ENDPOINT, { method: "POST", body: form });
    },
    status: 415,
    code: "UNSUPPORTED_MEDIA_TYPE",
  },
  {
    name: "an unsupported content type",
    request: () =>
      new Request(ENDPOINT, {
        method: "POST",
        headers: { "content-type": "application/xml" },
        body: "<q/>",
      }),
    status: 415,
    code: "UNSUPPORTED_MEDIA_TYPE",
  },
  {
    name: "a mutation over GET",
    request: () =>
      new Request(`${ENDPOINT}?${new URLSearchParams(operationParams("mutation { logOut { __typename } }"))}`, {
        headers: { accept: JSON_TYPE },
      }),
    status: 405,
    code: "METHOD_NOT_ALLOWED",
  },
  {
    name: "PUT",
    request: () =>
      new Request(ENDPOINT, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: "{}",
      }),
    status: 405,
    code: "METHOD_NOT_ALLOWED",
  },
  {
    name: "a body over the size limit",
    request: () => post({ query: `{ viewer { email } } # ${"x".repeat(200_000)}` }),
    status: 413,
    code: "PAYLOAD_TOO_LARGE",
  },
  {
    name: "a streamed body over the size limit (no Content-Length)",
    request: () => {
      const chunk = new TextEncoder().encode(`${"x".repeat(64_000)}`);
      let sent = 0;
      const body = new ReadableStream({
        pull(controller) {
          if (sent++ < 5) controller.enqueue(chunk);
          else controller.close();
        },
      });
      return new Request(ENDPOINT, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        duplex: "half",
      } as RequestInit);
    },
    status: 413,
    code: "PAYLOAD_TOO_LARGE",
  },
  // Documents
  { name: "a syntax error", request: () => op("{ explore(first: 1) { "), status: 400, code: "GRAPHQL_PARSE_FAILED" },
  { name: "an unknown field", request: () => op("{ passwords }"), status: 400, code: "GRAPHQL_VALIDATION_FAILED" },
  {
    name: "an unknown operation name",
    request: () => post({ ...operationBody("query A { viewer { email } }"), operationName: "B" }),
    status: 400,
    code: "OPERATION_RESOLUTION_FAILURE",
  },
  {
    name: "two anonymous operations",
    request: () => op("{ viewer { email } } { viewer { email } }"),
    status: 400,
    code: "OPERATION_RESOLUTION_FAILURE",
  },
  {
    name: "a huge document (token limit)",
    request: () => op(`{ ${"viewer { email } ".repeat(800)} }`),
    status: 400,
    code: "GRAPHQL_PARSE_FAILED",
  },
  { name: "deep nesting", request: () => op(nested(4)), status: 400, code: "GRAPHQL_VALIDATION_FAILED" },
  {
    name: "an alias bomb",
    request: () =>
      op(`{ ${Array.from({ length: 100 }, (_, i) => `a${i}: explore(first: 1) { edges { cursor } }`).join(" ")} }`),
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
  },
  { name: "a fragment bomb", request: () => op(fragmentBomb()), status: 400, code: "QUERY_TOO_COMPLEX" },
  {
    name: "a fragment cycle",
    request: () =>
      op(
        "{ explore(first: 1) { edges { node { ...A } } } } fragment A on Post { author { posts(first: 1) { edges { node { ...A } } } } }",
      ),
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
  },
  {
    name: "a directive flood",
    request: () => op(`{ viewer { email ${"@include(if: true) ".repeat(50)} } }`),
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
  },
  {
    name: "a page-size multiplication over the cost limit",
    request: () =>
      op(
        "{ explore(first: 50) { edges { node { comments(first: 50) { edges { node { author { posts(first: 50) { edges { node { id } } } } } } } } } } }",
      ),
    status: 400,
    code: "QUERY_TOO_COMPLEX",
  },
  {
    name: "a variable of the wrong type",
    request: () => op("query ($f: Int) { explore(first: $f) { edges { cursor } } }", { f: "ten" }),
    status: 400,
    code: "BAD_REQUEST",
  },
  {
    name: "a missing required variable",
    request: () => op("query ($id: ID!) { post(id: $id) { id } }"),
    status: 400,
    code: "BAD_REQUEST",
  },
  {
    name: "an integer overflow",
    request: () => op("query ($f: Int) { explore(first: $f) { edges { cursor } } }", { f: 2 ** 40 }),
    status: 400,
    code: "BAD_REQUEST",
  },
  {
    name: "a NUL character in a variable",
    request: () => op("query ($h: String!) { user(handle: $h) { id } }", { h: "abc\u0000def" }),
    status: 400,
    code: "BAD_USER_INPUT",
  },
  {
    name: "a NUL character in a literal",
    request: () => op('{ searchUsers(prefix: "ab\\u0000") { edges { cursor } } }'),
    status: 400,
    code: "BAD_USER_INPUT",
  },
  // Variables of any shape: deep or huge ones are a malformed request, not a crash
  {
    name: "variables nested 1000 levels deep",
    request: () => op("query ($ids: [ID!]) { nodes(ids: $ids) { id } }", { ids: nestedArray(1000) }),
    status: 400,
    code: "BAD_REQUEST",
  },
  {
    name: "variables with 20,000 values",
    request: () =>
      op("query ($ids: [ID!]!) { nodes(ids: $ids) { id } }", { ids: Array.from({ length: 20_000 }, () => "x") }),
    status: 400,
    code: "BAD_REQUEST",
  },
  // Lists priced by their real size, and capped
  {
    name: "nodes(ids:) with more ids than it takes",
    request: () => op("query ($ids: [ID!]!) { nodes(ids: $ids) { id } }", { ids: postIds(101) }),
    status: 400,
    code: "BAD_USER_INPUT",
  },
  {
    name: "nodes(ids:) priced per id: 100 ids with a nested page each",
    request: () =>
      op(
        "query ($ids: [ID!]!) { nodes(ids: $ids) { ... on Post { comments(first: 50) { edges { node { id } } } } } }",
        { ids: postIds(100) },
      ),
    status: 400,
    code: "QUERY_TOO_COMPLEX",
  },
  {
    // GraphQL runs the selection once per copy (a page query each): each copy is paid for.
    name: "nodes(ids:) with one id repeated 100 times, a nested page each",
    request: () =>
      op(
        "query ($ids: [ID!]!) { nodes(ids: $ids) { ... on Post { comments(first: 20) { edges { node { id } } } } } }",
        { ids: Array.from({ length: 100 }, () => bobsPost.gid) },
      ),
    status: 400,
    code: "QUERY_TOO_COMPLEX",
  },
  {
    name: "a post with more photos than a post has (refused before anything runs)",
    request: () =>
      op(
        "mutation ($ids: [ID!]!) { createPost(input: { photoIds: $ids }) { __typename } }",
        { ids: Array.from({ length: 11 }, () => bobsPhoto) },
        alice.token,
      ),
    status: 400,
    code: "BAD_USER_INPUT",
  },
  {
    name: "marking more notifications read than one call takes",
    request: () =>
      op(
        "mutation ($ids: [ID!]) { markNotificationsRead(input: { ids: $ids }) { __typename } }",
        { ids: Array.from({ length: 101 }, () => bobsNotification) },
        alice.token,
      ),
    status: 400,
    code: "BAD_USER_INPUT",
  },
  // Every way in passes the same gate: subscriptions and registrations too
  {
    name: "a subscription over the cost limit",
    request: () =>
      post(
        operationBody(
          "subscription { notificationAdded { post { comments(first: 50) { edges { node { author { posts(first: 50) { edges { node { id } } } } } } } } } }",
        ),
        { ...as(alice.token), accept: "application/graphql-response+json" },
      ),
    status: 400,
    code: "QUERY_TOO_COMPLEX",
  },
  {
    name: "a NUL character in a subscription's variables",
    request: () =>
      post(
        operationBody(
          "subscription ($c: String) { notificationAdded { post { comments(first: 1, after: $c) { edges { cursor } } } } }",
          { c: "a\u0000b" },
        ),
        as(alice.token),
      ),
    status: 400,
    code: "BAD_USER_INPUT",
  },
  {
    name: "registering (APQ) a document that does not parse",
    request: () => post(registration("{ explore(first: 1) { ")),
    status: 400,
    code: "GRAPHQL_PARSE_FAILED",
  },
  {
    name: "registering (APQ) a document over the cost limit",
    request: () =>
      post(
        registration(
          "{ explore(first: 50) { edges { node { comments(first: 50) { edges { node { author { posts(first: 50) { edges { node { id } } } } } } } } } } }",
        ),
      ),
    status: 400,
    code: "QUERY_TOO_COMPLEX",
  },
  // Cursors are checked value by value: nothing a client makes up reaches SQL
  ...[
    ["a time that is a string", ["yesterday", "0190a9c4-0000-7000-8000-000000000000"]],
    ["a time beyond what a date holds", [1e300, "0190a9c4-0000-7000-8000-000000000000"]],
    ["an id that is no UUID", [Date.now(), "x' OR 1=1 --"]],
    ["a fraction for a count", [1.5, Date.now(), "0190a9c4-0000-7000-8000-000000000000"]],
  ].map(([what, key]) => ({
    name: `a cursor with ${what}`,
    request: () =>
      op(
        "query ($c: String) { feed(first: 2, after: $c) { edges { cursor } } }",
        { c: encodeCursor(key as never) },
        alice.token,
      ),
    status: 200,
    code: "BAD_USER_INPUT",
  })),
  // …within what their SQL types hold, not only what JavaScript's numbers do
  ...[
    ["a count beyond int4", [3e9, Date.now(), "0190a9c4-0000-7000-8000-000000000000"]],
    ["a time before 1970 that no timestamptz holds", [1, -8e15, "0190a9c4-0000-7000-8000-000000000000"]],
  ].map(([what, key]) => ({
    name: `a cursor of explore with ${what}`,
    request: () =>
      op("query ($c: String) { explore(first: 2, after: $c) { edges { cursor } } }", {
        c: encodeCursor(key as never),
      }),
    status: 200,
    code: "BAD_USER_INPUT",
  })),
  {
    name: "a cursor of explore with a negative count",
    request: () =>
      op("query ($c: String) { explore(first: 2, after: $c) { edges { cursor } } }", {
        c: encodeCursor([-1, Date.now(), "0190a9c4-0000-7000-8000-000000000000"]),
      }),
    status: 200,
    code: "BAD_USER_INPUT",
  },
  {
    name: "a content type named after an object's property",
    request: () =>
      op(
        'mutation { createUpload(input: { contentType: "constructor", byteSize: 100, purpose: POST_PHOTO }) { __typename ... on Error { code } } }',
        {},
        alice.token,
      ),
    status: 200,
    code: "BAD_USER_INPUT",
    payload: "createUpload",
  },
  // Text that would render as something it is not
  ...[
    ["a right-to-left override", "Ana\u202Eevil"],
    ["a zero-width space", "Sup\u200Bport"],
    ["a check mark posing as a verified badge", "Shutter Support \u2714"],
    ["a control character", "Ana\u0007"],
    ["stacked accents", "Ana\u0301\u0301\u0301\u0301\u0301"],
  ].map(([what, displayName]) => ({
    name: `a display name with ${what}`,
    request: () =>
      op(
        "mutation ($name: String!) { updateProfile(input: { displayName: $name }) { __typename ... on Error { code } } }",
        { name: displayName },
        alice.token,
      ),
    status: 200,
    code: "BAD_USER_INPUT",
    payload: "updateProfile",
  })),
  {
    name: "a comment with a direction isolate",
    request: () =>
      op(
        "mutation ($id: ID!, $body: String!) { addComment(input: { postId: $id, body: $body }) { __typename ... on Error { code } } }",
        { id: bobsPost.gid, body: "nice\u2066photo" },
        alice.token,
      ),
    status: 200,
    code: "BAD_USER_INPUT",
    payload: "addComment",
  },
  {
    name: "a bio with a byte-order mark",
    request: () =>
      op(
        "mutation ($bio: String!) { updateProfile(input: { bio: $bio }) { __typename ... on Error { code } } }",
        { bio: "hel\uFEFFlo" },
        alice.token,
      ),
    status: 200,
    code: "BAD_USER_INPUT",
    payload: "updateProfile",
  },
  // Pages, cursors and ids
  {
    name: "an oversized page",
    request: () => op("{ explore(first: 1000) { edges { cursor } } }"),
    status: 200,
    code: "BAD_USER_INPUT",
  },
  {
    name: "a negative page size",
    request: () => op("{ explore(first: -1) { edges { cursor } } }"),
    status: 200,
    code: "BAD_USER_INPUT",
  },
  {
    name: "a made-up cursor",
    request: () => op('{ explore(first: 2, after: "bm9wZQ") { edges { cursor } } }'),
    status: 200,
    code: "BAD_USER_INPUT",
  },
  {
    name: "a cursor from another list",
    request: () =>
      op("query ($c: String) { explore(first: 2, after: $c) { edges { cursor } } }", { c: encodeCursor([1, "x"]) }),
    status: 200,
    code: "BAD_USER_INPUT",
  },
  {
    name: "a malformed global id",
    request: () => op('{ post(id: "%%%") { id } }'),
    status: 200,
    code: "BAD_USER_INPUT",
  },
  {
    name: "a global id of another type",
    request: () => op("query ($id: ID!) { post(id: $id) { id } }", { id: alice.gid }),
    status: 200,
    code: "BAD_USER_INPUT",
  },
  // Credentials
  {
    name: "a forged signature",
    request: async () => op("{ viewer { email } }", {}, `${alice.token.slice(0, -6)}AAAAAA`),
    status: 401,
    code: "UNAUTHENTICATED",
  },
  {
    name: "an expired token",
    request: async () => op("{ viewer { email } }", {}, await jwt({}, { exp: Math.floor(Date.now() / 1000) - 10 })),
    status: 401,
    code: "UNAUTHENTICATED",
  },
  {
    name: "alg: none",
    request: () => {
      const [, payload] = alice.token.split(".");
      return op(
        "{ viewer { email } }",
        {},
        `${Buffer.from('{"alg":"none","typ":"JWT"}').toString("base64url")}.${payload}.`,
      );
    },
    status: 401,
    code: "UNAUTHENTICATED",
  },
  {
    name: "a token signed with another key",
    request: async () => {
      const { privateKey } = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
        "sign",
      ])) as CryptoKeyPair;
      return op("{ viewer { email } }", {}, await jwt({}, { key: privateKey }));
    },
    status: 401,
    code: "UNAUTHENTICATED",
  },
  {
    name: "a token of another issuer",
    request: async () => op("{ viewer { email } }", {}, await jwt({ iss: "evil" })),
    status: 401,
    code: "UNAUTHENTICATED",
  },
  {
    name: "a token for another audience",
    request: async () => op("{ viewer { email } }", {}, await jwt({ aud: "other-api" })),
    status: 401,
    code: "UNAUTHENTICATED",
  },
  {
    name: "HS256 keyed with the public key (algorithm confusion)",
    request: async () => {
      const jwks = await (await fetch(new Request("http://shutter.test/.well-known/jwks.json"))).json();
      return op(
        "{ viewer { email } }",
        {},
        await jwt({}, { alg: "HS256", key: new TextEncoder().encode(JSON.stringify(jwks.keys[0])) }),
      );
    },
    status: 401,
    code: "UNAUTHENTICATED",
  },
  {
    name: "a malformed Authorization header",
    request: () => post(operationBody("{ viewer { email } }"), { authorization: "Token abc" }),
    status: 401,
    code: "UNAUTHENTICATED",
  },
  {
    name: "an unknown refresh token",
    request: () =>
      op('mutation { refreshSession(input: { refreshToken: "guess" }) { __typename ... on Error { code } } }'),
    status: 200,
    code: "UNAUTHENTICATED",
    payload: "refreshSession",
  },
  // Other people's things in every mutation that takes an id
  {
    name: "deleting someone else's post",
    request: () =>
      op(
        "mutation ($id: ID!) { deletePost(input: { postId: $id }) { __typename ... on Error { code } } }",
        { id: bobsPost.gid },
        alice.token,
      ),
    status: 200,
    code: "FORBIDDEN",
    payload: "deletePost",
  },
  {
    name: "deleting someone else's comment",
    request: () =>
      op(
        "mutation ($id: ID!) { deleteComment(input: { commentId: $id }) { __typename ... on Error { code } } }",
        { id: bobsComment },
        alice.token,
      ),
    status: 200,
    code: "FORBIDDEN",
    payload: "deleteComment",
  },
  {
    name: "posting someone else's photo",
    request: () =>
      op(
        "mutation ($id: ID!) { createPost(input: { photoIds: [$id] }) { __typename ... on Error { code } } }",
        { id: bobsPhoto },
        alice.token,
      ),
    status: 200,
    code: "FORBIDDEN",
    payload: "createPost",
  },
  {
    name: "someone else's photo as avatar",
    request: () =>
      op(
        "mutation ($id: ID!) { updateProfile(input: { avatarPhotoId: $id }) { __typename ... on Error { code } } }",
        { id: bobsPhoto },
        alice.token,
      ),
    status: 200,
    code: "FORBIDDEN",
    payload: "updateProfile",
  },
  {
    name: "a photo id where a post id goes",
    request: () =>
      op(
        "mutation ($id: ID!) { likePost(input: { postId: $id }) { __typename ... on Error { code } } }",
        { id: bobsPhoto },
        alice.token,
      ),
    status: 200,
    code: "BAD_USER_INPUT",
  },
  {
    name: "liking a post that doesn't exist",
    request: () =>
      op(
        "mutation ($id: ID!) { likePost(input: { postId: $id }) { __typename ... on Error { code } } }",
        { id: globalId("Post", "00000000-0000-7000-8000-000000000000") },
        alice.token,
      ),
    status: 200,
    code: "NOT_FOUND",
    payload: "likePost",
  },
  {
    name: "commenting on a post that doesn't exist",
    request: () =>
      op(
        'mutation ($id: ID!) { addComment(input: { postId: $id, body: "hi" }) { __typename ... on Error { code } } }',
        { id: globalId("Post", "0190d1a5-0000-7000-8000-000000000000") },
        alice.token,
      ),
    status: 200,
    code: "NOT_FOUND",
    payload: "addComment",
  },
  {
    name: "following someone who doesn't exist",
    request: () =>
      op(
        "mutation ($id: ID!) { follow(input: { userId: $id }) { __typename ... on Error { code } } }",
        { id: globalId("User", "not-a-uuid") },
        alice.token,
      ),
    status: 200,
    code: "NOT_FOUND",
    payload: "follow",
  },
  {
    name: "unfollowing someone who doesn't exist",
    request: () =>
      op(
        "mutation ($id: ID!) { unfollow(input: { userId: $id }) { __typename ... on Error { code } } }",
        { id: globalId("User", "00000000-0000-7000-8000-000000000000") },
        alice.token,
      ),
    status: 200,
    code: "NOT_FOUND",
    payload: "unfollow",
  },
  // Inputs
  {
    name: "a handle that isn't one",
    request: () =>
      op(
        'mutation { signUp(input: { handle: "no way!", displayName: "x", email: "x@y.z", password: "long enough" }) { __typename ... on Error { code } } }',
      ),
    status: 200,
    code: "BAD_USER_INPUT",
    payload: "signUp",
  },
  {
    name: "a comment that is too long",
    request: () =>
      op(
        "mutation ($id: ID!, $b: String!) { addComment(input: { postId: $id, body: $b }) { __typename ... on Error { code } } }",
        { id: bobsPost.gid, b: "x".repeat(5000) },
        alice.token,
      ),
    status: 200,
    code: "BAD_USER_INPUT",
    payload: "addComment",
  },
  {
    name: "a caption that is too long",
    request: () =>
      op(
        "mutation ($id: ID!, $c: String!) { createPost(input: { photoIds: [$id], caption: $c }) { __typename ... on Error { code } } }",
        { id: bobsPhoto, c: "x".repeat(3000) },
        alice.token,
      ),
    status: 200,
    code: "BAD_USER_INPUT",
    payload: "createPost",
  },
  {
    name: "an empty search",
    request: () => op('{ searchUsers(prefix: "  ") { edges { cursor } } }'),
    status: 200,
    code: "BAD_USER_INPUT",
  },
];

beforeAll(async () => {
  pem = process.env.JWT_PRIVATE_KEY as string;
  alice = await createUser();
  bob = await createUser();
  bobsPost = await createPost(bob);
  bobsPhoto = (await createPhoto(bob.id)).gid;
  bobsComment = (
    await ok(
      `mutation ($id: ID!) { addComment(input: { postId: $id, body: "mine" }) { ... on AddCommentSuccess { comment { id } } } }`,
      { id: bobsPost.gid },
      { token: bob.token },
    )
  ).addComment.comment.id;
  await ok(
    `mutation ($id: ID!) { follow(input: { userId: $id }) { __typename } }`,
    { id: bob.gid },
    { token: alice.token },
  );
  await processPendingEvents();
  bobsNotification = (
    await ok(`{ viewer { notifications(first: 1) { edges { node { id } } } } }`, {}, { token: bob.token })
  ).viewer.notifications.edges[0].node.id;
});

/** Everything a bad request could change: row counts and the rows' last modification. */
async function state() {
  const [counts, [latest]] = await Promise.all([
    rowCounts(),
    db().$queryRaw<{ users: Date; posts: Date; sessions: Date | null; notifications: Date | null }[]>`
      SELECT (SELECT max(updated_at) FROM users) AS users, (SELECT max(updated_at) FROM posts) AS posts,
        (SELECT max(last_used_at) FROM sessions) AS sessions, (SELECT max(read_at) FROM notifications) AS notifications`,
  ]);
  return { counts, latest };
}

describe(`the bad-input corpus (${CASES.length} cases)`, () => {
  test.each(CASES)("$name → $status $code", async ({ request, status, code, payload }) => {
    const before = await state();
    const response = await fetch(await request());
    const text = await response.text();
    expect(response.status).toBe(status);
    expect(response.status).toBeLessThan(500);
    const body = JSON.parse(text);
    const requestId = response.headers.get("x-request-id");
    expect(requestId).toBeTruthy();
    if (payload) {
      expect(body.errors).toBeUndefined();
      expect(body.data[payload].code).toBe(code);
    } else {
      expect(body.errors?.length).toBeGreaterThan(0);
      for (const error of body.errors) {
        expect(typeof error.message).toBe("string");
        expect(error.extensions.requestId).toBe(requestId);
      }
      expect(body.errors.map((e: { extensions: { code: string } }) => e.extensions.code)).toContain(code);
    }
    for (const leak of ["stack", "at /", "node_modules", "SELECT ", "prisma", "originalError", pem.slice(30, 60)]) {
      expect(text).not.toContain(leak);
    }
    expect(await state()).toEqual(before);
  });

  test("other people's notifications cannot be marked read", async () => {
    const before = await state();
    const result = await ok(
      `mutation ($ids: [ID!]) { markNotificationsRead(input: { ids: $ids }) { __typename } }`,
      { ids: [bobsNotification] },
      { token: alice.token },
    );
    expect(result.markNotificationsRead.__typename).toBe("MarkNotificationsReadSuccess");
    expect(await state()).toEqual(before);
  });

  test("a replayed refresh token is refused, and revokes that session and nothing else", async () => {
    const victim = await createUser();
    const refresh = `mutation ($t: String!) { refreshSession(input: { refreshToken: $t }) { __typename ... on Error { code } } }`;
    await ok(refresh, { t: victim.refreshToken });
    const before = await rowCounts();
    const replay = await ok(refresh, { t: victim.refreshToken });
    expect(replay.refreshSession).toEqual({ __typename: "UnauthenticatedError", code: "UNAUTHENTICATED" });
    expect(await rowCounts()).toEqual(before);
    const sessions = await db().session.findMany({ where: { revokedAt: { not: null } } });
    expect(sessions.map((s) => s.userId)).toEqual([victim.id]);
    expect(as(victim.token).authorization).toContain("Bearer");
  });
});
