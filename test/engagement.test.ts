import { describe, expect } from "vitest";
import { db } from "../src/platform/db.ts";
import { createPost, globalId, ok, processPendingEvents, rowCounts, test } from "./helpers.ts";

const LIKE = `mutation ($id: ID!) {
  likePost(input: { postId: $id }) { __typename ... on LikePostSuccess { post { likeCount viewerHasLiked } } ... on Error { code message } }
}`;
const UNLIKE = `mutation ($id: ID!) {
  unlikePost(input: { postId: $id }) { __typename ... on UnlikePostSuccess { post { likeCount viewerHasLiked } } ... on Error { code message } }
}`;
const ADD_COMMENT = `mutation ($id: ID!, $body: String!) {
  addComment(input: { postId: $id, body: $body }) {
    __typename
    ... on AddCommentSuccess { comment { id body author { handle } post { commentCount } } }
    ... on Error { code message }
  }
}`;
const DELETE_COMMENT = `mutation ($id: ID!) {
  deleteComment(input: { commentId: $id }) { __typename ... on DeleteCommentSuccess { deletedCommentId } ... on Error { code message } }
}`;
const POST = `query ($id: ID!) {
  post(id: $id) { likeCount commentCount viewerHasLiked comments(first: 10) { edges { node { body author { handle } } } } }
}`;

describe("likes", () => {
  test("like and unlike keep the count exact, are idempotent, and notify the author once", async ({ alice, bob }) => {
    const post = await createPost(alice);
    expect((await ok(LIKE, { id: post.gid }, { token: bob.token })).likePost.post).toEqual({
      likeCount: 1,
      viewerHasLiked: true,
    });
    expect((await ok(LIKE, { id: post.gid }, { token: bob.token })).likePost.post).toEqual({
      likeCount: 1,
      viewerHasLiked: true,
    });
    await processPendingEvents();
    expect(await db().notification.findMany({ where: { recipientId: alice.id } })).toMatchObject([
      { kind: "LIKE", actorId: bob.id, postId: post.id },
    ]);
    expect((await ok(POST, { id: post.gid }, { token: bob.token })).post).toMatchObject({
      likeCount: 1,
      viewerHasLiked: true,
    });
    expect((await ok(POST, { id: post.gid }, { token: alice.token })).post.viewerHasLiked).toBe(false);

    expect((await ok(UNLIKE, { id: post.gid }, { token: bob.token })).unlikePost.post).toEqual({
      likeCount: 0,
      viewerHasLiked: false,
    });
    expect((await ok(UNLIKE, { id: post.gid }, { token: bob.token })).unlikePost.post).toEqual({
      likeCount: 0,
      viewerHasLiked: false,
    });
    await processPendingEvents();
    expect(await db().notification.count({ where: { recipientId: alice.id } })).toBe(0);
  });

  test("liking your own post notifies nobody", async ({ alice }) => {
    const post = await createPost(alice);
    await ok(LIKE, { id: post.gid }, { token: alice.token });
    await processPendingEvents();
    const events = await db().outboxEvent.findMany({ where: { kind: "post.liked", processedAt: { not: null } } });
    expect(events.filter((e) => (e.payload as { postId: string }).postId === post.id)).toMatchObject([
      { recipientId: null },
    ]);
    expect(await db().notification.count({ where: { postId: post.id } })).toBe(0);
  });

  test("many people liking at once: the count matches the rows", async ({ alice }) => {
    const post = await createPost(alice);
    const { createUser } = await import("./helpers.ts");
    const fans = await Promise.all(Array.from({ length: 12 }, () => createUser()));
    await Promise.all(fans.map((fan) => ok(LIKE, { id: post.gid }, { token: fan.token })));
    await Promise.all(fans.slice(0, 5).map((fan) => ok(UNLIKE, { id: post.gid }, { token: fan.token })));
    const stored = await db().post.findUniqueOrThrow({ where: { id: post.id } });
    expect(stored.likeCount).toBe(7);
    expect(await db().like.count({ where: { postId: post.id } })).toBe(7);
  });

  test("an unknown post is NOT_FOUND and changes nothing", async ({ bob }) => {
    const before = await rowCounts();
    const ghost = globalId("Post", "00000000-0000-7000-8000-000000000000");
    expect((await ok(LIKE, { id: ghost }, { token: bob.token })).likePost).toMatchObject({
      __typename: "NotFoundError",
      code: "NOT_FOUND",
    });
    expect((await ok(UNLIKE, { id: ghost }, { token: bob.token })).unlikePost.code).toBe("NOT_FOUND");
    expect(await rowCounts()).toEqual(before);
  });
});

describe("comments", () => {
  test("add: counted, listed oldest first, the author notified (not the commenter)", async ({ alice, bob }) => {
    const post = await createPost(alice);
    const first = await ok(ADD_COMMENT, { id: post.gid, body: "  nice!  " }, { token: bob.token });
    expect(first.addComment.comment).toMatchObject({
      body: "nice!",
      author: { handle: bob.handle },
      post: { commentCount: 1 },
    });
    await ok(ADD_COMMENT, { id: post.gid, body: "thanks" }, { token: alice.token });
    const read = await ok(POST, { id: post.gid });
    expect(read.post.commentCount).toBe(2);
    expect(read.post.comments.edges.map((e: any) => [e.node.body, e.node.author.handle])).toEqual([
      ["nice!", bob.handle],
      ["thanks", alice.handle],
    ]);
    await processPendingEvents();
    const notes = await db().notification.findMany({ where: { postId: post.id } });
    expect(notes).toMatchObject([{ kind: "COMMENT", recipientId: alice.id, actorId: bob.id, postId: post.id }]);
  });

  test("empty or too long comments are refused", async ({ alice, bob }) => {
    const post = await createPost(alice);
    const before = await rowCounts();
    for (const body of ["   ", "x".repeat(1001)]) {
      const data = await ok(ADD_COMMENT, { id: post.gid, body }, { token: bob.token });
      expect(data.addComment).toMatchObject({ __typename: "ValidationError", code: "BAD_USER_INPUT" });
    }
    expect(await rowCounts()).toEqual(before);
  });

  test("delete: the comment's author or the post's author may; others may not", async ({ alice, bob, carol }) => {
    const post = await createPost(alice);
    const c1 = (await ok(ADD_COMMENT, { id: post.gid, body: "one" }, { token: bob.token })).addComment.comment.id;
    const c2 = (await ok(ADD_COMMENT, { id: post.gid, body: "two" }, { token: bob.token })).addComment.comment.id;
    await processPendingEvents();
    expect(await db().notification.count({ where: { kind: "COMMENT", postId: post.id } })).toBe(2);
    const before = await rowCounts();
    expect((await ok(DELETE_COMMENT, { id: c1 }, { token: carol.token })).deleteComment).toMatchObject({
      __typename: "ForbiddenError",
      code: "FORBIDDEN",
    });
    expect(await rowCounts()).toEqual(before);
    expect((await ok(DELETE_COMMENT, { id: c1 }, { token: bob.token })).deleteComment).toEqual({
      __typename: "DeleteCommentSuccess",
      deletedCommentId: c1,
    });
    expect((await ok(DELETE_COMMENT, { id: c2 }, { token: alice.token })).deleteComment.__typename).toBe(
      "DeleteCommentSuccess",
    );
    expect((await ok(DELETE_COMMENT, { id: c2 }, { token: alice.token })).deleteComment.code).toBe("NOT_FOUND");
    const read = await ok(POST, { id: post.gid });
    expect(read.post).toMatchObject({ commentCount: 0, comments: { edges: [] } });
    // Their notifications went with them.
    await processPendingEvents();
    expect(await db().notification.count({ where: { kind: "COMMENT", postId: post.id } })).toBe(0);
  });

  test("comments paginate past the first page", async ({ alice, bob }) => {
    const post = await createPost(alice);
    for (let i = 0; i < 5; i++) await ok(ADD_COMMENT, { id: post.gid, body: `c${i}` }, { token: bob.token });
    const query = `query ($id: ID!, $after: String) { post(id: $id) { comments(first: 3, after: $after) { edges { node { body } } pageInfo { hasNextPage endCursor } } } }`;
    const page1 = await ok(query, { id: post.gid });
    expect(page1.post.comments.edges.map((e: any) => e.node.body)).toEqual(["c0", "c1", "c2"]);
    const page2 = await ok(query, { id: post.gid, after: page1.post.comments.pageInfo.endCursor });
    expect(page2.post.comments.edges.map((e: any) => e.node.body)).toEqual(["c3", "c4"]);
    expect(page2.post.comments.pageInfo.hasNextPage).toBe(false);
  });
});
