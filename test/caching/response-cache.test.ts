// The response cache: signed-out queries answered whole, never stale after a write, never holding a viewer's
// answer, charged to the rate limit like the operation, and purged from a CDN through the hook.
import { createServer } from "node:http";
import { describe, expect } from "vitest";
import { createPost, createUser, gql, ok, send, target, test } from "../kit/helpers.ts";
import { operationBody, operationParams, startInstance, statsOf } from "../kit/instances.ts";
import { mobile } from "../kit/operations.ts";

const POST = `query ($id: ID!) {
  post(id: $id) {
    caption likeCount commentCount viewerHasLiked
    author { handle displayName followerCount }
    comments(first: 5) { edges { node { body author { handle } } } }
  }
}`;
const PROFILE = `query ($handle: String!) {
  user(handle: $handle) { displayName postCount posts(first: 3) { edges { node { caption likeCount } } } }
}`;

/** A signed-out read: its data and whether the response cache answered it (X-Cache, on every target). */
async function read(query: string, variables: Record<string, unknown> = {}) {
  const result = await gql(query, variables);
  expect(result.errors).toBeUndefined();
  return { data: result.data as Record<string, any>, cache: result.headers.get("x-cache") };
}

/**
 * What the instance logged lately (its request lines: what the response cache did for each; its warnings), for a
 * failed expectation to say why (bundled targets log; on the source target there is nothing to add).
 */
async function why() {
  await new Promise((resolve) => setTimeout(resolve, 100));
  const lines = (await target()).logs.filter((line) => line.msg === "request" || line.level >= 40);
  return JSON.stringify(lines.slice(-10));
}

describe("signed-out queries", () => {
  test("are answered whole from the cache until a write changes what they read", async ({ alice, bob }) => {
    const post = await createPost(alice, { caption: "cached" });
    expect((await read(POST, { id: post.gid })).cache).toBe("MISS");
    const hit = await read(POST, { id: post.gid });
    expect(hit.cache, hit.cache === "HIT" ? "" : await why()).toBe("HIT");
    expect(hit.data.post).toMatchObject({ caption: "cached", likeCount: 0, viewerHasLiked: false });

    // Each write below changes a different part of the answer; the next read shows it.
    await mobile.likePost(bob, { postId: post.gid });
    const liked = await read(POST, { id: post.gid });
    expect([liked.cache, liked.data.post.likeCount]).toEqual(["MISS", 1]);
    expect((await read(POST, { id: post.gid })).cache).toBe("HIT");

    const added = await ok(
      `mutation ($id: ID!) { addComment(input: { postId: $id, body: "first!" }) { ... on AddCommentSuccess { comment { id } } } }`,
      { id: post.gid },
      { token: bob.token },
    );
    const commented = await read(POST, { id: post.gid });
    expect(commented.data.post.comments.edges).toEqual([{ node: { body: "first!", author: { handle: bob.handle } } }]);
    expect(commented.data.post.commentCount).toBe(1);

    await mobile.updateProfile(bob, { input: { displayName: "Bob Renamed" } });
    expect((await read(POST, { id: post.gid })).data.post.comments.edges[0].node.author.handle).toBe(bob.handle);
    await mobile.updateProfile(alice, { input: { displayName: "Alice Renamed" } });
    expect((await read(POST, { id: post.gid })).data.post.author.displayName).toBe("Alice Renamed");

    await mobile.follow(bob, { userId: alice.gid });
    expect((await read(POST, { id: post.gid })).data.post.author.followerCount).toBe(1);

    const commentId = (added.addComment as { comment: { id: string } }).comment.id;
    await mobile.deleteComment(bob, { commentId });
    const uncommented = await read(POST, { id: post.gid });
    expect([uncommented.data.post.commentCount, uncommented.data.post.comments.edges]).toEqual([0, []]);

    await mobile.deletePost(alice, { postId: post.gid });
    expect((await read(POST, { id: post.gid })).data.post).toBeNull();
  });

  test("a profile's list of posts follows new posts and each post's counters", async ({ alice, bob }) => {
    const first = await createPost(alice, { caption: "one" });
    const variables = { handle: alice.handle };
    await read(PROFILE, variables);
    expect((await read(PROFILE, variables)).cache).toBe("HIT");

    await createPost(alice, { caption: "two" });
    const grown = await read(PROFILE, variables);
    expect(grown.data.user.posts.edges.map((e: any) => e.node.caption)).toEqual(["two", "one"]);
    expect(grown.data.user.postCount).toBe(2);
    expect((await read(PROFILE, variables)).cache).toBe("HIT");

    // A like changes the post's counters, not its author's: the answer still carries the post's version.
    await mobile.likePost(bob, { postId: first.gid });
    const liked = await read(PROFILE, variables);
    expect(liked.data.user.posts.edges.map((e: any) => e.node.likeCount)).toEqual([0, 1]);
  });

  test("the signed-in are never served from it, and what they see is never kept for others", async ({ alice, bob }) => {
    const post = await createPost(alice);
    await mobile.likePost(bob, { postId: post.gid });
    await read(POST, { id: post.gid });
    expect((await read(POST, { id: post.gid })).data.post.viewerHasLiked).toBe(false);

    const asBob = await gql(POST, { id: post.gid }, { token: bob.token });
    expect(asBob.data?.post.viewerHasLiked).toBe(true);
    expect(asBob.headers.get("x-cache")).toBeNull();
    expect((await gql(POST, { id: post.gid }, { token: bob.token })).headers.get("x-cache")).toBeNull();

    const again = await read(POST, { id: post.gid });
    expect([again.cache, again.data.post.viewerHasLiked]).toEqual(["HIT", false]);
  });

  test("answers that read what no version covers are not kept", async () => {
    // Not found yet: a sign-up with this handle declares nothing, so "nobody" must not be kept.
    const handle = `later_${Date.now().toString(36)}`;
    expect((await read(PROFILE, { handle })).data.user).toBeNull();
    expect((await read(PROFILE, { handle })).cache).toBe("MISS");
    await createUser({ handle });
    expect((await read(PROFILE, { handle })).data.user).not.toBeNull();

    // A search reads users straight from PostgreSQL.
    const search = `query { searchUsers(prefix: "la", first: 5) { edges { node { handle } } } }`;
    await read(search);
    expect((await read(search)).cache).toBe("MISS");
  });

  test("errors are never kept", async () => {
    const feed = `query { feed(first: 2) { edges { node { id } } } }`;
    for (let i = 0; i < 2; i++) {
      const result = await gql(feed);
      expect(result.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
      expect(result.headers.get("x-cache")).toBe("MISS");
    }
  });

  test("over GET, a hit says how old it is and keeps its ETag", async ({ alice }) => {
    const post = await createPost(alice, { caption: "over GET" });
    const query = `query ($id: ID!) { post(id: $id) { caption likeCount } }`;
    const url = `/graphql?${new URLSearchParams(operationParams(query, { id: post.gid }))}`;
    const miss = await send(url, { headers: { accept: "application/json" } });
    const hit = await send(url, { headers: { accept: "application/json" } });
    expect([miss.headers.get("x-cache"), hit.headers.get("x-cache")]).toEqual(["MISS", "HIT"]);
    expect(Number(hit.headers.get("age"))).toBeGreaterThanOrEqual(0);
    expect(hit.headers.get("cache-control")).toMatch(/^public, max-age=\d+/);
    expect(hit.headers.get("etag")).toBe(miss.headers.get("etag"));
    expect((await hit.json()).data).toEqual((await miss.json()).data);
    const revalidated = await send(url, { headers: { "if-none-match": hit.headers.get("etag") as string } });
    expect([revalidated.status, revalidated.headers.get("x-cache")]).toEqual([304, "HIT"]);
    expect(await revalidated.text()).toBe("");
  });
});

test("a GET URL answered before is answered again before parsing: current after any instance's write, charged, 304 when unchanged", async ({
  alice,
  bob,
}) => {
  // As deployed (production: answers carry no development report, so a kept answer's bytes are the answer), and
  // logging, for what the response cache did. The query costs 3 points: a budget of 18 lets 6 through.
  const instance = await startInstance({
    NODE_ENV: "production",
    LOG_LEVEL: "info",
    RATE_LIMIT_ANONYMOUS_POINTS: "18",
  });
  try {
    const post = await createPost(alice, { caption: "before parsing" });
    const query = `query ($id: ID!) { post(id: $id) { caption commentCount } }`;
    const url = `/graphql?${new URLSearchParams(operationParams(query, { id: post.gid }))}`;
    const get = async (headers: Record<string, string> = {}) => {
      const response = await instance.fetch(url, {
        headers: { accept: "application/json", ...headers },
        from: "127.9.0.78",
      });
      const body = await response.text();
      const requestId = response.headers.get("x-request-id") as string;
      const { responseCache } = await statsOf(instance, { requestId });
      return { response, body: body ? JSON.parse(body) : undefined, outcome: responseCache ?? response.status };
    };
    const miss = await get();
    expect([miss.outcome, miss.body.data.post]).toEqual(["kept", { caption: "before parsing", commentCount: 0 }]);
    // The same URL again: its kept bytes, with the headers every answer has.
    const early = await get();
    expect(early.outcome).toBe("hit before parsing");
    expect(early.body).toEqual(miss.body);
    expect(early.response.headers.get("content-type")).toBe(miss.response.headers.get("content-type"));
    expect(early.response.headers.get("etag")).toBe(miss.response.headers.get("etag"));
    expect(early.response.headers.get("cache-control")).toMatch(/^public, max-age=\d+/);
    expect(early.response.headers.get("x-cache")).toBe("HIT");
    const unchanged = await get({ "if-none-match": early.response.headers.get("etag") as string });
    expect([unchanged.response.status, unchanged.outcome]).toEqual([304, "hit before parsing"]);

    // A comment through another instance (the test file's own): this instance's next answer has it.
    await mobile.addComment(bob, { postId: post.gid, body: "seen at once" });
    const changed = await get();
    expect([changed.outcome, changed.body.data.post.commentCount]).toEqual(["kept", 1]);
    for (let i = 0; i < 2; i++) {
      const again = await get();
      expect([again.outcome, again.body.data.post.commentCount]).toEqual(["hit before parsing", 1]);
    }

    // Six answers cost the budget's 18 points (the outdated one was charged once): the next is refused, early too.
    const refused = await get();
    expect(refused.body.errors[0].extensions.code).toBe("RATE_LIMITED");
    expect(refused.response.headers.get("x-cache")).toBe("MISS");
  } finally {
    await instance.close();
  }
});

test("variables the document does not declare, or their order, make no new entry", async ({ alice }) => {
  const post = await createPost(alice, { caption: "one entry" });
  const TWO = `query ($id: ID!, $first: Int) { post(id: $id) { caption comments(first: $first) { edges { cursor } } } }`;
  expect((await read(TWO, { id: post.gid, first: 2 })).cache).toBe("MISS");
  // The same answer asked with junk alongside, or in another order: the entry already kept.
  for (let i = 0; i < 5; i++) {
    expect((await read(TWO, { id: post.gid, first: 2, [`junk${i}`]: "x".repeat(1000) })).cache).toBe("HIT");
  }
  expect((await read(TWO, { first: 2, id: post.gid })).cache).toBe("HIT");
  // A declared variable that differs is another answer.
  expect((await read(TWO, { id: post.gid, first: 3 })).cache).toBe("MISS");
});

test("introspection is never kept: it answers the schema, which a deploy changes and no version tracks", async () => {
  // Where it is enabled (GraphiQL, code generators): production turns it off by default.
  const instance = await startInstance({ INTROSPECTION: "true" });
  try {
    const outcomes: (string | null)[] = [];
    for (let i = 0; i < 2; i++) {
      const response = await instance.fetch("/graphql", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(operationBody(`query { __schema { queryType { name } } }`)),
      });
      const body = (await response.json()) as { data?: { __schema: { queryType: { name: string } } } };
      expect(body.data?.__schema.queryType.name).toBe("Query");
      outcomes.push(response.headers.get("x-cache"));
    }
    expect(outcomes).toEqual(["MISS", "MISS"]);
  } finally {
    await instance.close();
  }
});

test("a hit is charged to the caller's budget like the operation it answers", async ({ alice }) => {
  const post = await createPost(alice);
  // The query costs 2 points (a field of a field): a budget of 10 lets 5 through, answered from the cache from
  // the second on, and refuses the 6th.
  const instance = await startInstance({ RATE_LIMIT_ANONYMOUS_POINTS: "10" });
  try {
    const query = `query ($id: ID!) { post(id: $id) { caption } }`;
    const outcomes: string[] = [];
    for (let i = 0; i < 7; i++) {
      const response = await instance.fetch("/graphql", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(operationBody(query, { id: post.gid })),
        from: "127.9.0.77",
      });
      const body = (await response.json()) as { errors?: { extensions: { code: string } }[] };
      outcomes.push(body.errors?.[0]?.extensions.code ?? response.headers.get("x-cache") ?? "");
    }
    expect(outcomes).toEqual(["MISS", "HIT", "HIT", "HIT", "HIT", "RATE_LIMITED", "RATE_LIMITED"]);
  } finally {
    await instance.close();
  }
});

test("with a CDN purge hook, public GET answers carry surrogate keys that every write purges", async ({
  alice,
  bob,
}) => {
  const purged: string[][] = [];
  const receiver = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => {
      body += chunk;
    });
    request.on("end", () => {
      expect(request.headers.authorization).toBe("Bearer purge-secret");
      purged.push((JSON.parse(body) as { keys: string[] }).keys);
      response.end("{}");
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const { port } = receiver.address() as { port: number };
  const instance = await startInstance({
    CDN_PURGE_URL: `http://127.0.0.1:${port}/purge`,
    CDN_PURGE_TOKEN: "purge-secret",
  });
  try {
    const post = await createPost(alice);
    const query = `query ($id: ID!) { post(id: $id) { caption likeCount } }`;
    const url = `/graphql?${new URLSearchParams(operationParams(query, { id: post.gid }))}`;
    await instance.fetch(url);
    const keys = (await instance.fetch(url)).headers.get("surrogate-key")?.split(" ") ?? [];
    expect(keys).toEqual(expect.arrayContaining([`post:${post.id}`, `post-counts:${post.id}`]));

    // The like purges what it changed (the post's counters), which the answer above carried as a key.
    await instance.query(mobile.likePost.text, { postId: post.gid }, bob.token);
    expect(purged.flat()).toContain(`post-counts:${post.id}`);
    expect(purged.flat()).not.toContain(`post:${post.id}`);
  } finally {
    await instance.close();
    receiver.close();
  }
});
