// Idempotency-Key on mutations: what a mobile app on a flaky network relies on. A retried request (the first
// answer lost on the way back) replays the first answer with no second effect — also when the duplicates arrive
// at the same moment on two instances; the same key for something else is refused; a key whose effect committed
// is never applied twice, even if its answer was lost.
import { randomUUID } from "node:crypto";
import { ApolloClient, ApolloLink, gql, HttpLink, InMemoryCache } from "@apollo/client";
import { SetContextLink } from "@apollo/client/link/context";
import { RetryLink } from "@apollo/client/link/retry";
import { beforeAll, describe, expect } from "vitest";
import { db } from "../../src/platform/db.ts";
import { keyId } from "../../src/platform/idempotency.ts";
import { createPhoto, createPost, createUser, PASSWORD, rowCounts, type TestUser, test } from "../kit/helpers.ts";
import { type Instance, startInstance } from "../kit/instances.ts";

let one: Instance;
let two: Instance;

beforeAll(async () => {
  [one, two] = await Promise.all([startInstance(), startInstance()]);
});

const LIKE = `mutation ($id: ID!) { likePost(input: { postId: $id }) {
  __typename ... on LikePostSuccess { post { id likeCount viewerHasLiked } } ... on Error { code } } }`;
const COMMENT = `mutation ($id: ID!, $body: String!) { addComment(input: { postId: $id, body: $body }) {
  __typename ... on AddCommentSuccess { comment { id body } } ... on Error { code } } }`;
const CREATE_POST = `mutation ($ids: [ID!]!) { createPost(input: { photoIds: $ids, caption: "once" }) {
  __typename ... on CreatePostSuccess { post { id } } ... on Error { code } } }`;
const SIGN_UP = `mutation ($input: SignUpInput!) { signUp(input: $input) {
  __typename ... on SignUpSuccess { session { accessToken refreshToken } } ... on Error { code message } } }`;

async function send(
  instance: Instance,
  query: string,
  variables: Record<string, unknown>,
  options: { user?: TestUser; key?: string } = {},
) {
  const response = await instance.fetch("/graphql", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(options.user ? { authorization: `Bearer ${options.user.token}` } : {}),
      ...(options.key ? { "idempotency-key": options.key } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  return {
    status: response.status,
    replayed: response.headers.get("idempotent-replayed"),
    retryAfter: response.headers.get("retry-after"),
    body: (await response.json()) as { data?: any; errors?: any[] },
  };
}

const LOG_IN = `mutation ($login: String!, $password: String!) { logIn(input: { login: $login, password: $password }) {
  __typename ... on LogInSuccess { session { accessToken refreshToken } } ... on Error { code message } } }`;
const REFRESH = `mutation ($token: String!) { refreshSession(input: { refreshToken: $token }) {
  __typename ... on RefreshSessionSuccess { session { accessToken refreshToken } } ... on Error { code message } } }`;

/** The answer itself, without the response's metadata (request id, statistics in development). */
const answerOf = ({ data, errors }: { data?: unknown; errors?: unknown }) => ({ data, errors });

const likesOf = (postId: string) => db().like.count({ where: { postId } });
const events = (kind: string, postId: string) =>
  db().outboxEvent.count({ where: { kind, payload: { path: ["postId"], equals: postId } } });

test("a retried like replays the first answer: one like, one count, one notification", async ({ alice, bob }) => {
  const post = await createPost(alice);
  const key = randomUUID();
  const first = await send(one, LIKE, { id: post.gid }, { user: bob, key });
  expect(first.status).toBe(200);
  expect(first.replayed).toBeNull();
  expect(first.body.data.likePost.post).toMatchObject({ likeCount: 1, viewerHasLiked: true });
  // The answer was lost on the way back; the app sends the same request again, here and on the other instance.
  for (const instance of [one, two]) {
    const again = await send(instance, LIKE, { id: post.gid }, { user: bob, key });
    expect(again.status).toBe(200);
    expect(again.replayed).toBe("true");
    expect(answerOf(again.body)).toEqual(answerOf(first.body));
  }
  expect(await likesOf(post.id)).toBe(1);
  expect(await events("post.liked", post.id)).toBe(1);
  // Without a key the same mutation runs again (a like is naturally idempotent: still one).
  expect((await send(one, LIKE, { id: post.gid }, { user: bob })).replayed).toBeNull();
});

test("duplicates arriving at once on two instances: exactly one comment, and every answer is its answer", async ({
  alice,
  bob,
}) => {
  const post = await createPost(alice);
  const key = randomUUID();
  const answers = await Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      send(i % 2 ? two : one, COMMENT, { id: post.gid, body: "once" }, { user: bob, key }),
    ),
  );
  expect(await db().comment.count({ where: { postId: post.id } })).toBe(1);
  expect(await events("comment.added", post.id)).toBe(1);
  const [comment] = await db().comment.findMany({ where: { postId: post.id } });
  for (const answer of answers) {
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(answer.body.data, JSON.stringify(answer.body)).not.toBeNull();
    expect(answer.body.data.addComment.comment.body).toBe("once");
    expect(Buffer.from(answer.body.data.addComment.comment.id, "base64").toString()).toBe(`Comment:${comment?.id}`);
  }
  expect(answers.filter((a) => a.replayed === "true").length).toBe(7);
});

test("a retried createPost makes one post", async ({ alice }) => {
  const photo = await createPhoto(alice.id);
  const key = randomUUID();
  const [a, b] = await Promise.all([
    send(one, CREATE_POST, { ids: [photo.gid] }, { user: alice, key }),
    send(two, CREATE_POST, { ids: [photo.gid] }, { user: alice, key }),
  ]);
  expect(answerOf(a.body)).toEqual(answerOf(b.body));
  expect(a.body.data.createPost.__typename).toBe("CreatePostSuccess");
  expect(await db().post.count({ where: { authorId: alice.id } })).toBe(1);
  expect((await db().user.findUniqueOrThrow({ where: { id: alice.id } })).postCount).toBe(1);
});

test("sign-up retried at once (no viewer yet): one account, the same session for both", async () => {
  const key = randomUUID();
  const handle = `idem_${randomUUID().slice(0, 8)}`;
  const input = { handle, displayName: "Once", email: `${handle}@example.com`, password: "correct horse battery" };
  const [a, b] = await Promise.all([send(one, SIGN_UP, { input }, { key }), send(two, SIGN_UP, { input }, { key })]);
  expect(a.body.data.signUp.__typename, JSON.stringify(a.body)).toBe("SignUpSuccess");
  expect(answerOf(b.body)).toEqual(answerOf(a.body));
  expect(await db().user.count({ where: { handle } })).toBe(1);
  expect(await db().session.count({ where: { user: { handle } } })).toBe(1);
});

test("the same key for another request is refused (422) and changes nothing", async ({ alice, bob }) => {
  const post = await createPost(alice);
  const key = randomUUID();
  await send(one, COMMENT, { id: post.gid, body: "first" }, { user: bob, key });
  const counts = await rowCounts();
  const other = await send(one, COMMENT, { id: post.gid, body: "second" }, { user: bob, key });
  expect(other.status).toBe(422);
  expect(other.body.errors?.[0].extensions.code).toBe("IDEMPOTENCY_KEY_REUSED");
  expect(other.body.errors?.[0].message).toMatch(/Use a new key/);
  expect(await rowCounts()).toEqual(counts);
});

test("keys are per person: someone else's key is theirs alone", async ({ alice, bob, carol }) => {
  const post = await createPost(alice);
  const key = randomUUID();
  await send(one, COMMENT, { id: post.gid, body: "same" }, { user: bob, key });
  const carols = await send(one, COMMENT, { id: post.gid, body: "same" }, { user: carol, key });
  expect(carols.replayed).toBeNull();
  expect(await db().comment.count({ where: { postId: post.id } })).toBe(2);
});

test("a key whose effect committed but whose answer was lost is never applied twice", async ({ alice, bob }) => {
  const post = await createPost(alice);
  const key = randomUUID();
  await send(one, COMMENT, { id: post.gid, body: "crash after commit" }, { user: bob, key });
  // As if the instance died between committing the comment (and the key, in the same transaction) and
  // recording its answer.
  await db().idempotencyKey.update({
    where: { scope_key: { scope: bob.id, key: keyId(key) } },
    data: { response: null as never, createdAt: new Date(Date.now() - 2 * 60_000) },
  });
  const retry = await send(two, COMMENT, { id: post.gid, body: "crash after commit" }, { user: bob, key });
  expect(retry.status).toBe(409);
  expect(retry.retryAfter).toBe("1");
  expect(retry.body.errors?.[0].extensions.code).toBe("IDEMPOTENCY_KEY_IN_USE");
  expect(retry.body.errors?.[0].message).toMatch(/applied, but its answer was lost/);
  expect(await db().comment.count({ where: { postId: post.id } })).toBe(1);
});

test("after the retention window a key is new again; malformed keys are refused", async ({ alice, bob }) => {
  const post = await createPost(alice);
  const key = randomUUID();
  await send(one, COMMENT, { id: post.gid, body: "a day apart" }, { user: bob, key });
  await db().idempotencyKey.update({
    where: { scope_key: { scope: bob.id, key: keyId(key) } },
    data: { createdAt: new Date(Date.now() - 25 * 3600_000) },
  });
  const later = await send(one, COMMENT, { id: post.gid, body: "a day apart" }, { user: bob, key });
  expect(later.replayed).toBeNull();
  expect(await db().comment.count({ where: { postId: post.id } })).toBe(2);
  const bad = await send(one, COMMENT, { id: post.gid, body: "x" }, { user: bob, key: "no spaces allowed" });
  expect(bad.status).toBe(400);
  expect(bad.body.errors?.[0].extensions.code).toBe("IDEMPOTENCY_KEY_INVALID");
  expect(await db().comment.count({ where: { postId: post.id } })).toBe(2);
});

test("Apollo Client with its RetryLink: a comment whose answer was lost on the way back is sent again and made once", async ({
  alice,
  bob,
}) => {
  const post = await createPost(alice);
  // The network drops the first answer, after the server has acted (a phone leaving a cell).
  let attempts = 0;
  const flakyFetch: typeof fetch = async (input, init) => {
    attempts++;
    const response = await fetch(input, init);
    if (attempts === 1) {
      await response.arrayBuffer();
      throw new TypeError("fetch failed: the connection was reset");
    }
    return response;
  };
  // One key per user action, set before the RetryLink so every attempt carries it (docs/retries-and-outages.md).
  const actionKey = new SetContextLink((previous, operation) =>
    operation.operationType === "mutation"
      ? { headers: { ...previous.headers, "idempotency-key": previous.actionId ?? randomUUID() } }
      : {},
  );
  const client = new ApolloClient({
    link: ApolloLink.from([
      actionKey,
      new RetryLink({ delay: { initial: 10, jitter: false }, attempts: { max: 3 } }),
      new HttpLink({ uri: await one.url(), fetch: flakyFetch, headers: { authorization: `Bearer ${bob.token}` } }),
    ]),
    cache: new InMemoryCache(),
  });
  const { data } = await client.mutate({
    mutation: gql`mutation Comment($id: ID!) { addComment(input: { postId: $id, body: "made once" }) {
      __typename ... on AddCommentSuccess { comment { id body } } } }`,
    variables: { id: post.gid },
  });
  expect(attempts).toBe(2);
  expect((data as any).addComment.comment.body).toBe("made once");
  expect(await db().comment.count({ where: { postId: post.id } })).toBe(1);
});

describe("answers that sign someone in", () => {
  test("are kept sealed: the table holds neither the key nor the tokens", async () => {
    const user = await createUser();
    const key = randomUUID();
    const logIn = await send(one, LOG_IN, { login: user.handle, password: PASSWORD }, { key });
    const { accessToken, refreshToken } = logIn.body.data.logIn.session;
    const rows = await db().$queryRaw<unknown[]>`SELECT * FROM idempotency_keys WHERE scope = 'anonymous'`;
    const stored = JSON.stringify(rows);
    expect(stored).toContain(keyId(key));
    for (const secret of [key, accessToken, refreshToken, accessToken.split(".")[1]]) {
      expect(stored).not.toContain(secret);
    }
  });

  test("a repeated sign-in gets its answer while the tokens are unused, and is refused once they were", async () => {
    const user = await createUser();
    const key = randomUUID();
    const variables = { login: user.handle, password: PASSWORD };
    const first = await send(one, LOG_IN, variables, { key });
    // The answer was lost on the way: the repeat gets it.
    const again = await send(two, LOG_IN, variables, { key });
    expect(again.replayed).toBe("true");
    expect(answerOf(again.body)).toEqual(answerOf(first.body));
    // The client got it and refreshed: a repeat now comes from someone else.
    const refreshed = await send(one, REFRESH, { token: first.body.data.logIn.session.refreshToken });
    expect(refreshed.body.data.refreshSession.__typename).toBe("RefreshSessionSuccess");
    const late = await send(two, LOG_IN, variables, { key });
    expect([late.status, late.body.errors?.[0].extensions.code]).toEqual([401, "UNAUTHENTICATED"]);
    expect(JSON.stringify(late.body)).not.toContain(first.body.data.logIn.session.accessToken);
    // Refused, not punished: the session the client holds goes on.
    const next = await send(one, REFRESH, { token: refreshed.body.data.refreshSession.session.refreshToken });
    expect(next.body.data.refreshSession.__typename).toBe("RefreshSessionSuccess");
  });

  test("a repeated refresh gets the same successor until it is used; after that it is a reuse, and ends the session", async () => {
    const user = await createUser();
    const signedIn = await send(one, LOG_IN, { login: user.handle, password: PASSWORD });
    const spent = signedIn.body.data.logIn.session.refreshToken;
    const key = randomUUID();
    const first = await send(one, REFRESH, { token: spent }, { key });
    const successor = first.body.data.refreshSession.session.refreshToken;
    const again = await send(two, REFRESH, { token: spent }, { key });
    expect(again.body.data.refreshSession.session.refreshToken).toBe(successor);
    // The client uses the successor; then a stolen copy of the first request is replayed with its key.
    const used = await send(one, REFRESH, { token: successor });
    expect(used.body.data.refreshSession.__typename).toBe("RefreshSessionSuccess");
    const thief = await send(two, REFRESH, { token: spent }, { key });
    expect([thief.status, thief.body.errors?.[0].extensions.code]).toEqual([401, "UNAUTHENTICATED"]);
    expect(JSON.stringify(thief.body)).not.toContain(successor);
    // As with any reuse of a spent token: the whole session ends.
    const after = await send(one, REFRESH, { token: used.body.data.refreshSession.session.refreshToken });
    expect(after.body.data.refreshSession.__typename).toBe("UnauthenticatedError");
    expect(await db().session.count({ where: { userId: user.id, revokedAt: { not: null } } })).toBe(1);
  });
});

test("what is kept for repeats has a budget: beyond it a key is kept without its answer, never applied twice", async ({
  alice,
  bob,
}) => {
  const instance = await startInstance({ IDEMPOTENCY_ANSWER_BYTES_PER_HOUR: "1024" });
  try {
    const post = await createPost(alice);
    const keys = Array.from({ length: 8 }, () => randomUUID());
    const body = "x".repeat(200); // each answer holds it: ~300 bytes kept
    for (const key of keys) {
      const first = await send(instance, COMMENT, { id: post.gid, body }, { user: bob, key });
      expect(first.body.data.addComment.__typename).toBe("AddCommentSuccess");
    }
    const repeats = [];
    for (const key of keys) repeats.push(await send(instance, COMMENT, { id: post.gid, body }, { user: bob, key }));
    // The first few were kept and replay; the rest are known applied, their answers not kept.
    const kept = repeats.filter((r) => r.replayed === "true").length;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(keys.length);
    for (const repeat of repeats.slice(kept)) {
      expect([repeat.status, repeat.body.errors?.[0].extensions.code]).toEqual([409, "IDEMPOTENCY_KEY_IN_USE"]);
      expect(repeat.body.errors?.[0].message).toMatch(/applied, but its answer was lost/);
    }
    expect(await db().comment.count({ where: { postId: post.id } })).toBe(keys.length);
  } finally {
    await instance.close();
  }
});
