import { describe, expect } from "vitest";
import { encodeCursor } from "../../src/domain/pagination.ts";
import { db } from "../../src/platform/db.ts";
import { createPhoto, createPost, globalId, gql, ok, rowCounts, test } from "../kit/helpers.ts";
import { mobile } from "../kit/operations.ts";

const CREATE_POST = `mutation ($input: CreatePostInput!) {
  createPost(input: $input) {
    __typename
    ... on CreatePostSuccess { post { id caption likeCount commentCount viewerHasLiked author { handle postCount } photos { id url width height } } }
    ... on Error { code message }
  }
}`;
const DELETE_POST = `mutation ($id: ID!) {
  deletePost(input: { postId: $id }) { __typename ... on DeletePostSuccess { deletedPostId } ... on Error { code message } }
}`;
const FEED = `query ($first: Int, $after: String, $last: Int, $before: String) {
  feed(first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { id caption author { handle } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}`;

describe("createPost", () => {
  test("publishes READY photos of the viewer, in order", async ({ alice }) => {
    const photos = await Promise.all([createPhoto(alice.id), createPhoto(alice.id), createPhoto(alice.id)]);
    const order = [photos[2], photos[0], photos[1]].map((p) => p!.gid);
    const data = await ok(CREATE_POST, { input: { caption: "  trip  ", photoIds: order } }, { token: alice.token });
    const post = data.createPost.post;
    expect(post).toMatchObject({ caption: "trip", likeCount: 0, commentCount: 0, viewerHasLiked: false });
    expect(post.author).toEqual({ handle: alice.handle, postCount: 1 });
    expect(post.photos.map((p: any) => p.id)).toEqual(order);
    expect(post.photos[0].url).toMatch(/^http/);
    const read = await ok(`query ($id: ID!) { post(id: $id) { caption photos { id } } }`, { id: post.id });
    expect(read.post.photos.map((p: any) => p.id)).toEqual(order);
  });

  test("refuses bad photo lists and changes nothing", async ({ alice, bob }) => {
    const mine = await createPhoto(alice.id);
    const used = await createPost(alice);
    const pending = await createPhoto(alice.id, { status: "PENDING" });
    const avatar = await createPhoto(alice.id, { purpose: "AVATAR" });
    const bobs = await createPhoto(bob.id);
    const eleven = await Promise.all(Array.from({ length: 11 }, () => createPhoto(alice.id)));
    const before = await rowCounts();
    const cases: [Record<string, unknown>, string, string][] = [
      [{ photoIds: [] }, "BAD_USER_INPUT", "1 to 10 photos"],
      [{ photoIds: [mine.gid, mine.gid] }, "BAD_USER_INPUT", "only once"],
      [{ photoIds: [bobs.gid] }, "FORBIDDEN", "your own photos"],
      [{ photoIds: [pending.gid] }, "UPLOAD_INVALID", "haven't received the file"],
      [{ photoIds: [avatar.gid] }, "CONFLICT", "avatar"],
      [{ photoIds: [used.photos[0]!.gid] }, "CONFLICT", "already part of a post"],
      [{ photoIds: [globalId("Photo", "00000000-0000-7000-8000-000000000000")] }, "NOT_FOUND", "doesn't exist"],
      [{ photoIds: [mine.gid], caption: "x".repeat(2201) }, "BAD_USER_INPUT", "at most 2200"],
    ];
    for (const [input, code, message] of cases) {
      const data = await ok(CREATE_POST, { input }, { token: alice.token });
      expect(data.createPost.code, JSON.stringify(input).slice(0, 80)).toBe(code);
      expect(data.createPost.message).toContain(message);
    }
    // More photos than a post has: refused before anything runs (a list argument longer than it may be).
    const tooMany = await gql(CREATE_POST, { input: { photoIds: eleven.map((p) => p.gid) } }, { token: alice.token });
    expect(tooMany.status).toBe(400);
    expect(tooMany.errors?.[0]).toMatchObject({
      message: '"input.photoIds" can hold at most 10 items.',
      extensions: { code: "BAD_USER_INPUT" },
    });
    expect(await rowCounts()).toEqual(before);
    expect((await db().photo.findUniqueOrThrow({ where: { id: mine.id } })).postId).toBeNull();
  });

  test("two posts racing for the same photo: exactly one wins", async ({ alice }) => {
    const photo = await createPhoto(alice.id);
    const results = await Promise.all(
      [1, 2].map(() => ok(CREATE_POST, { input: { photoIds: [photo.gid] } }, { token: alice.token })),
    );
    const kinds = results.map((r) => r.createPost.__typename).sort();
    expect(kinds).toEqual(["ConflictError", "CreatePostSuccess"]);
    expect(await db().post.count({ where: { authorId: alice.id } })).toBe(1);
    expect((await db().user.findUniqueOrThrow({ where: { id: alice.id } })).postCount).toBe(1);
  });
});

describe("deletePost", () => {
  test("only the author may delete; the post, its photos and their notifications go", async ({ alice, bob }) => {
    const post = await createPost(alice, { photos: 2 });
    await mobile.likePost(bob, { postId: post.gid });
    const forbidden = await ok(DELETE_POST, { id: post.gid }, { token: bob.token });
    expect(forbidden.deletePost).toMatchObject({ __typename: "ForbiddenError", code: "FORBIDDEN" });
    expect(await db().post.count({ where: { id: post.id } })).toBe(1);

    const deleted = await ok(DELETE_POST, { id: post.gid }, { token: alice.token });
    expect(deleted.deletePost).toEqual({ __typename: "DeletePostSuccess", deletedPostId: post.gid });
    expect(await db().post.count({ where: { id: post.id } })).toBe(0);
    expect(await db().photo.count({ where: { id: { in: post.photos.map((p) => p.id) } } })).toBe(0);
    expect(await db().notification.count({ where: { postId: post.id } })).toBe(0);
    expect((await db().user.findUniqueOrThrow({ where: { id: alice.id } })).postCount).toBe(0);
    expect((await ok(`query ($id: ID!) { post(id: $id) { id } }`, { id: post.gid })).post).toBeNull();
    const again = await ok(DELETE_POST, { id: post.gid }, { token: alice.token });
    expect(again.deletePost.code).toBe("NOT_FOUND");
  });
});

describe("feed", () => {
  test("shows the viewer's posts and their followees', newest first, nobody else's", async ({ alice, bob, carol }) => {
    await mobile.follow(alice, { userId: bob.gid });
    const a1 = await createPost(alice, { caption: "a1" });
    const b1 = await createPost(bob, { caption: "b1" });
    await createPost(carol, { caption: "c1" });
    const a2 = await createPost(alice, { caption: "a2" });
    const data = await ok(FEED, { first: 10 }, { token: alice.token });
    expect(data.feed.edges.map((e: any) => e.node.id)).toEqual([a2.gid, b1.gid, a1.gid]);
  });

  test("pagination: empty feed, pages to the end, backwards, and limits", async ({ alice }) => {
    const empty = await ok(FEED, { first: 5 }, { token: alice.token });
    expect(empty.feed).toEqual({
      edges: [],
      pageInfo: { hasNextPage: false, hasPreviousPage: false, startCursor: null, endCursor: null },
    });
    const posts = [];
    for (let i = 0; i < 5; i++) posts.push(await createPost(alice, { caption: `p${i}` }));
    const newestFirst = posts.map((p) => p.gid).reverse();

    const page1 = await ok(FEED, { first: 2 }, { token: alice.token });
    expect(page1.feed.edges.map((e: any) => e.node.id)).toEqual(newestFirst.slice(0, 2));
    expect(page1.feed.pageInfo.hasNextPage).toBe(true);
    const page2 = await ok(FEED, { first: 2, after: page1.feed.pageInfo.endCursor }, { token: alice.token });
    const page3 = await ok(FEED, { first: 2, after: page2.feed.pageInfo.endCursor }, { token: alice.token });
    expect(page3.feed.edges.map((e: any) => e.node.id)).toEqual(newestFirst.slice(4));
    expect(page3.feed.pageInfo.hasNextPage).toBe(false);
    const past = await ok(FEED, { first: 2, after: page3.feed.pageInfo.endCursor }, { token: alice.token });
    expect(past.feed.edges).toEqual([]);

    const back = await ok(FEED, { last: 2, before: page3.feed.edges[0].cursor }, { token: alice.token });
    expect(back.feed.edges.map((e: any) => e.node.id)).toEqual(newestFirst.slice(2, 4));
    expect(back.feed.pageInfo.hasPreviousPage).toBe(true);

    for (const [variables, message] of [
      [{ first: 51 }, '"first" must be between 0 and 50.'],
      [{ first: -1 }, '"first" must be between 0 and 50.'],
      [{ first: 2, after: "not-a-cursor" }, '"after" is not a cursor from this list'],
      [{ first: 2, after: encodeCursor(["x"]) }, '"after" is not a cursor from this list'],
    ] as const) {
      const result = await gql(FEED, variables, { token: alice.token });
      expect(result.errors?.[0]?.extensions?.code, JSON.stringify(variables)).toBe("BAD_USER_INPUT");
      expect(result.errors?.[0]?.message).toContain(message);
      expect(result.data).toBeNull();
    }
  });

  test("needs a viewer", async () => {
    const result = await gql(FEED, { first: 5 });
    expect(result.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
  });
});
