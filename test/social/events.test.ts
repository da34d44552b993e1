// The transactional outbox and the events handler: every change records its event in its own transaction,
// and the handler turns events into notifications exactly once — however often an event is delivered, in
// whatever order, with aggregation ("Ana and 2 others liked your photo") and undo.
import { expect } from "vitest";
import { db } from "../../src/platform/db.ts";
import { processEvents } from "../../src/workers/notifications.ts";
import { createPost, createUser, ok, processPendingEvents, type TestUser, test } from "../kit/helpers.ts";
import { mobile } from "../kit/operations.ts";

const ADD_COMMENT = `mutation ($id: ID!, $body: String!) {
  addComment(input: { postId: $id, body: $body }) { ... on AddCommentSuccess { comment { id } } } }`;
const NOTIFICATIONS = `{ viewer { unreadNotificationCount notifications(first: 10) {
  edges { node { kind actorCount read actor { handle } post { id } comment { body } } } } } }`;
const MARK_ALL_READ = `mutation { markNotificationsRead(input: {}) { __typename } }`;

const notificationsOf = async (user: TestUser) => (await ok(NOTIFICATIONS, {}, { token: user.token })).viewer;
/** Ids of the events of a kind about a post, oldest first (the file's tests share one database). */
const eventIds = async (kind: string, postId: string) =>
  (await db().outboxEvent.findMany({ where: { kind }, orderBy: { id: "asc" } }))
    .filter((event) => (event.payload as { postId?: string }).postId === postId)
    .map((event) => event.id);

test("a mutation records its event in its own transaction; failures record none", async ({ alice, bob }) => {
  const post = await createPost(alice);
  await mobile.likePost(bob, { postId: post.gid });
  await mobile.likePost(bob, { postId: post.gid }); // already liked: no change, no event
  await mobile.likePost(bob, { postId: "UG9zdDowMDAwMDAwMC0wMDAwLTcwMDAtODAwMC0wMDAwMDAwMDAwMDA=" });
  const events = await db().outboxEvent.findMany({ where: { kind: "post.liked", recipientId: alice.id } });
  expect(events).toMatchObject([
    { kind: "post.liked", recipientId: alice.id, payload: { postId: post.id, actorId: bob.id }, processedAt: null },
  ]);
  expect(await db().notification.count({ where: { recipientId: alice.id } })).toBe(0); // not handled yet
});

test("redelivered, concurrently or later, an event notifies exactly once", async ({ alice, bob }) => {
  const post = await createPost(alice);
  // A comment's notification is created, not merged: applying its event twice would show twice.
  await ok(ADD_COMMENT, { id: post.gid, body: "first!" }, { token: bob.token });
  const [id] = await eventIds("comment.added", post.id);
  // Three deliveries racing, then two late ones.
  expect(await Promise.all([processEvents([id!]), processEvents([id!]), processEvents([id!])])).toEqual([[], [], []]);
  await processEvents([id!, id!]);
  expect(await db().notification.findMany({ where: { recipientId: alice.id } })).toMatchObject([
    { kind: "COMMENT", actorId: bob.id, postId: post.id },
  ]);
});

test("likes of a post aggregate; a new like brings it back unread; unlikes update, the last removes it", async ({
  alice,
  bob,
  carol,
}) => {
  const dave = await createUser({ handle: "dave" });
  const erin = await createUser({ handle: "erin" });
  const post = await createPost(alice);
  for (const liker of [bob, carol, dave]) await mobile.likePost(liker, { postId: post.gid });
  await processPendingEvents();
  let mine = await notificationsOf(alice);
  expect(mine.notifications.edges.map((e: any) => e.node)).toEqual([
    { kind: "LIKE", actorCount: 3, read: false, actor: { handle: "dave" }, post: { id: post.gid }, comment: null },
  ]);
  await ok(MARK_ALL_READ, {}, { token: alice.token });

  await mobile.likePost(erin, { postId: post.gid });
  await processPendingEvents();
  mine = await notificationsOf(alice);
  expect(mine.unreadNotificationCount).toBe(1);
  expect(mine.notifications.edges.map((e: any) => e.node)).toMatchObject([
    { kind: "LIKE", actorCount: 4, read: false, actor: { handle: "erin" } },
  ]);

  await mobile.unlikePost(erin, { postId: post.gid });
  await mobile.unlikePost(bob, { postId: post.gid });
  await processPendingEvents();
  expect((await notificationsOf(alice)).notifications.edges.map((e: any) => e.node)).toMatchObject([
    { kind: "LIKE", actorCount: 2, actor: { handle: "dave" } },
  ]);
  for (const unliker of [carol, dave]) await mobile.unlikePost(unliker, { postId: post.gid });
  await processPendingEvents();
  expect((await notificationsOf(alice)).notifications.edges).toEqual([]);
  expect(await db().notificationActor.count({ where: { notification: { recipientId: alice.id } } })).toBe(0);
});

test("a recipient's events apply in order, whatever order they are delivered in", async ({ alice, bob }) => {
  const post = await createPost(alice);
  await mobile.likePost(bob, { postId: post.gid });
  await mobile.unlikePost(bob, { postId: post.gid });
  await mobile.likePost(bob, { postId: post.gid });
  const [like1, like2] = await eventIds("post.liked", post.id);
  const [unlike] = await eventIds("post.unliked", post.id);
  // The last like arrives first: the recipient's earlier events are applied before it, in their order.
  await processEvents([like2!]);
  await processEvents([unlike!, like1!]);
  expect(await db().notification.findMany({ where: { recipientId: alice.id } })).toMatchObject([
    { kind: "LIKE", actorId: bob.id, actorCount: 1 },
  ]);
  expect(await db().outboxEvent.count({ where: { recipientId: alice.id, processedAt: null } })).toBe(0);
});

test("a comment deleted before the handler runs notifies nobody; deleted later, its notification goes", async ({
  alice,
  bob,
}) => {
  const post = await createPost(alice);
  const DELETE = `mutation ($id: ID!) { deleteComment(input: { commentId: $id }) { __typename } }`;
  const early = (await ok(ADD_COMMENT, { id: post.gid, body: "gone soon" }, { token: bob.token })).addComment.comment
    .id;
  await ok(DELETE, { id: early }, { token: bob.token });
  await processPendingEvents();
  expect(await db().notification.count({ where: { recipientId: alice.id } })).toBe(0);

  const late = (await ok(ADD_COMMENT, { id: post.gid, body: "stays a while" }, { token: bob.token })).addComment.comment
    .id;
  await processPendingEvents();
  expect((await notificationsOf(alice)).notifications.edges.map((e: any) => e.node)).toMatchObject([
    { kind: "COMMENT", actor: { handle: bob.handle }, comment: { body: "stays a while" } },
  ]);
  await ok(DELETE, { id: late }, { token: alice.token });
  await processPendingEvents();
  expect(await db().notification.count({ where: { recipientId: alice.id } })).toBe(0);
});

test("follow, unfollow and follow again: one notification at most", async ({ alice, bob }) => {
  await mobile.follow(bob, { userId: alice.gid });
  await processPendingEvents();
  await mobile.unfollow(bob, { userId: alice.gid });
  await mobile.follow(bob, { userId: alice.gid });
  await processPendingEvents();
  expect(await db().notification.findMany({ where: { recipientId: alice.id } })).toMatchObject([
    { kind: "FOLLOW", actorId: bob.id },
  ]);
  const kinds = (await db().outboxEvent.findMany({ where: { recipientId: alice.id }, orderBy: { id: "asc" } })).map(
    (e) => e.kind,
  );
  expect(kinds).toEqual(["user.followed", "user.unfollowed", "user.followed"]);
  expect(await db().outboxEvent.count({ where: { processedAt: null } })).toBe(0);
});

test("the Lambda handler: an SQS batch reports only its bad messages; a schedule sweeps", async ({
  alice,
  bob,
  carol,
}) => {
  const { handler } = await import("../../functions/events.ts");
  const post = await createPost(alice);
  await mobile.likePost(bob, { postId: post.gid });
  await mobile.likePost(carol, { postId: post.gid });
  const [first, second] = await eventIds("post.liked", post.id);
  const record = (messageId: string, body: string) => ({ messageId, body }) as never;
  const result = await handler({
    Records: [
      record("m1", JSON.stringify({ event: first!.toString() })),
      record("m2", JSON.stringify({ event: first!.toString() })), // the queue delivered it twice
      record("m3", "not json"),
      record("m4", JSON.stringify({ event: "-1" })),
    ],
  });
  expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: "m3" }, { itemIdentifier: "m4" }] });
  expect(await db().notification.findMany({ where: { recipientId: alice.id } })).toMatchObject([{ actorCount: 1 }]);
  // The second like was never announced: the schedule's sweep finds it once it is a few seconds old.
  await db().outboxEvent.update({ where: { id: second! }, data: { createdAt: new Date(Date.now() - 60_000) } });
  expect(await handler({})).toMatchObject({ processed: expect.any(Number), failed: 0 });
  expect(await db().notification.findMany({ where: { recipientId: alice.id } })).toMatchObject([{ actorCount: 2 }]);
});

test("pruning forgets week-old processed events and delivery ids past the replay window, nothing newer", async () => {
  const { prune } = await import("../../src/workers/runner.ts");
  const day = 86_400_000;
  const old = await db().outboxEvent.create({
    data: { kind: "post.created", payload: {}, processedAt: new Date(Date.now() - 8 * day) },
  });
  const recent = await db().outboxEvent.create({
    data: { kind: "post.created", payload: {}, processedAt: new Date(Date.now() - day) },
  });
  const pending = await db().outboxEvent.create({
    data: { kind: "post.created", payload: {}, createdAt: new Date(Date.now() - 30 * day) },
  });
  await db().webhookDelivery.createMany({
    data: [
      { source: "ci", deliveryId: "ancient", receivedAt: new Date(Date.now() - day) },
      { source: "ci", deliveryId: "fresh" },
    ],
  });
  await prune();
  const left = (await db().outboxEvent.findMany({ where: { id: { in: [old.id, recent.id, pending.id] } } })).map(
    (e) => e.id,
  );
  expect(left.sort()).toEqual([recent.id, pending.id].sort());
  expect((await db().webhookDelivery.findMany()).map((d) => d.deliveryId)).toEqual(["fresh"]);
});
