import { builder } from "../../schema/builder.ts";
import { byCreation, paginate } from "../domain/pagination.ts";
import { LIMITS } from "../domain/validation.ts";
import { UnauthenticatedError } from "../errors.ts";
import { notificationsPubSub } from "../events/pubsub.ts";
import { type NotificationRecord, notificationsPage, unreadCount } from "../loaders/notifications.ts";
import { markNotificationsRead } from "../services/notifications.ts";
import { CommentRef } from "./comments.ts";
import { PostRef } from "./posts.ts";
import { UserRef, ViewerRef } from "./users.ts";

export const NotificationRef = builder.objectRef<NotificationRecord>("Notification");

const NotificationConnection = builder.connectionObject({ type: NotificationRef, name: "NotificationConnection" });

const NotificationKindEnum = builder.enumType("NotificationKind", {
  values: {
    LIKE: { description: "Someone liked your post." },
    COMMENT: { description: "Someone commented on your post." },
    FOLLOW: { description: "Someone followed you." },
    SYSTEM: { description: "A message from Shutter or a service you subscribed to." },
  },
});

builder.node(NotificationRef, {
  extensions: { personal: true },
  description: "Something that happened that concerns the viewer. Only its recipient can see it.",
  id: { resolve: (notification) => notification.id },
  loadMany: (ids, context) =>
    ids.map(async (id) => {
      const notification = await context.loaders.notification.load(id);
      return notification?.recipientId === context.viewer?.id ? notification : null;
    }),
  fields: (t) => ({
    kind: t.field({ type: NotificationKindEnum, resolve: (n) => n.kind }),
    actor: t.field({
      type: UserRef,
      nullable: true,
      description: "Who did it; null for SYSTEM notifications.",
      resolve: (n, _args, context) => (n.actorId ? context.loaders.user.load(n.actorId) : null),
    }),
    post: t.field({
      type: PostRef,
      nullable: true,
      resolve: (n, _args, context) => (n.postId ? context.loaders.post.load(n.postId) : null),
    }),
    comment: t.field({
      type: CommentRef,
      nullable: true,
      resolve: (n, _args, context) => (n.commentId ? context.loaders.comment.load(n.commentId) : null),
    }),
    actorCount: t.exposeInt("actorCount", {
      description:
        'How many people it stands for, `actor` being the latest: "Ana and 12 others liked your photo" is 13.',
    }),
    message: t.exposeString("message", { nullable: true }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    read: t.boolean({ resolve: (n) => n.readAt !== null }),
  }),
});

builder.objectFields(ViewerRef, (t) => ({
  notifications: t.connection(
    {
      type: NotificationRef,
      description: "Newest first.",
      resolve: (viewer, args) => paginate(args, (page) => notificationsPage(viewer.id, page), byCreation),
    },
    NotificationConnection,
  ),
  unreadNotificationCount: t.int({
    description: "Cheap to poll: clients of pure functions refresh their badge with it.",
    resolve: (viewer) => unreadCount(viewer.id),
  }),
}));

const MarkNotificationsReadInput = builder.inputType("MarkNotificationsReadInput", {
  fields: (t) => ({
    ids: t.globalIDList({
      for: NotificationRef,
      description: `These notifications (at most ${LIMITS.notificationIds.max}); omit to mark all as read.`,
      extensions: { maxItems: LIMITS.notificationIds.max },
    }),
  }),
});

builder.mutationField("markNotificationsRead", (t) =>
  t.field({
    type: ViewerRef,
    args: { input: t.arg({ type: MarkNotificationsReadInput, required: true }) },
    errors: { dataField: { name: "viewer" } },
    resolve: async (_root, { input }, context) => {
      await markNotificationsRead(
        context.actor!,
        input.ids?.map((id) => id.id),
      );
      return context.viewer!;
    },
  }),
);

builder.subscriptionField("notificationAdded", (t) =>
  t.field({
    type: NotificationRef,
    nullable: true,
    description:
      "Each notification as it reaches the viewer (an aggregated one again when someone joins it), over " +
      "Server-Sent Events, where the deployment streams (the container; the Lambda streaming handler, which ends " +
      "a stream before its deadline with a last STREAM_ENDED error: subscribe again). Clients of the buffered " +
      "Lambda handler poll `viewer.unreadNotificationCount`. Null when the notification was withdrawn before it " +
      "could be sent.",
    // Type-level auth scopes guard resolvers; subscribing runs before any of them.
    subscribe: (_root, _args, context) => {
      if (!context.viewer) throw new UnauthenticatedError();
      return notificationsPubSub().subscribe("notification:added", context.viewer.id);
    },
    // The subscription's context lives as long as the connection: read past the loader's cache every time.
    resolve: (payload: { id: string }, _args, context) =>
      context.loaders.notification.clear(payload.id).load(payload.id),
  }),
);
