// @defer and @stream through the real entry: parts over multipart/mixed (what Apollo Client and urql ask for) and
// text/event-stream where the deployment streams, the whole answer in one JSON response to clients that ask for
// JSON and wherever the deployment answers once (the buffered Lambda integrations); what changes nothing
// (mutations refuse them), what is masked (errors of deferred parts), what is charged and what is never cached.
import { ApolloClient, gql as apolloGql, HttpLink, InMemoryCache } from "@apollo/client";
import { Defer20220824Handler } from "@apollo/client/incremental";
import { Client, fetchExchange } from "@urql/core";
import { describe, expect } from "vitest";
import { emptyDatabase } from "../kit/databases.ts";
import { createPost, ENDPOINT, gql, multipartParts, type Part, rowCounts, send, target, test } from "../kit/helpers.ts";
import { operationBody, RESPONSES_STREAM, startInstance } from "../kit/instances.ts";
import { mobile } from "../kit/operations.ts";

/** The buffered Lambda integrations answer once: every deferred answer arrives whole, as JSON. */
const STREAMS = RESPONSES_STREAM;

const POST = `query DeferredPost($id: ID!) {
  post(id: $id) {
    id
    caption
    ... @defer(label: "below") {
      likeCount
      commentCount
      comments(first: 5) { edges { node { body } } }
    }
  }
}`;
/** The same screen, not deferred: what the parts must add up to. */
const WHOLE_POST = POST.replace('... @defer(label: "below") {', "... {").replace("DeferredPost", "WholePost");

const EXPLORE = `query StreamedExplore {
  explore(first: 3) { edges @stream(initialCount: 1) { node { id caption } } }
}`;

function request(query: string, variables: Record<string, unknown>, accept: string, token?: string) {
  return new Request(ENDPOINT, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept,
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(operationBody(query, variables)),
  });
}

/** The `next` events of a text/event-stream answer, until `complete`. */
async function eventStreamParts(response: Response): Promise<Part[]> {
  const text = await response.text();
  const events = text.split("\n\n").filter((block) => block.trim());
  expect(events.at(-1)).toMatch(/^event: complete/);
  return events
    .filter((block) => block.startsWith("event: next"))
    .map((block) =>
      JSON.parse(
        block
          .split("\n")
          .find((line) => line.startsWith("data: "))
          ?.slice(6) ?? "null",
      ),
    );
}

/** What the parts add up to: each deferred part's data at its path, each streamed item appended to its list. */
function assemble(parts: Part[]) {
  const [first, ...rest] = parts;
  const data = structuredClone(first?.data);
  for (const part of rest) {
    for (const item of part.incremental ?? []) {
      let at = data;
      for (const key of item.path.slice(0, item.items ? -1 : undefined)) at = at[key];
      if (item.items) at.push(...item.items);
      else Object.assign(at, item.data);
    }
  }
  return data;
}

describe("a deferred query", () => {
  test("arrives in parts, in order, over multipart/mixed where the deployment streams; whole elsewhere", async ({
    alice,
    bob,
  }) => {
    const post = await createPost(alice, { caption: "deferred" });
    await mobile.addComment(bob, { postId: post.gid, body: "first!" });
    const whole = await gql(WHOLE_POST, { id: post.gid }, { token: bob.token });
    expect(whole.data?.post.comments.edges).toHaveLength(1);

    const response = await send(request(POST, { id: post.gid }, "multipart/mixed, application/json", bob.token));
    expect(response.status).toBe(200);
    if (!STREAMS) {
      // Answered once: the whole answer as JSON, as if nothing were deferred.
      expect(response.headers.get("content-type")).toMatch(/^application\/json/);
      const body = await response.json();
      expect(body.data).toEqual(whole.data);
      expect([body.errors, body.hasNext]).toEqual([undefined, undefined]);
      return;
    }
    expect(response.headers.get("content-type")).toMatch(/^multipart\/mixed/);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const parts = await multipartParts(response);
    expect(parts.length).toBeGreaterThanOrEqual(2);
    // First what is not deferred, then the rest at its path, labelled; the last part says it is the last.
    expect(parts[0]).toEqual({ data: { post: { id: post.gid, caption: "deferred" } }, hasNext: true });
    expect(parts.at(-1)?.hasNext).toBe(false);
    expect(parts.slice(1).flatMap((part) => part.incremental ?? [])).toEqual([
      {
        data: { likeCount: 0, commentCount: 1, comments: { edges: [{ node: { body: "first!" } }] } },
        path: ["post"],
        label: "below",
      },
    ]);
    expect(assemble(parts)).toEqual(whole.data);
  });

  test("arrives in parts over text/event-stream too", async ({ alice }) => {
    const post = await createPost(alice, { caption: "over SSE" });
    const response = await send(request(POST, { id: post.gid }, "text/event-stream", alice.token));
    expect(response.status).toBe(200);
    const whole = await gql(WHOLE_POST, { id: post.gid }, { token: alice.token });
    if (!STREAMS) {
      // Answered once, to a client that takes only events: one event with the whole answer.
      const parts = await eventStreamParts(response);
      expect(parts.map((part) => [part.data, part.hasNext])).toEqual([[whole.data, undefined]]);
      return;
    }
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const parts = await eventStreamParts(response);
    expect(parts[0]).toEqual({ data: { post: { id: post.gid, caption: "over SSE" } }, hasNext: true });
    expect(parts.at(-1)?.hasNext).toBe(false);
    expect(assemble(parts)).toEqual(whole.data);
  });

  test("is one JSON answer to a client that asks for JSON, or for anything", async ({ alice }) => {
    const post = await createPost(alice, { caption: "whole" });
    const whole = await gql(WHOLE_POST, { id: post.gid }, { token: alice.token });
    for (const accept of ["application/json", "application/graphql-response+json", "*/*"]) {
      const response = await send(request(POST, { id: post.gid }, accept, alice.token));
      expect([accept, response.status, response.headers.get("content-type")]).toEqual([
        accept,
        200,
        expect.stringMatching(accept === "*/*" ? /^application\/json/ : new RegExp(`^${accept.replace("+", "\\+")}`)),
      ]);
      const body = await response.json();
      expect(body.data).toEqual(whole.data);
      expect(body.hasNext).toBeUndefined();
    }
  });

  test("streams a list's items after its first with @stream", async ({ alice }) => {
    for (const caption of ["one", "two", "three"]) await createPost(alice, { caption });
    const plain = await gql(EXPLORE.replace(" @stream(initialCount: 1)", ""));
    expect(plain.data?.explore.edges).toHaveLength(3);
    const parts = await multipartParts(await send(request(EXPLORE, {}, "multipart/mixed")));
    if (!STREAMS) {
      // Answered once, to a client that takes only parts: one part with the whole answer.
      expect(parts.map((part) => [part.data, part.hasNext])).toEqual([[plain.data, undefined]]);
      return;
    }
    expect(parts[0]?.data.explore.edges).toEqual(plain.data?.explore.edges.slice(0, 1));
    expect(assemble(parts)).toEqual(plain.data);
  });

  test("costs what the same query costs without it; the response cache keeps whole answers only", async ({ alice }) => {
    const post = await createPost(alice, { caption: "priced" });
    const whole = await gql(WHOLE_POST, { id: post.gid }, { token: alice.token });
    const deferred = await gql(POST, { id: post.gid }, { token: alice.token });
    expect(deferred.data).toEqual(whole.data);
    expect(deferred.extensions?.cost?.requestedQueryCost).toBeGreaterThan(0);
    expect(deferred.extensions?.cost?.requestedQueryCost).toBe(whole.extensions?.cost?.requestedQueryCost);
    // Signed out, a deferred public query. Sent whole (to a JSON client), it is an ordinary answer: kept, then a
    // hit. Sent in parts, it is not looked up (no X-Cache): never kept, nor answered from the whole one.
    const explore = EXPLORE.replace("first: 3", "first: 2");
    const cache = async (accept: string) => {
      const response = await send(request(explore, {}, accept));
      const parts = accept === "multipart/mixed" ? await multipartParts(response) : [await response.json()];
      return [accept, response.status, response.headers.get("x-cache"), parts.length > 1];
    };
    expect(await cache("application/json")).toEqual(["application/json", 200, "MISS", false]);
    expect(await cache("application/json")).toEqual(["application/json", 200, "HIT", false]);
    const inParts = STREAMS ? [null, true] : ["HIT", false];
    expect(await cache("multipart/mixed")).toEqual(["multipart/mixed", 200, ...inParts]);
    expect(await cache("multipart/mixed")).toEqual(["multipart/mixed", 200, ...inParts]);
  });
});

test("a mutation or subscription with @defer or @stream is refused before it runs, changing nothing", async ({
  alice,
  bob,
}) => {
  const post = await createPost(alice);
  const before = await rowCounts();
  const refused = await gql(
    `mutation Deferred($postId: ID!) {
      likePost(input: { postId: $postId }) { ... on LikePostSuccess { post { id ...Counters @defer } } }
    }
    fragment Counters on Post { likeCount }`,
    { postId: post.gid },
    { token: bob.token },
  );
  expect(refused.status).toBe(400);
  expect(refused.errors?.map((error) => [error.message, error.extensions?.code])).toEqual([
    ["@defer applies to queries only: a mutation's answer is sent whole.", "GRAPHQL_VALIDATION_FAILED"],
  ]);
  expect(await rowCounts()).toEqual(before);
  const subscription = await gql("subscription { notificationAdded { ... @defer { id } } }", {}, { token: bob.token });
  expect(subscription.errors?.map((error) => error.extensions?.code)).toContain("GRAPHQL_VALIDATION_FAILED");
});

test("an unexpected error in a deferred part is masked, with the request id, like any other", async () => {
  // A database that was never migrated: the deferred part's read fails on a missing table.
  const database = await emptyDatabase();
  const instance = await startInstance({ DATABASE_URL: database.url, LOG_LEVEL: "error" });
  const query = "query { __typename ... @defer { explore(first: 1) { edges { node { id } } } } }";
  const response = await instance.fetch("/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", accept: "multipart/mixed", "x-request-id": "deferred-42" },
    body: JSON.stringify(operationBody(query)),
  });
  const errors = (await multipartParts(response)).flatMap((part) => [
    ...(part.errors ?? []),
    ...(part.incremental ?? []).flatMap((item) => item.errors ?? []),
  ]);
  expect(errors).toHaveLength(1);
  expect(errors[0]).toMatchObject({
    message: "Something went wrong on our side. Try again; if it keeps happening, tell us the request id.",
    extensions: { code: "INTERNAL_SERVER_ERROR", requestId: "deferred-42" },
  });
  expect(JSON.stringify(errors)).not.toMatch(/does not exist|posts|prisma|SELECT|stack/i);
  await instance.close();
  await database.drop();
});

/** A fetch that also keeps what came back: each response's content type and, if multipart, its parts in order. */
function recording() {
  const wire: { accept: string | null; contentType: string | null; parts: Promise<Part[]> }[] = [];
  const recorded: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    const [mine, theirs] = (response.body as ReadableStream<Uint8Array>).tee();
    const copy = new Response(mine, { headers: response.headers, status: response.status });
    const contentType = response.headers.get("content-type");
    wire.push({
      accept: new Headers(init?.headers).get("accept"),
      contentType,
      // Read beside the client, as the parts come.
      parts: contentType?.startsWith("multipart/mixed") ? multipartParts(copy) : copy.text().then(() => []),
    });
    return new Response(theirs, { headers: response.headers, status: response.status });
  };
  return { wire, fetch: recorded };
}

describe("real clients on their defaults", () => {
  const DOCUMENT = `query ClientDeferredPost($id: ID!) {
    post(id: $id) { id caption ...Below @defer }
  }
  fragment Below on Post { likeCount comments(first: 5) { edges { node { id body } } } }`;

  test("urql receives the parts in order, the first before the rest", async ({ alice, bob }) => {
    const post = await createPost(alice, { caption: "urql defers" });
    await mobile.addComment(bob, { postId: post.gid, body: "hi urql" });
    const { wire, fetch: recorded } = recording();
    const client = new Client({ url: await (await target()).url(), exchanges: [fetchExchange], fetch: recorded });
    const results: { data: any; hasNext: boolean }[] = [];
    let subscription: { unsubscribe(): void } | undefined;
    await new Promise<void>((resolve, reject) => {
      subscription = client.query(DOCUMENT, { id: post.gid }).subscribe((result) => {
        if (result.error) reject(result.error);
        results.push({ data: structuredClone(result.data), hasNext: result.hasNext });
        if (!result.hasNext) resolve();
      });
    });
    // The response read to its end before the query is dropped (which would abort what is left of it).
    await wire[0]?.parts;
    subscription?.unsubscribe();
    const complete = { id: post.gid, caption: "urql defers", likeCount: 0, comments: { edges: [expect.anything()] } };
    expect(results.at(-1)?.data.post).toMatchObject(complete);
    expect(wire[0]?.accept).toMatch(/multipart\/mixed/);
    if (!STREAMS) {
      expect(results).toHaveLength(1);
      return;
    }
    // On the wire: the post first, the deferred fragment after it; urql shows each as it arrives.
    expect(
      (await wire[0]?.parts)?.map((part) => Object.keys(part.data?.post ?? part.incremental?.[0]?.data ?? {})),
    ).toEqual([
      ["id", "caption"],
      ["likeCount", "comments"],
    ]);
    if (results.length > 1)
      expect(results[0]).toEqual({ data: { post: { id: post.gid, caption: "urql defers" } }, hasNext: true });
  });

  test("Apollo Client (with its handler for this @defer format) receives the parts in order", async ({
    alice,
    bob,
  }) => {
    const post = await createPost(alice, { caption: "apollo defers" });
    await mobile.addComment(bob, { postId: post.gid, body: "hi apollo" });
    const { wire, fetch: recorded } = recording();
    const client = new ApolloClient({
      link: new HttpLink({ uri: await (await target()).url(), fetch: recorded }),
      cache: new InMemoryCache(),
      // Apollo Client 4 parses @defer's parts with the handler of the format the server speaks (graphql-tools',
      // the 2022-08-24 proposal); without one it refuses @defer.
      incrementalHandler: new Defer20220824Handler(),
    });
    const seen: { data: any; dataState: string }[] = [];
    let subscription: { unsubscribe(): void } | undefined;
    await new Promise<void>((resolve, reject) => {
      subscription = client
        .watchQuery({ query: apolloGql(DOCUMENT), variables: { id: post.gid }, fetchPolicy: "network-only" })
        .subscribe({
          next: (result) => {
            if (result.error) reject(result.error);
            if (result.dataState === "empty") return;
            seen.push({ data: structuredClone(result.data), dataState: result.dataState });
            if (result.dataState === "complete") resolve();
          },
          error: reject,
        });
    });
    // The response read to its end before the query is dropped (which would abort what is left of it).
    await wire[0]?.parts;
    subscription?.unsubscribe();
    expect(seen.at(-1)?.data.post).toMatchObject({
      __typename: "Post",
      id: post.gid,
      caption: "apollo defers",
      likeCount: 0,
      comments: { edges: [{ node: { body: "hi apollo" } }] },
    });
    expect(wire[0]?.accept).toMatch(/multipart\/mixed;deferSpec=20220824/);
    if (!STREAMS) return;
    expect((await wire[0]?.parts)?.map((part) => part.hasNext)).toEqual([true, false]);
    if (seen.length > 1) {
      expect(seen[0]).toEqual({
        data: { post: { __typename: "Post", id: post.gid, caption: "apollo defers" } },
        dataState: "streaming",
      });
    }
  });
});
