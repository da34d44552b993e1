import { builder } from "../../schema/builder.ts";
import { LIMITS } from "../domain/validation.ts";
import { NotFoundError } from "../errors.ts";
import { sourceSubscriptionsOf } from "../loaders/sources.ts";
import { sources, subscribeToSource, unsubscribeFromSource } from "../services/sources.ts";
import { ViewerRef } from "./users.ts";

// Operations sources (see services/sources.ts): people subscribe to a source and get each of its events as a
// SYSTEM notification.

const SourceSubscriptionRef = builder.objectRef<{ source: string; createdAt: Date }>("SourceSubscription").implement({
  fields: (t) => ({
    source: t.exposeString("source"),
    subscribedAt: t.expose("createdAt", { type: "DateTime" }),
  }),
});

builder.queryField("notificationSources", (t) =>
  t.stringList({
    description: "The operations sources one can subscribe to (those the webhook accepts events from).",
    extensions: { maxItems: LIMITS.sources.max },
    resolve: sources,
  }),
);

builder.objectFields(ViewerRef, (t) => ({
  sourceSubscriptions: t.field({
    type: [SourceSubscriptionRef],
    description: "The operations sources the viewer is notified of, by name.",
    extensions: { maxItems: LIMITS.sources.max },
    resolve: (viewer) => sourceSubscriptionsOf(viewer.id),
  }),
}));

const SourceInput = builder.inputType("SourceInput", {
  fields: (t) => ({ source: t.string({ required: true, description: "One of `notificationSources`." }) }),
});

builder.mutationFields((t) => ({
  subscribeToSource: t.field({
    type: ViewerRef,
    description: "Notifies the viewer of every event of an operations source. Subscribing twice is subscribing once.",
    args: { input: t.arg({ type: SourceInput, required: true }) },
    errors: { types: [NotFoundError], dataField: { name: "viewer" } },
    resolve: async (_root, { input }, context) => {
      await subscribeToSource(context.actor!, input.source);
      return context.viewer!;
    },
  }),
  unsubscribeFromSource: t.field({
    type: ViewerRef,
    description: "Stops notifying the viewer of a source (also one no longer configured). Idempotent.",
    args: { input: t.arg({ type: SourceInput, required: true }) },
    errors: { dataField: { name: "viewer" } },
    resolve: async (_root, { input }, context) => {
      await unsubscribeFromSource(context.actor!, input.source);
      return context.viewer!;
    },
  }),
}));
