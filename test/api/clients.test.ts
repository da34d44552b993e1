// Real clients as they ship, with their default options (and only the settings docs/clients.md
// tells users to set), against the function over HTTP on every target. Apollo Client has its own file
// (apollo.test.ts).
import { readFileSync } from "node:fs";
import { generate } from "@graphql-codegen/cli";
import { Client, cacheExchange, fetchExchange, gql } from "@urql/core";
import { persistedExchange } from "@urql/exchange-persisted";
import { ClientError, GraphQLClient } from "graphql-request";
import { afterAll, beforeAll, describe, expect } from "vitest";
import mobile from "../../clients/mobile/generated/persisted-documents.json" with { type: "json" };
import codegenConfig from "../../codegen.ts";
import { createPost, multipartParts, test } from "../kit/helpers.ts";
import { type Instance, RESPONSES_STREAM, startInstance } from "../kit/instances.ts";

interface Exchange {
  method: string;
  query: boolean;
  hash: boolean;
  status: number;
  headers: Record<string, string>;
}

/** A fetch that records what went over the wire (what the client sent, what came back), and nothing else. */
function recording() {
  const wire: Exchange[] = [];
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const url = new URL(String(input instanceof Request ? input.url : input));
    const body = typeof init?.body === "string" ? JSON.parse(init.body) : {};
    const response = await globalThis.fetch(input, init);
    wire.push({
      method: init?.method ?? "GET",
      query: Boolean(body.query ?? url.searchParams.get("query")),
      hash: Boolean(body.extensions?.persistedQuery ?? url.searchParams.get("extensions")?.includes("sha256Hash")),
      status: response.status,
      headers: Object.fromEntries(new Headers(init?.headers)),
    });
    return response;
  };
  return { wire, fetch };
}

const POST = gql`
  query ClientsPost($id: ID!) {
    post(id: $id) { id caption likeCount }
  }
`;
const LIKE = gql`
  mutation ClientsLike($id: ID!) {
    likePost(input: { postId: $id }) { __typename ... on LikePostSuccess { post { likeCount viewerHasLiked } } }
  }
`;

describe("urql", () => {
  test("with the persisted exchange (its defaults): persisted queries over GET, no extra header", async ({ alice }) => {
    const instance = await startInstance();
    const post = await createPost(alice, { caption: "through urql" });
    const { wire, fetch } = recording();
    const client = new Client({
      url: await instance.url(),
      exchanges: [cacheExchange, persistedExchange(), fetchExchange],
      fetch,
      requestPolicy: "network-only",
    });
    const first = await client.query(POST, { id: post.gid }).toPromise();
    expect(first.error).toBeUndefined();
    expect(first.data.post).toMatchObject({ caption: "through urql", likeCount: 0 });
    const again = await client.query(POST, { id: post.gid }).toPromise();
    expect(again.data).toEqual(first.data);
    // The first asks by hash (unknown: 404), the next carries the document once; from then on, a GET by hash.
    expect(wire[0]).toMatchObject({ method: "GET", query: false, hash: true, status: 404 });
    expect(wire.at(-1)).toMatchObject({ method: "GET", query: false, hash: true, status: 200 });
    for (const exchange of wire) expect(Object.keys(exchange.headers)).not.toContain("x-graphql-yoga-csrf");

    // Signed in: the bearer token is the one setting an app adds.
    const signedIn = new Client({
      url: await instance.url(),
      exchanges: [cacheExchange, persistedExchange(), fetchExchange],
      fetch,
      fetchOptions: { headers: { authorization: `Bearer ${alice.token}` } },
    });
    const liked = await signedIn.mutation(LIKE, { id: post.gid }).toPromise();
    expect(liked.error).toBeUndefined();
    expect(liked.data.likePost.post).toMatchObject({ likeCount: 1, viewerHasLiked: true });
    await instance.close();
  });

  test("with no exchange configured (queries as GET within the URL limit), where documents are open", async ({
    alice,
  }) => {
    const instance = await startInstance({ PERSISTED_QUERIES: "open" });
    const post = await createPost(alice, { caption: "plain urql" });
    const { wire, fetch } = recording();
    const client = new Client({ url: await instance.url(), exchanges: [fetchExchange], fetch });
    const read = await client.query(POST, { id: post.gid }).toPromise();
    expect(read.error).toBeUndefined();
    expect(read.data.post.caption).toBe("plain urql");
    const liked = await client.mutation(LIKE, { id: post.gid }, { fetchOptions: authorized(alice.token) }).toPromise();
    expect(liked.data.likePost.post.likeCount).toBe(1);
    expect(wire.map(({ method, status }) => [method, status])).toEqual([
      ["GET", 200],
      ["POST", 200],
    ]);
    await instance.close();
  });
});

const authorized = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

describe("graphql-request", () => {
  let instance: Instance;
  beforeAll(async () => {
    instance = await startInstance({ PERSISTED_QUERIES: "open" });
  });
  afterAll(() => instance.close());

  test("with its defaults, where documents are open (POSTs of whole documents)", async ({ alice }) => {
    const post = await createPost(alice, { caption: "graphql-request" });
    const client = new GraphQLClient(await instance.url());
    const read = await client.request<{ post: { caption: string } }>(`query ($id: ID!) { post(id: $id) { caption } }`, {
      id: post.gid,
    });
    expect(read.post.caption).toBe("graphql-request");
    const liked = await client.request<{ likePost: { post: { likeCount: number } } }>(
      `mutation ($id: ID!) { likePost(input: { postId: $id }) { ... on LikePostSuccess { post { likeCount } } } }`,
      { id: post.gid },
      { authorization: `Bearer ${alice.token}` },
    );
    expect(liked.likePost.post.likeCount).toBe(1);
  });

  test("under the apq policy a whole document is refused, saying what to send instead", async () => {
    const apq = await startInstance({ PERSISTED_QUERIES: "apq" });
    const client = new GraphQLClient(await apq.url());
    const error = await client.request(`{ explore(first: 1) { edges { cursor } } }`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClientError);
    const { response } = error as ClientError;
    expect(response.status).toBe(400);
    expect(response.errors?.[0]?.message).toMatch(/Automatic Persisted Queries .* or by documentId/);
    await apq.close();
  });
});

describe("the mobile apps' request shape (Apollo Kotlin, Apollo iOS)", () => {
  // What Apollo Kotlin 4 and Apollo iOS 1.x send for a persisted query with `useGetMethodForPersistedQueries`:
  // a GET with the APQ extension, their operation headers and an Accept that offers incremental delivery.
  const headers = (operation: string) => ({
    "x-apollo-operation-name": operation,
    "apollographql-client-name": "shutter-android",
    "apollographql-client-version": "1.4.0",
    accept: "multipart/mixed;deferSpec=20220824, application/graphql-response+json, application/json",
    "user-agent": "okhttp/4.12.0",
  });
  const hashOf = (name: string) => {
    const entry = Object.entries(mobile).find(([, document]) => new RegExp(`query ${name}\\b`).test(document));
    return (entry?.[0] ?? "").replace("sha256:", "");
  };

  test("a persisted query by hash over GET, signed in and out: JSON and cacheable, or in parts where deferred", async ({
    alice,
  }) => {
    const instance = await startInstance();
    const post = await createPost(alice, { caption: "on the phone" });
    const get = (name: string, variables: Record<string, unknown>, extra: Record<string, string> = {}) => {
      const search = new URLSearchParams({
        operationName: name,
        variables: JSON.stringify(variables),
        extensions: JSON.stringify({ persistedQuery: { version: 1, sha256Hash: hashOf(name) } }),
      });
      return instance.fetch(`/graphql?${search}`, { headers: { ...headers(name), ...extra } });
    };
    const explore = await get("Explore", { first: 5 });
    expect(explore.status).toBe(200);
    expect(explore.headers.get("content-type")).toMatch(/^application\/graphql-response\+json/);
    expect(explore.headers.get("cache-control")).toMatch(/^public/);
    expect((await explore.json()).data.explore.edges).toEqual(expect.any(Array));

    // The post and the feed defer what is below the photos: where the deployment streams, the app (whose Accept
    // offers parts) gets them in parts — the photos first — and such an answer is not cacheable; elsewhere whole.
    const detail = await get("PostDetail", { id: post.gid });
    expect(detail.status).toBe(200);
    const detailParts = RESPONSES_STREAM ? await multipartParts(detail) : [await detail.json()];
    expect(detailParts[0]?.data.post).toMatchObject({ caption: "on the phone", photos: [expect.anything()] });
    // (Whole, it selects viewerHasLiked: personal, so private.)
    expect(detail.headers.get("cache-control")).toBe(RESPONSES_STREAM ? "no-store" : "private, no-cache");
    expect(detailParts.length > 1).toBe(RESPONSES_STREAM);

    const feed = await get("Feed", { first: 10 }, authorized(alice.token).headers);
    expect(feed.status).toBe(200);
    expect(feed.headers.get("cache-control")).toBe(RESPONSES_STREAM ? "no-store" : "private, no-cache");
    const feedParts = RESPONSES_STREAM ? await multipartParts(feed) : [await feed.json()];
    expect(feedParts[0]?.data.feed.edges[0].node.caption).toBe("on the phone");
    await instance.close();
  });
});

test("GraphQL Code Generator generates the clients' types from the running server's URL", async () => {
  // Development serves introspection by default; a deployment must turn it on (INTROSPECTION=true).
  const instance = await startInstance({ INTROSPECTION: "true" });
  const root = new URL("../..", import.meta.url).pathname;
  const files: { filename: string; content: string }[] = await generate(
    { ...codegenConfig, schema: await instance.url(), cwd: root },
    false,
  );
  expect(files.map((file) => file.filename).sort()).toEqual(
    (await generate({ ...codegenConfig, cwd: root }, false)).map((file: { filename: string }) => file.filename).sort(),
  );
  for (const file of files) {
    expect(file.content, `${file.filename} from the URL`).toBe(readFileSync(`${root}${file.filename}`, "utf8"));
  }
  await instance.close();
});
