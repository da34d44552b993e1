import DataLoader from "dataloader";
import { type FirstPageKey, firstPageCacheKey, traced } from "./batch.ts";
import { type CommentRecord, commentsById, firstCommentsByPost } from "./comments.ts";
import { viewerLike } from "./likes.ts";
import { notificationsById } from "./notifications.ts";
import { photosById, photosByPost } from "./photos.ts";
import { firstPostsByAuthor, type PostRecord, postsById } from "./posts.ts";
import { userIdsByHandle, usersById, viewerFollow } from "./users.ts";

export type { FirstPageKey } from "./batch.ts";

/**
 * Fresh DataLoaders for one request: batching across a GraphQL operation's resolvers, with a cache that
 * lives exactly as long as the request (never shared between viewers). Entities come through the shared
 * cache (caching/entities.ts), and so do per-viewer facts (has liked, is following), per (viewer, target).
 */
export function createLoaders(viewerId: string | null) {
  const firstPage = { cacheKeyFn: firstPageCacheKey };
  const user = new DataLoader(traced("user", usersById));
  const post = new DataLoader(traced("post", postsById));
  const comment = new DataLoader(traced("comment", commentsById));
  return {
    user,
    userByHandle: new DataLoader(
      traced("userByHandle", async (handles: readonly string[]) => {
        const ids = await userIdsByHandle(handles);
        return Promise.all(ids.map((id) => (id ? user.load(id) : null)));
      }),
    ),
    post,
    photo: new DataLoader(traced("photo", photosById)),
    comment,
    notification: new DataLoader(traced("notification", notificationsById)),
    photosByPost: new DataLoader(traced("photosByPost", photosByPost)),
    firstCommentsByPost: new DataLoader<FirstPageKey, CommentRecord[], string>(
      traced("firstCommentsByPost", async (keys) =>
        (await firstCommentsByPost(keys)).map((rows) => primed(comment, rows)),
      ),
      firstPage,
    ),
    firstPostsByAuthor: new DataLoader<FirstPageKey, PostRecord[], string>(
      traced("firstPostsByAuthor", async (keys) => (await firstPostsByAuthor(keys)).map((rows) => primed(post, rows))),
      firstPage,
    ),
    viewerHasLiked: new DataLoader(
      traced("viewerHasLiked", (postIds: readonly string[]) =>
        viewerId ? viewerLike.load(viewerId, postIds) : Promise.resolve(postIds.map(() => false)),
      ),
    ),
    viewerIsFollowing: new DataLoader(
      traced("viewerIsFollowing", (userIds: readonly string[]) =>
        viewerId ? viewerFollow.load(viewerId, userIds) : Promise.resolve(userIds.map(() => false)),
      ),
    ),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;

/**
 * Puts rows a list query already returned into a request's loader, so resolving them (and their counters)
 * costs no further statement. Only the request's own loader: the shared cache is filled by loaders alone,
 * under the version check.
 */
export function primed<T extends { id: string }, R extends T>(loader: DataLoader<string, T | null>, rows: R[]): R[] {
  for (const row of rows) loader.prime(row.id, row);
  return rows;
}
