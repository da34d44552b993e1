import { db } from "../db.ts";
import type { Media } from "../generated/prisma/client.ts";
import { byIds, groupInKeyOrder } from "./batch.ts";

export type MediaRecord = Media;

export function mediaById(ids: readonly string[]): Promise<(MediaRecord | null)[]> {
  return byIds(ids, (valid) => db().media.findMany({ where: { id: { in: valid } } }));
}

/** The photos of each post, in their order. */
export async function photosByPost(postIds: readonly string[]): Promise<MediaRecord[][]> {
  const rows = await db().media.findMany({
    where: { postId: { in: [...new Set(postIds)] }, status: "READY" },
    orderBy: [{ postId: "asc" }, { position: "asc" }],
  });
  return groupInKeyOrder(postIds, rows, (row) => row.postId ?? "");
}
