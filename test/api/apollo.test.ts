// A real client: Apollo Client with its persisted-queries link, talking to the function over HTTP.
import { createHash } from "node:crypto";
import { gql } from "@apollo/client";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { apollo } from "../kit/apollo-client.ts";
import { createPost, test } from "../kit/helpers.ts";
import { type Instance, startInstance } from "../kit/instances.ts";

const EXPLORE = gql`
  query ApolloExplore($first: Int!) {
    explore(first: $first) { edges { node { id caption likeCount } } }
  }
`;

describe("Automatic Persisted Queries (policy apq)", () => {
  let instance: Instance;
  let url: string;
  beforeAll(async () => {
    instance = await startInstance({ PERSISTED_QUERIES: "apq" });
    url = await instance.url();
  });
  afterAll(async () => {
    await instance.close();
  });

  test("over POST: miss, register, then every later request sends the hash only", async ({ alice }) => {
    await createPost(alice, { caption: "via apollo" });
    const { client, wire } = apollo(url);
    const first = await client.query({ query: EXPLORE, variables: { first: 5 }, fetchPolicy: "network-only" });
    const second = await client.query({ query: EXPLORE, variables: { first: 5 }, fetchPolicy: "network-only" });
    expect(second.data).toEqual(first.data);
    expect((first.data as any).explore.edges.map((e: any) => e.node.caption)).toContain("via apollo");
    expect(wire.map(({ method, hasQuery, status }) => [method, hasQuery, status])).toEqual([
      ["POST", false, 404], // PersistedQueryNotFound
      ["POST", true, 200], // registered with the full document
      ["POST", false, 200], // hit
    ]);
    expect(wire[2]!.requestBytes).toBeLessThan(wire[1]!.requestBytes);
  });

  test("over GET: hashed queries are cacheable GETs once registered", async () => {
    const { client, wire } = apollo(url, { useGET: true });
    const query = gql`query ApolloExploreGet { explore(first: 3) { edges { node { id } } } }`;
    await client.query({ query, fetchPolicy: "network-only" });
    const hit = await client.query({ query, fetchPolicy: "network-only" });
    expect(hit.data).toBeDefined();
    expect(wire.map(({ method, hasQuery, status }) => [method, hasQuery, status])).toEqual([
      ["GET", false, 404],
      ["POST", true, 200],
      ["GET", false, 200],
    ]);
  });

  test("a hash that is not the document's is rejected", async () => {
    const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
    const { client } = apollo(url, { generateHash: (text) => sha256(`tampered ${text}`) });
    await expect(
      client.query({ query: gql`query ApolloTampered { explore(first: 1) { edges { cursor } } }` }),
    ).rejects.toThrow(/PersistedQueryMismatch/);
  });
});

test("policy persisted-only: an ad-hoc query from Apollo is rejected", async () => {
  const instance = await startInstance({ PERSISTED_QUERIES: "persisted-only" });
  try {
    const { client, wire } = apollo(await instance.url());
    const error = await client.query({ query: EXPLORE, variables: { first: 1 } }).then(
      () => null,
      (e: Error) => e,
    );
    expect(error?.message).toContain("only runs the operations its apps were built with");
    expect(wire.map((w) => w.status)).toEqual([404, 400]);
  } finally {
    await instance.close();
  }
});
