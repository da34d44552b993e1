import { describe, expect } from "vitest";
import { schema } from "../../schema/index.ts";
import { createPhoto, createPost, globalId, gql, ok, rowCounts, type TestUser, test } from "../kit/helpers.ts";

const NONE = "00000000-0000-7000-8000-000000000000";
const NOBODY = globalId("User", NONE);
const NO_POST = globalId("Post", NONE);

/** A well-formed call of every mutation; `open` ones are meant to work signed out. */
const MUTATIONS: Record<string, { open?: boolean; document: string; variables: Record<string, unknown> }> = {
  signUp: {
    open: true,
    document: `mutation ($input: SignUpInput!) { signUp(input: $input) { __typename } }`,
    variables: {
      input: { handle: "auth_probe", displayName: "P", email: "probe@example.com", password: "long enough pw" },
    },
  },
  logIn: {
    open: true,
    document: `mutation { logIn(input: { login: "nobody", password: "whatever1" }) { __typename } }`,
    variables: {},
  },
  refreshSession: {
    open: true,
    document: `mutation { refreshSession(input: { refreshToken: "x" }) { __typename } }`,
    variables: {},
  },
  logOut: { document: `mutation { logOut { __typename } }`, variables: {} },
  updateProfile: { document: `mutation { updateProfile(input: { bio: "hi" }) { __typename } }`, variables: {} },
  follow: {
    document: `mutation ($id: ID!) { follow(input: { userId: $id }) { __typename } }`,
    variables: { id: NOBODY },
  },
  unfollow: {
    document: `mutation ($id: ID!) { unfollow(input: { userId: $id }) { __typename } }`,
    variables: { id: NOBODY },
  },
  likePost: {
    document: `mutation ($id: ID!) { likePost(input: { postId: $id }) { __typename } }`,
    variables: { id: NO_POST },
  },
  unlikePost: {
    document: `mutation ($id: ID!) { unlikePost(input: { postId: $id }) { __typename } }`,
    variables: { id: NO_POST },
  },
  addComment: {
    document: `mutation ($id: ID!) { addComment(input: { postId: $id, body: "hi" }) { __typename } }`,
    variables: { id: NO_POST },
  },
  deleteComment: {
    document: `mutation ($id: ID!) { deleteComment(input: { commentId: $id }) { __typename } }`,
    variables: { id: globalId("Comment", NONE) },
  },
  createPost: {
    document: `mutation ($id: ID!) { createPost(input: { photoIds: [$id] }) { __typename } }`,
    variables: { id: globalId("Photo", NONE) },
  },
  deletePost: {
    document: `mutation ($id: ID!) { deletePost(input: { postId: $id }) { __typename } }`,
    variables: { id: NO_POST },
  },
  markNotificationsRead: { document: `mutation { markNotificationsRead(input: {}) { __typename } }`, variables: {} },
  createUpload: {
    document: `mutation { createUpload(input: { contentType: "image/png", byteSize: 100, purpose: POST_PHOTO }) { __typename } }`,
    variables: {},
  },
  subscribeToSource: {
    document: `mutation { subscribeToSource(input: { source: "ci" }) { __typename } }`,
    variables: {},
  },
  unsubscribeFromSource: {
    document: `mutation { unsubscribeFromSource(input: { source: "ci" }) { __typename } }`,
    variables: {},
  },
  completeUpload: {
    document: `mutation ($id: ID!) { completeUpload(input: { photoId: $id }) { __typename } }`,
    variables: { id: globalId("Photo", NONE) },
  },
};

// Ids in the documents above are replaced with real ones where the test needs them to exist.
const withIds = (name: string, ids: Record<string, string>) => ({
  ...MUTATIONS[name]!,
  variables: { ...MUTATIONS[name]!.variables, ...ids },
});

describe("every mutation", () => {
  test("is listed here (a new mutation must get an authorization case)", () => {
    const fields = Object.keys(schema.getMutationType()?.getFields() ?? {}).sort();
    expect(Object.keys(MUTATIONS).sort()).toEqual(fields);
  });

  test.each(Object.entries(MUTATIONS).filter(([, m]) => !m.open))(
    "%s requires a signed-in viewer and changes nothing without one",
    async (name, { document, variables }) => {
      const before = await rowCounts();
      const result = await gql(document, variables);
      expect(result.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
      expect(result.errors?.[0]?.message).toBe("Sign in to do that.");
      expect(result.errors?.[0]?.path).toEqual([name]);
      expect(await rowCounts()).toEqual(before);
    },
  );

  test.each(Object.entries(MUTATIONS).filter(([, m]) => m.open))(
    "%s works signed out",
    async (_name, { document, variables }) => {
      const result = await gql(document, variables);
      expect(result.errors).toBeUndefined();
    },
  );
});

describe("the wrong viewer", () => {
  async function attempt(name: string, ids: Record<string, string>, as: TestUser) {
    const { document, variables } = withIds(name, ids);
    return (await ok(document, variables, { token: as.token }))[name];
  }

  test("cannot delete someone else's post or comment, or post their photos", async ({ alice, bob }) => {
    const post = await createPost(alice);
    const comment = (
      await ok(
        `mutation ($id: ID!) { addComment(input: { postId: $id, body: "mine" }) { ... on AddCommentSuccess { comment { id } } } }`,
        { id: post.gid },
        { token: alice.token },
      )
    ).addComment.comment.id;
    const photo = await createPhoto(alice.id);
    const before = await rowCounts();
    expect(await attempt("deletePost", { id: post.gid }, bob)).toEqual({ __typename: "ForbiddenError" });
    expect(await attempt("deleteComment", { id: comment }, bob)).toEqual({ __typename: "ForbiddenError" });
    expect(await attempt("createPost", { id: photo.gid }, bob)).toEqual({ __typename: "ForbiddenError" });
    expect(await rowCounts()).toEqual(before);
  });

  test("changes only their own profile and notifications", async ({ alice, bob }) => {
    const photo = await createPhoto(alice.id, { purpose: "AVATAR" });
    const result = await ok(
      `mutation ($id: ID!) { updateProfile(input: { avatarPhotoId: $id }) { __typename ... on Error { code } } }`,
      { id: photo.gid },
      { token: bob.token },
    );
    expect(result.updateProfile).toEqual({ __typename: "ForbiddenError", code: "FORBIDDEN" });
    // markNotificationsRead only ever touches the viewer's own (see notifications.test.ts); updateProfile has
    // no target: it can only change the viewer.
    const own = await ok(
      `mutation { updateProfile(input: { bio: "bob's" }) { ... on UpdateProfileSuccess { user { handle bio } } } }`,
      {},
      { token: bob.token },
    );
    expect(own.updateProfile.user).toEqual({ handle: bob.handle, bio: "bob's" });
    const alices = await ok(`query ($h: String!) { user(handle: $h) { bio } }`, { h: alice.handle });
    expect(alices.user.bio).toBe("");
  });
});
