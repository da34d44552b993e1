import { expect } from "vitest";
import { createPost, gql, ok, test } from "../kit/helpers.ts";

test("a signed-in user posts and sees it in their feed", async ({ alice }) => {
  const post = await createPost(alice, { caption: "hello" });
  const data = await ok(
    `{ feed(first: 5) { edges { node { id caption author { handle } } } } }`,
    {},
    { token: alice.token },
  );
  expect(data.feed.edges.map((e: any) => e.node.id)).toEqual([post.gid]);
  const anonymous = await gql(`{ viewer { user { handle } } }`);
  expect(anonymous.data).toEqual({ viewer: null });
});
