import { db } from "../platform/db.ts";

/** Whether the viewer has liked each of the given posts, in key order. */
export async function viewerLikes(viewerId: string, postIds: readonly string[]): Promise<boolean[]> {
  const rows = await db().like.findMany({
    where: { userId: viewerId, postId: { in: [...new Set(postIds)] } },
    select: { postId: true },
  });
  const liked = new Set(rows.map((row) => row.postId));
  return postIds.map((id) => liked.has(id));
}
