import type { PageRequest } from "../domain/pagination.ts";
import type { Comment } from "../generated/prisma/client.ts";
import { db } from "../platform/db.ts";
import { createdAtAndId, keyset, raw, type Sql, sql } from "../platform/sql.ts";
import { byIds, type FirstPageKey, firstPages } from "./batch.ts";
import { listRead } from "./cached.ts";
import { postEntity } from "./posts.ts";

export type CommentRecord = Comment;

export const COMMENT_COLUMNS = (alias: string): Sql =>
  raw(
    `${alias}.id, ${alias}.post_id AS "postId", ${alias}.author_id AS "authorId", ${alias}.body, ` +
      `${alias}.created_at AS "createdAt"`,
  );

export function commentsById(ids: readonly string[]): Promise<(CommentRecord | null)[]> {
  return byIds(ids, (valid) => db().comment.findMany({ where: { id: { in: valid } } }));
}

/** The first (oldest) comments of each post: e.g. 3 comments for each of 20 feed posts in one statement. */
export function firstCommentsByPost(keys: readonly FirstPageKey[]): Promise<CommentRecord[][]> {
  return firstPages(
    keys,
    // Comments never change once written: adding or deleting one changes its post's counters.
    (postIds, limit) =>
      listRead(
        postEntity,
        "post-counts",
        postIds,
        () => db().$queryRaw<CommentRecord[]>`
          SELECT ${COMMENT_COLUMNS("c")}
          FROM unnest(${postIds}::uuid[]) AS p(id)
          CROSS JOIN LATERAL (
            SELECT * FROM comments WHERE post_id = p.id ORDER BY created_at, id LIMIT ${limit}
          ) c`,
      ),
    (comment) => comment.postId,
  );
}

/** One page of a post's comments, oldest first. */
export function postCommentsPage(postId: string, page: PageRequest): Promise<CommentRecord[]> {
  const { where, direction } = keyset(sql`c.created_at, c.id`, "asc", page, createdAtAndId);
  return listRead(
    postEntity,
    "post-counts",
    [postId],
    () => db().$queryRaw`
      SELECT ${COMMENT_COLUMNS("c")} FROM comments c
      WHERE c.post_id = ${postId}::uuid AND ${where}
      ORDER BY c.created_at ${direction}, c.id ${direction} LIMIT ${page.limit}`,
  );
}
