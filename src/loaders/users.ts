import { defineEntity, loadThroughCache, viewerFact } from "../caching/entities.ts";
import { createdAtAndId, keyset, type PageRequest } from "../domain/pagination.ts";
import type { User } from "../generated/prisma/client.ts";
import { db } from "../platform/db.ts";
import { raw, type Sql, sql } from "../platform/sql.ts";

/** Whether a viewer follows someone: cached per (viewer, followee), declared changed by every follow and unfollow. */
export const viewerFollow = viewerFact({
  name: "viewer-follow",
  table: "follows",
  loader: "viewerIsFollowing",
  ttlSeconds: 600,
  holds: async (viewerId, userIds) => {
    const rows = await db().follow.findMany({
      where: { followerId: viewerId, followeeId: { in: userIds } },
      select: { followeeId: true },
    });
    return new Set(rows.map((row) => row.followeeId));
  },
});

/** A user as other people may see it: the password hash and email never leave the auth paths. */
export type UserRecord = Omit<User, "passwordHash" | "email">;

/** What a query leaves out of a user (Prisma's `omit`): the password hash and email never leave the auth paths. */
export const omitPrivate = { passwordHash: true, email: true } as const;

/** Users are cached in two parts: the profile, and the counters that follows and posts change. */
export const userEntity = defineEntity({
  name: "user",
  table: "users",
  loader: "user",
  parts: {
    user: { ttlSeconds: 300, fields: ["id", "handle", "displayName", "bio", "avatarId", "createdAt", "updatedAt"] },
    "user-counts": { ttlSeconds: 120, fields: ["followerCount", "followingCount", "postCount"] },
  },
  load: (ids): Promise<UserRecord[]> => db().user.findMany({ where: { id: { in: ids } }, omit: omitPrivate }),
});

export function usersById(ids: readonly string[]): Promise<(UserRecord | null)[]> {
  return loadThroughCache(userEntity, ids);
}

/** Handle → user id. Handles never change, so this mapping is cached for long and never invalidated. */
const handleEntity = defineEntity<{ id: string; userId: string }, "handle">({
  name: "handle",
  table: "users",
  parts: { handle: { ttlSeconds: 3600, fields: ["userId"] } },
  load: async (handles) =>
    (await db().user.findMany({ where: { handle: { in: handles } }, select: { id: true, handle: true } })).map((u) => ({
      id: u.handle,
      userId: u.id,
    })),
  isValidId: (handle) => /^[a-z0-9_.]{3,30}$/.test(handle),
});

/** The user ids of the given handles (null for unknown handles), in key order. */
export async function userIdsByHandle(handles: readonly string[]): Promise<(string | null)[]> {
  return (await loadThroughCache(handleEntity, handles)).map((entry) => entry?.userId ?? null);
}

/** User columns under the names of `UserRecord`, for hand-written SQL. */
export const USER_COLUMNS = (alias: string): Sql =>
  raw(
    `${alias}.id, ${alias}.handle, ${alias}.display_name AS "displayName", ${alias}.bio, ` +
      `${alias}.avatar_id AS "avatarId", ${alias}.follower_count AS "followerCount", ` +
      `${alias}.following_count AS "followingCount", ${alias}.post_count AS "postCount", ` +
      `${alias}.created_at AS "createdAt", ${alias}.updated_at AS "updatedAt"`,
  );

/** One page of users whose handle starts with `prefix`, alphabetically. */
export function handleSearchPage(prefix: string, page: PageRequest): Promise<UserRecord[]> {
  // Handles use the "C" collation, so this LIKE is a range scan of the unique index.
  const pattern = `${prefix.replace(/[\\%_]/g, "\\$&")}%`;
  const { where, direction } = keyset(sql`u.handle`, "asc", page, ([handle]) => sql`${String(handle)}`);
  return db().$queryRaw`
    SELECT ${USER_COLUMNS("u")} FROM users u
    WHERE u.handle LIKE ${pattern} AND ${where}
    ORDER BY u.handle ${direction} LIMIT ${page.limit}`;
}

/** One page of someone's followers (`followers`) or of the people they follow (`following`), newest first. */
export function followPage(
  userId: string,
  list: "followers" | "following",
  page: PageRequest,
): Promise<(UserRecord & { followedAt: Date })[]> {
  const [match, other] = list === "followers" ? ["followee_id", "follower_id"] : ["follower_id", "followee_id"];
  const { where, direction } = keyset(raw(`f.created_at, f.${other}`), "desc", page, createdAtAndId);
  return db().$queryRaw`
    SELECT ${USER_COLUMNS("u")}, f.created_at AS "followedAt"
    FROM follows f JOIN users u ON u.id = f.${raw(other)}
    WHERE f.${raw(match)} = ${userId}::uuid AND ${where}
    ORDER BY f.created_at ${direction}, f.${raw(other)} ${direction} LIMIT ${page.limit}`;
}

/** A user's email: private, so read apart from the cached public profile, for its owner only. */
export async function emailOf(userId: string): Promise<string> {
  return (await db().user.findUniqueOrThrow({ where: { id: userId }, select: { email: true } })).email;
}
