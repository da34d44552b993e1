// Writes declare what they changed (platform/changes.ts): one mechanism after commit bumps the entity cache,
// clears the request's loaders and tells listeners; a write that changes a cached entity without declaring it
// is reported in every development response, and every test fails on it (test/instances.ts).
import { afterEach, describe, expect } from "vitest";
import { loadThroughCache } from "../src/loaders/cached.ts";
import { postEntity } from "../src/loaders/posts.ts";
import { userEntity } from "../src/loaders/users.ts";
import { type Change, commitChanges, onChanges, undeclaredChanges } from "../src/platform/changes.ts";
import { db } from "../src/platform/db.ts";
import { createRequestScope, type RequestScope, requestScope } from "../src/platform/logger.ts";
import { likePost } from "../src/services/likes.ts";
import { createPost, gql, ok, test } from "./helpers.ts";

const LIKE = `mutation ($id: ID!) {
  likePost(input: { postId: $id }) { ... on LikePostSuccess { post { likeCount } } ... on Error { code } }
}`;

/** Runs `work` as a request would (in a request scope) and returns that scope. */
async function inRequest(work: () => Promise<unknown>): Promise<RequestScope> {
  const scope = createRequestScope("changes-test");
  // Awaited inside the scope: a Prisma query runs when it is awaited, not when it is made.
  await requestScope.run(scope, async () => {
    await work();
  });
  return scope;
}

let unsubscribe: (() => void) | undefined;
afterEach(() => unsubscribe?.());

describe("declared changes", () => {
  test("a like declares its post's counters: listeners hear it after the commit, and the next read is fresh", async ({
    alice,
    bob,
  }) => {
    const post = await createPost(alice);
    const heard: Change[] = [];
    unsubscribe = onChanges((changes) => {
      heard.push(...changes);
    });
    // Cached before the write: the read after it must not be served the old counters.
    expect((await ok(`query ($id: ID!) { post(id: $id) { likeCount } }`, { id: post.gid })).post.likeCount).toBe(0);
    const liked = await gql(LIKE, { id: post.gid }, { token: bob.token });
    expect(liked.data?.likePost.post.likeCount).toBe(1);
    expect(liked.extensions?.undeclaredChanges).toBeUndefined();
    expect(heard).toEqual([{ entity: "post", id: post.id, parts: ["post-counts"], table: "posts", loader: "post" }]);
    expect((await ok(`query ($id: ID!) { post(id: $id) { likeCount } }`, { id: post.gid })).post.likeCount).toBe(1);
  });

  test("services run without HTTP, and their declarations still reach the cache", async ({ alice, bob }) => {
    const post = await createPost(alice);
    await loadThroughCache(postEntity, [post.id]); // cached with no likes
    const viewer = { id: bob.id, sessionId: null, expiresAt: null };
    expect((await likePost(viewer, post.id)).post.likeCount).toBe(1);
    expect((await loadThroughCache(postEntity, [post.id]))[0]?.likeCount).toBe(1);
    await expect(likePost(viewer, "00000000-0000-4000-8000-000000000000")).rejects.toMatchObject({
      extensions: { code: "NOT_FOUND" },
    });
  });

  test("a change names all of an entity's parts unless told which", () => {
    expect(userEntity.changed("u1").parts).toEqual(["user", "user-counts"]);
    expect(userEntity.changed("u1", "user-counts").parts).toEqual(["user-counts"]);
  });
});

describe("undeclared changes", () => {
  test("an update of a cached table without a declaration is reported; with one, it is not", async ({ alice }) => {
    const post = await createPost(alice);
    const update = () => db().post.update({ where: { id: post.id }, data: { caption: "changed" } });

    const silent = await inRequest(update);
    expect(undeclaredChanges(silent)).toEqual(["posts"]);

    const declared = await inRequest(async () => {
      await update();
      await commitChanges(postEntity.changed(post.id, "post"));
    });
    expect(undeclaredChanges(declared)).toEqual([]);
    // The declaration is what the cache goes by: the value read next is the new one.
    expect((await loadThroughCache(postEntity, [post.id]))[0]?.caption).toBe("changed");
  });

  test("a declaration of another table does not cover a write", async ({ alice }) => {
    const post = await createPost(alice);
    const scope = await inRequest(async () => {
      await db().$executeRaw`UPDATE users SET bio = 'x' WHERE id = ${alice.id}::uuid`;
      await commitChanges(postEntity.changed(post.id, "post-counts"));
    });
    expect(undeclaredChanges(scope)).toEqual(["users"]);
  });

  test("statements inside a transaction count once it commits; a rolled-back one changed nothing", async ({
    alice,
  }) => {
    const post = await createPost(alice);
    const committed = await inRequest(() =>
      db().$transaction(async (tx) => {
        await tx.post.update({ where: { id: post.id }, data: { caption: "in a transaction" } });
      }),
    );
    expect(undeclaredChanges(committed)).toEqual(["posts"]);

    const rolledBack = await inRequest(() =>
      db()
        .$transaction(async (tx) => {
          await tx.post.update({ where: { id: post.id }, data: { caption: "never" } });
          throw new Error("changed my mind");
        })
        .catch(() => undefined),
    );
    expect(undeclaredChanges(rolledBack)).toEqual([]);
    expect((await db().post.findUniqueOrThrow({ where: { id: post.id } })).caption).toBe("in a transaction");
  });

  test("inserts and writes to tables nothing caches need no declaration", async ({ alice }) => {
    const post = await createPost(alice);
    const scope = await inRequest(async () => {
      await db().comment.create({ data: { postId: post.id, authorId: alice.id, body: "new row" } });
      await db().notification.updateMany({ where: { recipientId: alice.id }, data: { readAt: new Date() } });
    });
    expect(scope.writtenTables).toEqual(new Set(["notifications"]));
    expect(undeclaredChanges(scope)).toEqual([]);
  });
});
