// What each scenario sends: the mobile app's own operations (clients/mobile), with random viewers, posts and
// people from the seeded data, as POSTs of the whole document or as persisted GETs of its id.
import { decodeGlobalID } from "@pothos/plugin-relay";
import type { Fixtures } from "./data.ts";
import { PEER_DOCUMENTS } from "./peer/documents.ts";

export interface BenchRequest {
  method: "GET" | "POST";
  path: string;
  headers: Record<string, string>;
  body?: string;
}

export type Documents = Record<string, { id: string; document: string }>;

export const SCENARIOS = {
  feed: "Feed: 20 posts with author, photos, counts, viewerHasLiked, first 3 comments with authors (signed in)",
  post: "Post detail with 30 comments (signed in)",
  profile: "Profile with counts and 24 posts (signed in)",
  explore: "Explore, 21 posts (anonymous, publicly cacheable)",
  "feed-get": "Feed as a persisted query over GET (documentId)",
  "post-get": "Post detail as a persisted query over GET",
  "profile-get": "Profile as a persisted query over GET",
  "explore-get": "Explore as a persisted query over GET (anonymous)",
  "write-mix": "80% reads (feed, post) with 20% writes (like, unlike, comment, follow, unfollow)",
} as const;
export type Scenario = keyof typeof SCENARIOS;

const pick = <T>(list: T[]): T => list[Math.floor(Math.random() * list.length)] as T;

/** A function returning the next request of a scenario. */
export function requestsFor(scenario: Scenario, fixtures: Fixtures, documents: Documents): () => BenchRequest {
  const signedIn = () => ({ authorization: `Bearer ${pick(fixtures.viewers).token}` });
  const post = (operation: string, variables: Record<string, unknown>, auth: boolean): BenchRequest => ({
    method: "POST",
    path: "/graphql",
    headers: { "content-type": "application/json", ...(auth ? signedIn() : {}) },
    // The whole document, as web clients send it; with its hash, as the APQ protocol registers it (the
    // deployment runs PERSISTED_QUERIES=apq, which refuses documents it cannot match to a hash).
    body: JSON.stringify({
      query: documents[operation]?.document,
      variables,
      operationName: operation,
      extensions: { persistedQuery: { version: 1, sha256Hash: documents[operation]?.id.replace(/^sha256:/, "") } },
    }),
  });
  // As Apollo's mobile clients send persisted queries: the id and variables in the query string.
  const get = (operation: string, variables: Record<string, unknown>, auth: boolean): BenchRequest => ({
    method: "GET",
    path: `/graphql?${new URLSearchParams({
      documentId: documents[operation]?.id as string,
      variables: JSON.stringify(variables),
    })}`,
    headers: { "x-apollo-operation-name": operation, ...(auth ? signedIn() : {}) },
  });
  const feed = () => ({ first: 20 });
  const postId = () => ({ id: pick(fixtures.posts) });
  const handle = () => ({ handle: pick(fixtures.handles) });
  switch (scenario) {
    case "feed":
      return () => post("Feed", feed(), true);
    case "post":
      return () => post("PostDetail", postId(), true);
    case "profile":
      return () => post("Profile", handle(), true);
    case "explore":
      return () => post("Explore", {}, false);
    case "feed-get":
      return () => get("Feed", feed(), true);
    case "post-get":
      return () => get("PostDetail", postId(), true);
    case "profile-get":
      return () => get("Profile", handle(), true);
    case "explore-get":
      return () => get("Explore", {}, false);
    case "write-mix":
      return () => {
        const roll = Math.random();
        if (roll < 0.4) return post("Feed", feed(), true);
        if (roll < 0.8) return post("PostDetail", postId(), true);
        if (roll < 0.88) return post("LikePost", { postId: pick(fixtures.posts) }, true);
        if (roll < 0.92) return post("UnlikePost", { postId: pick(fixtures.posts) }, true);
        if (roll < 0.96) return post("AddComment", { postId: pick(fixtures.posts), body: "Lovely light ✨" }, true);
        if (roll < 0.98) return post("Follow", { userId: pick(fixtures.users) }, true);
        return post("Unfollow", { userId: pick(fixtures.users) }, true);
      };
  }
}

/**
 * The screen each read scenario shows, as PostGraphile serves it (bench/peer): the same operation and variables,
 * over POST (the peer has no persisted documents: its GET scenarios are its POST ones). Writes are Shutter's only.
 */
export const PEER_SCREENS: Partial<Record<Scenario, keyof typeof PEER_DOCUMENTS>> = {
  feed: "Feed",
  post: "PostDetail",
  profile: "Profile",
  explore: "Explore",
  "feed-get": "Feed",
  "post-get": "PostDetail",
  "profile-get": "Profile",
  "explore-get": "Explore",
};

/**
 * The peer's variables for a screen of a post or a person (a post's global id, a handle), as Shutter's
 * `PostDetail`, `Profile`, `Feed` and `Explore` take them: ids are the rows' UUIDs there, and the SQL functions
 * read one row more than the page, for `hasNextPage`.
 */
export function peerVariables(
  screen: keyof typeof PEER_DOCUMENTS,
  of: { postId: string; handle: string },
): Record<string, unknown> {
  switch (screen) {
    case "Feed":
      return { count: 21 };
    case "PostDetail":
      return { id: decodeGlobalID(of.postId).id };
    case "Profile":
      return { handle: of.handle };
    case "Explore":
      return { count: 22 };
  }
}

/** The peer's request for a screen, with variables drawn like Shutter's. */
export function peerRequestsFor(scenario: Scenario, fixtures: Fixtures): () => BenchRequest {
  const screen = PEER_SCREENS[scenario];
  if (!screen) throw new Error(`PostGraphile does not serve the ${scenario} scenario`);
  const variables = () => peerVariables(screen, { postId: pick(fixtures.posts), handle: pick(fixtures.handles) });
  return () => ({
    method: "POST",
    path: "/graphql",
    headers: {
      "content-type": "application/json",
      ...(screen === "Explore" ? {} : { authorization: `Bearer ${pick(fixtures.viewers).token}` }),
    },
    body: JSON.stringify({ query: PEER_DOCUMENTS[screen], variables: variables(), operationName: screen }),
  });
}
