import { describe, expect } from "vitest";
import { db } from "../../src/platform/db.ts";
import { createUser, ok, processPendingEvents, rowCounts, test } from "../kit/helpers.ts";
import { mobile } from "../kit/operations.ts";

async function counts(id: string) {
  const user = await db().user.findUniqueOrThrow({ where: { id } });
  return { followers: user.followerCount, following: user.followingCount };
}

describe("follow / unfollow", () => {
  test("follow updates both counters, notifies once, and is idempotent", async ({ alice, bob }) => {
    const first = await mobile.follow(alice, { userId: bob.gid });
    expect(first.follow).toEqual({
      __typename: "FollowSuccess",
      user: { id: bob.gid, followerCount: 1, viewerIsFollowing: true },
    });
    const second = await mobile.follow(alice, { userId: bob.gid });
    expect(second.follow).toMatchObject({ user: { followerCount: 1 } });
    expect(await counts(alice.id)).toEqual({ followers: 0, following: 1 });
    expect(await counts(bob.id)).toEqual({ followers: 1, following: 0 });
    await processPendingEvents();
    const notes = await db().notification.findMany({ where: { recipientId: bob.id } });
    expect(notes).toMatchObject([{ kind: "FOLLOW", actorId: alice.id }]);
  });

  test("unfollow reverts counters and withdraws the notification; unfollowing again does nothing", async ({
    alice,
    bob,
  }) => {
    await mobile.follow(alice, { userId: bob.gid });
    const undone = await mobile.unfollow(alice, { userId: bob.gid });
    expect(undone.unfollow).toEqual({
      __typename: "UnfollowSuccess",
      user: { id: bob.gid, followerCount: 0, viewerIsFollowing: false },
    });
    await mobile.unfollow(alice, { userId: bob.gid });
    expect(await counts(alice.id)).toEqual({ followers: 0, following: 0 });
    expect(await counts(bob.id)).toEqual({ followers: 0, following: 0 });
    await processPendingEvents();
    expect(await db().notification.count({ where: { recipientId: bob.id } })).toBe(0);
  });

  test("following yourself or nobody is refused and changes nothing", async ({ alice }) => {
    const before = await rowCounts();
    const self = await mobile.follow(alice, { userId: alice.gid });
    expect(self.follow).toMatchObject({
      __typename: "ValidationError",
      code: "BAD_USER_INPUT",
      message: "You can't follow yourself.",
    });
    const { globalId } = await import("../kit/helpers.ts");
    const ghost = await mobile.follow(alice, { userId: globalId("User", "00000000-0000-7000-8000-000000000000") });
    expect(ghost.follow).toMatchObject({ __typename: "NotFoundError", code: "NOT_FOUND" });
    const wrongType = await mobile.follow.response(alice, {
      userId: globalId("Post", "00000000-0000-7000-8000-000000000000"),
    });
    expect(wrongType.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    expect(await rowCounts()).toEqual(before);
  });

  test("mutual follows at the same moment both land, counters exact", async ({ alice, bob }) => {
    await Promise.all([mobile.follow(alice, { userId: bob.gid }), mobile.follow(bob, { userId: alice.gid })]);
    expect(await counts(alice.id)).toEqual({ followers: 1, following: 1 });
    expect(await counts(bob.id)).toEqual({ followers: 1, following: 1 });
  });
});

describe("followers and following lists", () => {
  test("newest first, paginated to the end", async ({ alice }) => {
    const fans = [];
    for (let i = 0; i < 5; i++) {
      const fan = await createUser();
      await mobile.follow(fan, { userId: alice.gid });
      fans.push(fan);
    }
    const query = `query ($handle: String!, $after: String) {
      user(handle: $handle) { followers(first: 2, after: $after) { edges { node { handle } } pageInfo { hasNextPage endCursor } } }
    }`;
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const data: any = await ok(query, { handle: alice.handle, after });
      seen.push(...data.user.followers.edges.map((e: any) => e.node.handle));
      after = data.user.followers.pageInfo.hasNextPage ? data.user.followers.pageInfo.endCursor : null;
      pages++;
    } while (after);
    expect(pages).toBe(3);
    expect(seen).toEqual(fans.map((f) => f.handle).reverse());
    const following = await ok(
      `query ($handle: String!) { user(handle: $handle) { following(first: 10) { edges { node { handle } } } } }`,
      { handle: fans[0]?.handle },
    );
    expect(following.user.following.edges).toEqual([{ node: { handle: alice.handle } }]);
  });
});
