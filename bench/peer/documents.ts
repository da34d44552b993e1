// The mobile app's read screens (clients/mobile) as a PostGraphile user writes them against PostGraphile's own
// schema (Amber preset over `public`, plus the functions of bench/peer/schema.sql): the same fields, the same
// page sizes, the same orders. Ids are the rows' UUIDs (`rowId`).

const USER_CHIP = `fragment UserChip on User {
  rowId handle displayName avatar { rowId url: variantUrl(width: 128, format: "webp") }
}`;

/** A post's photos as a card shows them, and as a grid's thumbnail. */
const PHOTOS = `photos: mediaByPostId(condition: { status: READY }, orderBy: POSITION_ASC) {
  nodes { rowId url: variantUrl(width: 1080, format: "webp") aspectRatio placeholder }
}`;
const GRID_PHOTOS = `photos: mediaByPostId(condition: { status: READY }, orderBy: POSITION_ASC) {
  nodes { rowId url: variantUrl(width: 320, format: "webp") aspectRatio placeholder }
}`;

const POST_CARD = `fragment PostCard on Post {
  rowId published caption createdAt likeCount commentCount viewerHasLiked
  author: userByAuthorId { ...UserChip }
  ${PHOTOS}
  comments: commentsByPostId(first: 3, orderBy: [CREATED_AT_ASC, ROW_ID_ASC]) {
    edges { node { rowId body author: userByAuthorId { rowId handle } } }
  }
}`;

/** By screen, as bench/scenarios.ts names Shutter's (Feed, PostDetail, Profile, Explore). */
export const PEER_DOCUMENTS = {
  Feed: `query Feed($count: Int!) {
  peerFeed(count: $count, first: 20) {
    edges { cursor node { ...PostCard } }
    pageInfo { hasNextPage endCursor }
  }
}
${POST_CARD}
${USER_CHIP}`,
  PostDetail: `query PostDetail($id: UUID!) {
  post: postByRowId(rowId: $id) {
    ...PostCard
    allComments: commentsByPostId(first: 30, orderBy: [CREATED_AT_ASC, ROW_ID_ASC]) {
      edges { cursor node { rowId body createdAt author: userByAuthorId { ...UserChip } } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
${POST_CARD}
${USER_CHIP}`,
  Profile: `query Profile($handle: String!) {
  user: peerUserByHandle(handle: $handle) {
    ...UserChip bio followerCount followingCount postCount viewerIsFollowing
    posts: postsByAuthorId(first: 24, condition: { published: true }, orderBy: [CREATED_AT_DESC, ROW_ID_DESC]) {
      edges { cursor node { rowId likeCount commentCount ${GRID_PHOTOS} } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
${USER_CHIP}`,
  Explore: `query Explore($count: Int!) {
  peerExplore(count: $count, first: 21) {
    edges { cursor node { rowId likeCount ${GRID_PHOTOS} } }
    pageInfo { hasNextPage endCursor }
  }
}`,
} as const;
