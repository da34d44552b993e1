import { expect } from "vitest";
import { createPost, gql, ok, processPendingEvents, test } from "../kit/helpers.ts";
import { mobile } from "../kit/operations.ts";

const NOTIFICATIONS = `{
  viewer {
    unreadNotificationCount
    notifications(first: 10) { edges { node { id kind read actor { handle } post { id } comment { body } } } }
  }
}`;
const MARK_READ = `mutation ($ids: [ID!]) {
  markNotificationsRead(input: { ids: $ids }) { __typename ... on MarkNotificationsReadSuccess { viewer { unreadNotificationCount } } }
}`;

test("likes, comments and follows notify the person concerned, newest first", async ({ alice, bob }) => {
  const post = await createPost(alice);
  await mobile.follow(bob, { userId: alice.gid });
  await mobile.likePost(bob, { postId: post.gid });
  await mobile.addComment(bob, { postId: post.gid, body: "wow" });
  await processPendingEvents();
  const data = await ok(NOTIFICATIONS, {}, { token: alice.token });
  expect(data.viewer.unreadNotificationCount).toBe(3);
  expect(data.viewer.notifications.edges.map((e: any) => e.node)).toMatchObject([
    { kind: "COMMENT", read: false, actor: { handle: bob.handle }, post: { id: post.gid }, comment: { body: "wow" } },
    { kind: "LIKE", read: false, actor: { handle: bob.handle }, post: { id: post.gid }, comment: null },
    { kind: "FOLLOW", read: false, actor: { handle: bob.handle }, post: null, comment: null },
  ]);
  expect((await ok(NOTIFICATIONS, {}, { token: bob.token })).viewer.unreadNotificationCount).toBe(0);
});

test("markNotificationsRead: chosen ones, then all; others' ids change nothing", async ({ alice, bob, carol }) => {
  const post = await createPost(alice);
  const carolsPost = await createPost(carol);
  await mobile.likePost(bob, { postId: post.gid });
  await mobile.likePost(bob, { postId: carolsPost.gid });
  await mobile.follow(bob, { userId: alice.gid });
  await processPendingEvents();
  const mine = (await ok(NOTIFICATIONS, {}, { token: alice.token })).viewer.notifications.edges.map(
    (e: any) => e.node.id,
  );
  const carols = (await ok(NOTIFICATIONS, {}, { token: carol.token })).viewer.notifications.edges.map(
    (e: any) => e.node.id,
  );

  const stolen = await ok(MARK_READ, { ids: carols }, { token: alice.token });
  expect(stolen.markNotificationsRead.viewer.unreadNotificationCount).toBe(2);
  expect((await ok(NOTIFICATIONS, {}, { token: carol.token })).viewer.unreadNotificationCount).toBe(1);

  const one = await ok(MARK_READ, { ids: [mine[0]] }, { token: alice.token });
  expect(one.markNotificationsRead.viewer.unreadNotificationCount).toBe(1);
  const all = await ok(MARK_READ, {}, { token: alice.token });
  expect(all.markNotificationsRead.viewer.unreadNotificationCount).toBe(0);
  const after = await ok(NOTIFICATIONS, {}, { token: alice.token });
  expect(after.viewer.notifications.edges.every((e: any) => e.node.read)).toBe(true);
});

test("a notification is visible to its recipient only", async ({ alice, bob }) => {
  const post = await createPost(alice);
  await mobile.likePost(bob, { postId: post.gid });
  await processPendingEvents();
  const [id] = (await ok(NOTIFICATIONS, {}, { token: alice.token })).viewer.notifications.edges.map(
    (e: any) => e.node.id,
  );
  const query = `query ($id: ID!) { node(id: $id) { id ... on Notification { kind } } }`;
  expect((await ok(query, { id }, { token: alice.token })).node).toEqual({ id, kind: "LIKE" });
  expect((await ok(query, { id }, { token: bob.token })).node).toBeNull();
  expect((await ok(query, { id })).node).toBeNull();
  const signedOut = await gql(`{ viewer { notifications(first: 1) { edges { node { id } } } } }`);
  expect(signedOut.data).toEqual({ viewer: null });
});
