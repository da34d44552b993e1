// Writes are units of work (services/write.ts): the request's Idempotency-Key claimed first, in the write's own
// transaction; outbox events and changes collected, and applied after the commit in one place — the entity
// cache bumped, the request's loaders cleared, listeners told. A write that changes a cached entity without
// declaring it is reported in every development response, and every test fails on it (test/kit/instances.ts).
import { afterEach, describe, expect } from "vitest";
import { applyChanges, type Change, onChanges, undeclaredChanges } from "../../src/caching/changes.ts";
import { CHANGED_LOADERS, loadThroughCache } from "../../src/caching/entities.ts";
import { createLoaders } from "../../src/loaders/index.ts";
import { postEntity } from "../../src/loaders/posts.ts";
import { userEntity } from "../../src/loaders/users.ts";
import { db, writtenTables } from "../../src/platform/db.ts";
import { keyId } from "../../src/platform/idempotency.ts";
import { createRequestScope, type RequestScope, requestScope } from "../../src/platform/request-scope.ts";
import { likePost } from "../../src/services/likes.ts";
import { type RequestWrites, write } from "../../src/services/write.ts";
import { createPost, gql, ok, test } from "../kit/helpers.ts";

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
    expect(heard).toEqual([
      // Whether bob likes it, cached per (viewer, post); his request's loader forgets it by post.
      {
        entity: "viewer-like",
        id: `${bob.id}:${post.id}`,
        parts: ["viewer-like"],
        table: "likes",
        loader: "viewerHasLiked",
        loaderKey: post.id,
      },
      { entity: "post", id: post.id, parts: ["post-counts"], table: "posts", loader: "post" },
    ]);
    expect((await ok(`query ($id: ID!) { post(id: $id) { likeCount } }`, { id: post.gid })).post.likeCount).toBe(1);
  });

  test("services run without HTTP, and their declarations still reach the cache", async ({ alice, bob }) => {
    const post = await createPost(alice);
    await loadThroughCache(postEntity, [post.id]); // cached with no likes
    const viewer = { viewer: { id: bob.id, sessionId: null, expiresAt: null } };
    expect((await likePost(viewer, post.id)).post.likeCount).toBe(1);
    expect((await loadThroughCache(postEntity, [post.id]))[0]?.likeCount).toBe(1);
    await expect(likePost(viewer, "00000000-0000-4000-8000-000000000000")).rejects.toMatchObject({
      extensions: { code: "NOT_FOUND" },
    });
  });

  test("every loader a change names is one the request has (caching/entities.ts names them as strings)", () => {
    const loaders = createLoaders(null); // its modules define every entity and viewer fact
    expect([...CHANGED_LOADERS].sort()).toEqual([
      "photo",
      "photosByPost",
      "post",
      "user",
      "viewerHasLiked",
      "viewerIsFollowing",
    ]);
    for (const name of CHANGED_LOADERS) expect(loaders).toHaveProperty(name);
  });

  test("a change names all of an entity's parts unless told which", () => {
    expect(userEntity.changed("u1").parts).toEqual(["user", "user-counts"]);
    expect(userEntity.changed("u1", "user-counts").parts).toEqual(["user-counts"]);
  });
});

describe("the unit of work", () => {
  /** A request's writes with an Idempotency-Key to claim, and the changes its loaders were told to forget. */
  function request(key: string) {
    const forgotten: Change[] = [];
    const writes: RequestWrites = {
      idempotency: { scope: "anonymous", key, requestHash: "h", claimed: false, taken: false },
      forget: (changes) => forgotten.push(...changes),
    };
    return { writes, forgotten };
  }
  const claimed = async (key: string) =>
    (await db().$queryRaw<unknown[]>`SELECT 1 FROM idempotency_keys WHERE key = ${keyId(key)}`).length;

  test("claims the request's key as its first statement, and applies its changes only after the commit", async ({
    alice,
  }) => {
    const post = await createPost(alice);
    const { writes, forgotten } = request(`k-${post.id}`);
    const statements: string[] = [];
    const scope = await inRequest(() =>
      write({ writes }, async ({ tx, event, changed }) => {
        statements.push(
          ...(
            await tx.$queryRaw<
              { n: number }[]
            >`SELECT count(*)::int AS n FROM idempotency_keys WHERE key = ${keyId(writes.idempotency!.key)}`
          ).map((row) => `claimed before the work: ${row.n}`),
        );
        await tx.post.update({ where: { id: post.id }, data: { caption: "unit" } });
        await event("post.created", null, { postId: post.id, actorId: alice.id });
        changed(postEntity.changed(post.id, "post"));
        expect(forgotten).toEqual([]); // nothing applied before the commit
      }),
    );
    expect(statements).toEqual(["claimed before the work: 1"]);
    expect(writes.idempotency).toMatchObject({ claimed: true, taken: false });
    expect(await claimed(`k-${post.id}`)).toBe(1);
    expect(forgotten.map((change) => change.entity)).toEqual(["post"]);
    expect(undeclaredChanges(scope)).toEqual([]);
    // A second write of the same request does not claim again (the key is the request's, claimed once).
    await write({ writes }, ({ tx }) => tx.post.findUnique({ where: { id: post.id } }));
    expect(await claimed(`k-${post.id}`)).toBe(1);
  });

  test("a write that throws leaves no key, no event and no change behind", async ({ alice }) => {
    const post = await createPost(alice);
    const { writes, forgotten } = request(`k-fail-${post.id}`);
    const before = await db().outboxEvent.count();
    await expect(
      write({ writes }, async ({ tx, event, changed }) => {
        await tx.post.update({ where: { id: post.id }, data: { caption: "never" } });
        await event("post.created", null, { postId: post.id, actorId: alice.id });
        changed(postEntity.changed(post.id, "post"));
        throw new Error("refused");
      }),
    ).rejects.toThrow("refused");
    expect(await claimed(`k-fail-${post.id}`)).toBe(0);
    expect(writes.idempotency).toMatchObject({ claimed: false, taken: false });
    expect(await db().outboxEvent.count()).toBe(before);
    expect(forgotten).toEqual([]);
    expect((await db().post.findUniqueOrThrow({ where: { id: post.id } })).caption).not.toBe("never");
  });

  test("a write idempotent by itself claims nothing: the mutation's own write does", async ({ alice }) => {
    const post = await createPost(alice);
    const { writes } = request(`k-helper-${post.id}`);
    await write({ writes }, ({ tx }) => tx.post.findUnique({ where: { id: post.id } }), {
      singleStatement: true,
      idempotent: true,
    });
    expect(await claimed(`k-helper-${post.id}`)).toBe(0);
    // One statement with a key to claim still runs in a transaction: the claim and the effect commit together.
    const scope = await inRequest(() =>
      write({ writes }, ({ tx }) => tx.post.findUnique({ where: { id: post.id } }), { singleStatement: true }),
    );
    expect(await claimed(`k-helper-${post.id}`)).toBe(1);
    expect(scope.sqlStatements).toBe(5); // BEGIN, the lock, the key, the statement, COMMIT
    // Without a key to claim, one statement is just that.
    const alone = await inRequest(() =>
      write(null, ({ tx }) => tx.post.findUnique({ where: { id: post.id } }), { singleStatement: true }),
    );
    expect(alone.sqlStatements).toBe(1);
  });

  test("another request holding the key stops the write before it does anything", async ({ alice }) => {
    const post = await createPost(alice);
    const first = request(`k-race-${post.id}`);
    await write(first, ({ tx }) => tx.post.findUnique({ where: { id: post.id } }));
    const second = request(`k-race-${post.id}`);
    await expect(
      write(second, ({ tx }) => tx.post.update({ where: { id: post.id }, data: { caption: "twice" } })),
    ).rejects.toMatchObject({ name: "IdempotencyKeyTaken" });
    expect(second.writes.idempotency).toMatchObject({ claimed: false, taken: true });
    expect((await db().post.findUniqueOrThrow({ where: { id: post.id } })).caption).not.toBe("twice");
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
      await applyChanges([postEntity.changed(post.id, "post")]);
    });
    expect(undeclaredChanges(declared)).toEqual([]);
    // The declaration is what the cache goes by: the value read next is the new one.
    expect((await loadThroughCache(postEntity, [post.id]))[0]?.caption).toBe("changed");
  });

  test("a declaration of another table does not cover a write", async ({ alice }) => {
    const post = await createPost(alice);
    const scope = await inRequest(async () => {
      await db().$executeRaw`UPDATE users SET bio = 'x' WHERE id = ${alice.id}::uuid`;
      await applyChanges([postEntity.changed(post.id, "post-counts")]);
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
    expect(writtenTables(scope)).toEqual(new Set(["notifications"]));
    expect(undeclaredChanges(scope)).toEqual([]);
  });
});
