import { viewerFact } from "../caching/entities.ts";
import { db } from "../platform/db.ts";

/** Whether a viewer likes a post: cached per (viewer, post), declared changed by every like and unlike. */
export const viewerLike = viewerFact({
  name: "viewer-like",
  table: "likes",
  loader: "viewerHasLiked",
  ttlSeconds: 600,
  holds: async (viewerId, postIds) => {
    const rows = await db().like.findMany({
      where: { userId: viewerId, postId: { in: postIds } },
      select: { postId: true },
    });
    return new Set(rows.map((row) => row.postId));
  },
});
