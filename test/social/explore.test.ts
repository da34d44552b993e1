import { describe, expect } from "vitest";
import { createPost, createUser, ok, test } from "../kit/helpers.ts";
import { mobile } from "../kit/operations.ts";

// In a file of its own: explore ranks every recent post in the database.
describe("explore", () => {
  test("ranks recent posts by likes, for anyone", async ({ alice, bob, carol }) => {
    const quiet = await createPost(alice, { caption: "quiet" });
    const loved = await createPost(alice, { caption: "loved" });
    const liked = await createPost(bob, { caption: "liked" });
    for (const fan of [bob, carol]) await mobile.likePost(fan, { postId: loved.gid });
    await mobile.likePost(carol, { postId: liked.gid });
    const query = `query ($after: String) { explore(first: 2, after: $after) { edges { node { id likeCount } } pageInfo { hasNextPage endCursor } } }`;
    const page1 = await ok(query);
    expect(page1.explore.edges.map((e: any) => [e.node.id, e.node.likeCount])).toEqual([
      [loved.gid, 2],
      [liked.gid, 1],
    ]);
    const page2 = await ok(query, { after: page1.explore.pageInfo.endCursor });
    expect(page2.explore.edges.map((e: any) => e.node.id)).toEqual([quiet.gid]);
    expect(page2.explore.pageInfo.hasNextPage).toBe(false);
  });

  test("a post by a user who is then seen by others keeps its author", async () => {
    const author = await createUser();
    const post = await createPost(author);
    const data = await ok(`query ($id: ID!) { node(id: $id) { ... on Post { author { handle } } } }`, { id: post.gid });
    expect(data.node.author.handle).toBe(author.handle);
  });
});
