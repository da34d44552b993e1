import DataLoader from "dataloader";
import { type FirstPageKey, firstPageCacheKey } from "./batch.ts";
import { commentsById, firstCommentsByPost } from "./comments.ts";
import { viewerLikes } from "./likes.ts";
import { mediaById, photosByPost } from "./media.ts";
import { notificationsById } from "./notifications.ts";
import { firstPostsByAuthor, postsById } from "./posts.ts";
import { usersByHandle, usersById, viewerFollows } from "./users.ts";

export type { FirstPageKey } from "./batch.ts";

/**
 * Fresh DataLoaders for one request: batching across a GraphQL operation's resolvers, with a cache that
 * lives exactly as long as the request (never shared between viewers).
 */
export function createLoaders(viewerId: string | null) {
  const firstPage = { cacheKeyFn: firstPageCacheKey };
  return {
    user: new DataLoader(usersById),
    userByHandle: new DataLoader(usersByHandle),
    post: new DataLoader(postsById),
    media: new DataLoader(mediaById),
    comment: new DataLoader(commentsById),
    notification: new DataLoader(notificationsById),
    photosByPost: new DataLoader(photosByPost),
    firstCommentsByPost: new DataLoader<FirstPageKey, Awaited<ReturnType<typeof firstCommentsByPost>>[number], string>(
      firstCommentsByPost,
      firstPage,
    ),
    firstPostsByAuthor: new DataLoader<FirstPageKey, Awaited<ReturnType<typeof firstPostsByAuthor>>[number], string>(
      firstPostsByAuthor,
      firstPage,
    ),
    viewerHasLiked: new DataLoader((postIds: readonly string[]) =>
      viewerId ? viewerLikes(viewerId, postIds) : Promise.resolve(postIds.map(() => false)),
    ),
    viewerIsFollowing: new DataLoader((userIds: readonly string[]) =>
      viewerId ? viewerFollows(viewerId, userIds) : Promise.resolve(userIds.map(() => false)),
    ),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
