import { describe, expect } from "vitest";
import { db } from "../../src/platform/db.ts";
import { createPhoto, createPost, createUser, globalId, ok, rowCounts, test } from "../kit/helpers.ts";
import { mobile } from "../kit/operations.ts";

const UPDATE_PROFILE = `mutation ($input: UpdateProfileInput!) {
  updateProfile(input: $input) {
    __typename
    ... on UpdateProfileSuccess { user { handle displayName bio avatar { id url width height } } }
    ... on Error { code message }
  }
}`;

describe("user(handle)", () => {
  test("finds a profile by handle, case- and @-insensitively, with its counts and posts", async ({ alice, bob }) => {
    await createPost(alice, { caption: "first" });
    await createPost(alice, { caption: "second" });
    await mobile.follow(bob, { userId: alice.gid });
    const query = `query ($handle: String!) {
      user(handle: $handle) {
        id handle displayName bio postCount followerCount followingCount viewerIsFollowing
        posts(first: 10) { edges { node { caption } } }
      }
    }`;
    const data = await ok(query, { handle: `@${alice.handle.toUpperCase()}` }, { token: bob.token });
    expect(data.user).toMatchObject({
      id: alice.gid,
      handle: alice.handle,
      postCount: 2,
      followerCount: 1,
      followingCount: 0,
      viewerIsFollowing: true,
    });
    expect(data.user.posts.edges.map((e: any) => e.node.caption)).toEqual(["second", "first"]);
    const signedOut = await ok(query, { handle: alice.handle });
    expect(signedOut.user.viewerIsFollowing).toBe(false);
  });

  test("an unknown handle is null, a malformed one a validation error", async () => {
    expect((await ok(`{ user(handle: "nobody_at_all") { id } }`)).user).toBeNull();
    const { gql } = await import("../kit/helpers.ts");
    const bad = await gql(`{ user(handle: "x") { id } }`);
    expect(bad.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
  });

  test("node(id) resolves users and never exposes private fields", async ({ alice }) => {
    const data = await ok(`query ($id: ID!) { node(id: $id) { __typename ... on User { handle } } }`, {
      id: alice.gid,
    });
    expect(data.node).toEqual({ __typename: "User", handle: alice.handle });
  });
});

describe("searchUsers", () => {
  test("matches handle prefixes alphabetically, page by page", async () => {
    for (const handle of ["zed_one", "zed_two", "zed_three", "zedd", "zoe"]) await createUser({ handle });
    const query = `query ($prefix: String!, $after: String) {
      searchUsers(prefix: $prefix, first: 2, after: $after) {
        edges { node { handle } } pageInfo { hasNextPage endCursor }
      }
    }`;
    const page1 = await ok(query, { prefix: "ZED" });
    expect(page1.searchUsers.edges.map((e: any) => e.node.handle)).toEqual(["zed_one", "zed_three"]);
    expect(page1.searchUsers.pageInfo.hasNextPage).toBe(true);
    const page2 = await ok(query, { prefix: "zed", after: page1.searchUsers.pageInfo.endCursor });
    expect(page2.searchUsers.edges.map((e: any) => e.node.handle)).toEqual(["zed_two", "zedd"]);
    expect(page2.searchUsers.pageInfo.hasNextPage).toBe(false);
    // "_" is a literal underscore, not a LIKE wildcard.
    const literal = await ok(query, { prefix: "zed_" });
    expect(literal.searchUsers.edges.map((e: any) => e.node.handle)).toEqual(["zed_one", "zed_three"]);
    const none = await ok(query, { prefix: "qqq" });
    expect(none.searchUsers).toEqual({ edges: [], pageInfo: { hasNextPage: false, endCursor: null } });
  });
});

describe("updateProfile", () => {
  test("changes only the given fields", async ({ alice }) => {
    const data = await ok(
      UPDATE_PROFILE,
      { input: { displayName: " Alice A. ", bio: "Hi there" } },
      { token: alice.token },
    );
    expect(data.updateProfile.user).toMatchObject({ displayName: "Alice A.", bio: "Hi there", avatar: null });
    const again = await ok(UPDATE_PROFILE, { input: { bio: "" } }, { token: alice.token });
    expect(again.updateProfile.user).toMatchObject({ displayName: "Alice A.", bio: "" });
  });

  test("sets an avatar from the viewer's own READY photo, and removes it with null", async ({ alice }) => {
    const photo = await createPhoto(alice.id, { purpose: "AVATAR" });
    const data = await ok(UPDATE_PROFILE, { input: { avatarPhotoId: photo.gid } }, { token: alice.token });
    expect(data.updateProfile.user.avatar).toMatchObject({ id: photo.gid, width: 1080, height: 1350 });
    expect(data.updateProfile.user.avatar.url).toContain(`v/${alice.id}/${photo.id}/`);
    const cleared = await ok(UPDATE_PROFILE, { input: { avatarPhotoId: null } }, { token: alice.token });
    expect(cleared.updateProfile.user.avatar).toBeNull();
  });

  test("refuses someone else's photo, a pending photo, an unknown photo and a too-long bio", async ({ alice, bob }) => {
    const bobs = await createPhoto(bob.id);
    const pending = await createPhoto(alice.id, { status: "PENDING", purpose: "AVATAR" });
    const forPosts = await createPhoto(alice.id);
    const before = await rowCounts();
    const cases: [Record<string, unknown>, string][] = [
      [{ avatarPhotoId: bobs.gid }, "FORBIDDEN"],
      [{ avatarPhotoId: pending.gid }, "UPLOAD_INVALID"],
      [{ avatarPhotoId: forPosts.gid }, "CONFLICT"],
      [{ avatarPhotoId: globalId("Photo", "00000000-0000-7000-8000-000000000000") }, "NOT_FOUND"],
      [{ avatarPhotoId: globalId("Photo", "not-a-uuid") }, "NOT_FOUND"],
      [{ bio: "x".repeat(161) }, "BAD_USER_INPUT"],
      [{ displayName: "x".repeat(51) }, "BAD_USER_INPUT"],
    ];
    for (const [input, code] of cases) {
      const data = await ok(UPDATE_PROFILE, { input }, { token: alice.token });
      expect(data.updateProfile.code, JSON.stringify(input)).toBe(code);
    }
    const stored = await db().user.findUniqueOrThrow({ where: { id: alice.id } });
    expect(stored.avatarId).toBeNull();
    expect(stored.bio).toBe("");
    expect(await rowCounts()).toEqual(before);
  });
});
