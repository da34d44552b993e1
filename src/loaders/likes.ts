import { viewerFact } from "../caching/entities.ts";
import { db } from "../platform/db.ts";

/** Whether the viewer likes a post (by post id): what a like or an unlike changes for the one who did it. */
export const viewerLike = viewerFact({ name: "viewer-like", table: "likes", loader: "viewerHasLiked" });

/** Whether the viewer has liked each of the given posts, in key order. */
export async function viewerLikes(viewerId: string, postIds: readonly string[]): Promise<boolean[]> {
  const rows = await db().like.findMany({
    where: { userId: viewerId, postId: { in: [...new Set(postIds)] } },
    select: { postId: true },
  });
  const liked = new Set(rows.map((row) => row.postId));
  return postIds.map((id) => liked.has(id));
}
