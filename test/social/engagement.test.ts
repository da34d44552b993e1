import { describe, expect } from "vitest";
import { db } from "../../src/platform/db.ts";
import { createPost, globalId, ok, processPendingEvents, rowCounts, test } from "../kit/helpers.ts";
import { mobile } from "../kit/operations.ts";

describe("likes", () => {
  test("like and unlike keep the count exact, are idempotent, and notify the author once", async ({ alice, bob }) => {
    const post = await createPost(alice);
    for (let i = 0; i < 2; i++) {
      expect((await mobile.likePost(bob, { postId: post.gid })).likePost).toEqual({
        __typename: "LikePostSuccess",
        post: { id: post.gid, likeCount: 1, viewerHasLiked: true },
      });
    }
    await processPendingEvents();
    expect(await db().notification.findMany({ where: { recipientId: alice.id } })).toMatchObject([
      { kind: "LIKE", actorId: bob.id, postId: post.id },
    ]);
    expect((await mobile.postDetail(bob, { id: post.gid })).post).toMatchObject({
      likeCount: 1,
      viewerHasLiked: true,
    });
    expect((await mobile.postDetail(alice, { id: post.gid })).post?.viewerHasLiked).toBe(false);

    for (let i = 0; i < 2; i++) {
      expect((await mobile.unlikePost(bob, { postId: post.gid })).unlikePost).toEqual({
        __typename: "UnlikePostSuccess",
        post: { id: post.gid, likeCount: 0, viewerHasLiked: false },
      });
    }
    await processPendingEvents();
    expect(await db().notification.count({ where: { recipientId: alice.id } })).toBe(0);
  });

  test("liking your own post notifies nobody", async ({ alice }) => {
    const post = await createPost(alice);
    await mobile.likePost(alice, { postId: post.gid });
    await processPendingEvents();
    const events = await db().outboxEvent.findMany({ where: { kind: "post.liked", processedAt: { not: null } } });
    expect(events.filter((e) => (e.payload as { postId: string }).postId === post.id)).toMatchObject([
      { recipientId: null },
    ]);
    expect(await db().notification.count({ where: { postId: post.id } })).toBe(0);
  });

  test("many people liking at once: the count matches the rows", async ({ alice }) => {
    const post = await createPost(alice);
    const { createUser } = await import("../kit/helpers.ts");
    const fans = await Promise.all(Array.from({ length: 12 }, () => createUser()));
    await Promise.all(fans.map((fan) => mobile.likePost(fan, { postId: post.gid })));
    await Promise.all(fans.slice(0, 5).map((fan) => mobile.unlikePost(fan, { postId: post.gid })));
    const stored = await db().post.findUniqueOrThrow({ where: { id: post.id } });
    expect(stored.likeCount).toBe(7);
    expect(await db().like.count({ where: { postId: post.id } })).toBe(7);
  });

  test("an unknown post is NOT_FOUND and changes nothing", async ({ bob }) => {
    const before = await rowCounts();
    const ghost = globalId("Post", "00000000-0000-7000-8000-000000000000");
    expect((await mobile.likePost(bob, { postId: ghost })).likePost).toMatchObject({
      __typename: "NotFoundError",
      code: "NOT_FOUND",
    });
    expect((await mobile.unlikePost(bob, { postId: ghost })).unlikePost).toMatchObject({ code: "NOT_FOUND" });
    expect(await rowCounts()).toEqual(before);
  });
});

describe("comments", () => {
  test("add: counted, listed oldest first, the author notified (not the commenter)", async ({ alice, bob }) => {
    const post = await createPost(alice);
    const first = await mobile.addComment(bob, { postId: post.gid, body: "  nice!  " });
    expect(first.addComment).toMatchObject({
      comment: { body: "nice!", author: { handle: bob.handle }, post: { commentCount: 1 } },
    });
    await mobile.addComment(alice, { postId: post.gid, body: "thanks" });
    const read = await mobile.postDetail(null, { id: post.gid });
    expect(read.post?.commentCount).toBe(2);
    expect(read.post?.allComments?.edges.map((e) => [e.node.body, e.node.author.handle])).toEqual([
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
      const data = await mobile.addComment(bob, { postId: post.gid, body });
      expect(data.addComment).toMatchObject({ __typename: "ValidationError", code: "BAD_USER_INPUT" });
    }
    expect(await rowCounts()).toEqual(before);
  });

  test("delete: the comment's author or the post's author may; others may not", async ({ alice, bob, carol }) => {
    const post = await createPost(alice);
    const comment = async (body: string) => {
      const { addComment } = await mobile.addComment(bob, { postId: post.gid, body });
      if (addComment.__typename !== "AddCommentSuccess") throw new Error(`addComment: ${addComment.__typename}`);
      return addComment.comment.id;
    };
    const c1 = await comment("one");
    const c2 = await comment("two");
    await processPendingEvents();
    expect(await db().notification.count({ where: { kind: "COMMENT", postId: post.id } })).toBe(2);
    const before = await rowCounts();
    expect((await mobile.deleteComment(carol, { commentId: c1 })).deleteComment).toMatchObject({
      __typename: "ForbiddenError",
      code: "FORBIDDEN",
    });
    expect(await rowCounts()).toEqual(before);
    expect((await mobile.deleteComment(bob, { commentId: c1 })).deleteComment).toEqual({
      __typename: "DeleteCommentSuccess",
      deletedCommentId: c1,
    });
    expect((await mobile.deleteComment(alice, { commentId: c2 })).deleteComment.__typename).toBe(
      "DeleteCommentSuccess",
    );
    expect((await mobile.deleteComment(alice, { commentId: c2 })).deleteComment).toMatchObject({ code: "NOT_FOUND" });
    const read = await mobile.postDetail(null, { id: post.gid });
    expect(read.post).toMatchObject({ commentCount: 0, allComments: { edges: [] } });
    // Their notifications went with them.
    await processPendingEvents();
    expect(await db().notification.count({ where: { kind: "COMMENT", postId: post.id } })).toBe(0);
  });

  test("comments paginate past the first page", async ({ alice, bob }) => {
    const post = await createPost(alice);
    for (let i = 0; i < 5; i++) await mobile.addComment(bob, { postId: post.gid, body: `c${i}` });
    const query = `query ($id: ID!, $after: String) { post(id: $id) { comments(first: 3, after: $after) { edges { node { body } } pageInfo { hasNextPage endCursor } } } }`;
    const page1 = await ok(query, { id: post.gid });
    expect(page1.post.comments.edges.map((e: any) => e.node.body)).toEqual(["c0", "c1", "c2"]);
    const page2 = await ok(query, { id: post.gid, after: page1.post.comments.pageInfo.endCursor });
    expect(page2.post.comments.edges.map((e: any) => e.node.body)).toEqual(["c3", "c4"]);
    expect(page2.post.comments.pageInfo.hasNextPage).toBe(false);
  });
});
