// What must hold after a soak, whatever the faults did: read straight from PostgreSQL and the bucket's folder.
// Counters equal what they count; every like, comment and follow has exactly its notification (likes: an actor of
// the post's aggregate notification) and no notification outlives its cause; the outbox is drained; every photo
// posted during the run is processed and stored, and no stored object belongs to nothing; no write the clients
// retried happened twice, and every write they were told succeeded is there, with its idempotency key. Then what the
// clients are served, through each instance: sampled viewers' feeds against the tables (checkServedFeeds).
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import type pg from "pg";
import { type Variant, variantKey } from "../src/images/variants.ts";
import { keyId } from "../src/platform/idempotency.ts";
import type { LedgerEntry } from "./soak-load.ts";

export interface IntegrityCheck {
  name: string;
  ok: boolean;
  detail?: string;
}

const count = async (db: pg.Client, sql: string, params: unknown[] = []) =>
  Number((await db.query(sql, params)).rows[0].n);

/** Waits until no outbox event is unprocessed and no posted photo is still being processed. */
export async function waitForDrain(db: pg.Client, timeoutMs: number, progress: (line: string) => void) {
  const started = Date.now();
  let lastReport = 0;
  for (;;) {
    const events = await count(db, "SELECT count(*) AS n FROM outbox_events WHERE processed_at IS NULL");
    const photos = await count(
      db,
      "SELECT count(*) AS n FROM media WHERE post_id IS NOT NULL AND status IN ('PENDING', 'PROCESSING')",
    );
    const seconds = Math.round((Date.now() - started) / 100) / 10;
    if (events === 0 && photos === 0) return { seconds, drained: true };
    if (Date.now() - started > timeoutMs) return { seconds, drained: false };
    if (Date.now() - lastReport > 5_000) {
      lastReport = Date.now();
      progress(`${events} events and ${photos} photos to go (${seconds} s)`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Every file under a folder, as paths relative to it. */
function filesUnder(directory: string): string[] {
  try {
    return readdirSync(directory, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => relative(directory, join(entry.parentPath, entry.name)));
  } catch {
    return [];
  }
}

export async function checkIntegrity(input: {
  database: pg.Client;
  ledger: LedgerEntry[];
  /** s3rver's folder: one `<key>._S3rver_object` file per object. */
  storage: { directory: string };
  since: Date;
  /** Keys the servers logged they could not record ("idempotency: answer not recorded"). */
  /** The keys (their SHA-256, as logged) whose answers the servers said they could not record. */
  unrecorded: Set<string>;
}): Promise<IntegrityCheck[]> {
  const { database: db, ledger, since } = input;
  const checks: IntegrityCheck[] = [];
  const zero = async (name: string, sql: string, params: unknown[] = []) => {
    const n = await count(db, sql, params);
    checks.push({ name, ok: n === 0, detail: n ? `${n} wrong` : undefined });
  };

  // Counters, each against its COUNT(*).
  await zero(
    "posts.like_count = COUNT(likes)",
    "SELECT count(*) AS n FROM posts p WHERE like_count <> (SELECT count(*) FROM likes l WHERE l.post_id = p.id)",
  );
  await zero(
    "posts.comment_count = COUNT(comments)",
    "SELECT count(*) AS n FROM posts p WHERE comment_count <> (SELECT count(*) FROM comments c WHERE c.post_id = p.id)",
  );
  await zero(
    "users.follower_count and following_count = COUNT(follows)",
    `SELECT count(*) AS n FROM users u
     WHERE follower_count <> (SELECT count(*) FROM follows f WHERE f.followee_id = u.id)
        OR following_count <> (SELECT count(*) FROM follows f WHERE f.follower_id = u.id)`,
  );
  await zero(
    "users.post_count = COUNT(published posts)",
    "SELECT count(*) AS n FROM users u WHERE post_count <> (SELECT count(*) FROM posts p WHERE p.author_id = u.id AND p.published)",
  );

  // Notifications, each against its cause.
  await zero(
    "every like (of someone else's post) is an actor of the post's like notification",
    `SELECT count(*) AS n FROM likes l JOIN posts p ON p.id = l.post_id
     WHERE l.user_id <> p.author_id AND NOT EXISTS (
       SELECT 1 FROM notifications n JOIN notification_actors a ON a.notification_id = n.id
       WHERE n.recipient_id = p.author_id AND n.group_key = 'like:' || p.id AND a.actor_id = l.user_id)`,
  );
  await zero(
    "every like notification's actor still likes the post, and its actor_count = COUNT(actors)",
    `SELECT (SELECT count(*) FROM notification_actors a JOIN notifications n ON n.id = a.notification_id
             WHERE n.kind = 'LIKE' AND NOT EXISTS (
               SELECT 1 FROM likes l WHERE l.post_id = n.post_id AND l.user_id = a.actor_id))
          + (SELECT count(*) FROM notifications n WHERE n.kind = 'LIKE'
             AND actor_count <> (SELECT count(*) FROM notification_actors a WHERE a.notification_id = n.id)) AS n`,
  );
  await zero(
    "every comment (on someone else's post) has exactly one notification",
    `SELECT count(*) AS n FROM comments c JOIN posts p ON p.id = c.post_id
     WHERE c.author_id <> p.author_id
       AND (SELECT count(*) FROM notifications n WHERE n.kind = 'COMMENT' AND n.comment_id = c.id) <> 1`,
  );
  await zero(
    "every follow has exactly one notification, and every follow notification its follow",
    `SELECT (SELECT count(*) FROM follows f
             WHERE (SELECT count(*) FROM notifications n
                    WHERE n.kind = 'FOLLOW' AND n.recipient_id = f.followee_id AND n.actor_id = f.follower_id) <> 1)
          + (SELECT count(*) FROM notifications n WHERE n.kind = 'FOLLOW' AND NOT EXISTS (
               SELECT 1 FROM follows f WHERE f.followee_id = n.recipient_id AND f.follower_id = n.actor_id)) AS n`,
  );
  await zero("the outbox is drained", "SELECT count(*) AS n FROM outbox_events WHERE processed_at IS NULL");

  // Photos and objects.
  const media = (
    await db.query<{
      id: string;
      ownerId: string;
      status: string;
      post_id: string | null;
      storage_key: string;
      variants: Variant[];
    }>(`SELECT id, owner_id AS "ownerId", status, post_id, storage_key, variants FROM media WHERE created_at >= $1`, [
      since,
    ])
  ).rows;
  const posted = media.filter((m) => m.post_id);
  const unfinished = posted.filter((m) => m.status !== "READY");
  checks.push({
    name: "every photo posted during the run is READY",
    ok: unfinished.length === 0,
    detail: unfinished.length
      ? `${unfinished.length} not: ${unfinished
          .slice(0, 3)
          .map((m) => `${m.id} ${m.status}`)
          .join(", ")}`
      : `${posted.length} photos`,
  });
  // Uploaded but never posted: only where the client gave up on the flow (the cleanup removes those later).
  const abandoned = new Set(
    ledger
      .filter((entry) => entry.kind === "UploadFlow" && !entry.ok && entry.key)
      .map((entry) => Buffer.from(entry.key, "base64").toString().split(":")[1]),
  );
  const strays = media.filter((m) => !m.post_id && !abandoned.has(m.id));
  // Flows that got no answer to createUpload (key ""): each may have left one photo the client never learnt of.
  const unanswered = ledger.filter((entry) => entry.kind === "UploadFlow" && !entry.ok && entry.key === "").length;
  checks.push({
    name: "every photo not in a post is one whose upload the client gave up on",
    ok: strays.length <= unanswered && strays.every((m) => m.status === "PENDING"),
    detail: strays.length
      ? `${strays.length} not: ${strays.slice(0, 3).map((m) => `${m.id} ${m.status}`)}`
      : `${media.length - posted.length} abandoned`,
  });
  const objects = filesUnder(input.storage.directory)
    .filter((file) => file.endsWith("._S3rver_object"))
    .map((file) => file.replace(/\._S3rver_object$/, ""));
  const rows = (await db.query<{ id: string; status: string }>("SELECT id, status FROM media")).rows;
  const ids = new Set(rows.map((r) => r.id));
  const pending = new Set(rows.filter((r) => r.status === "PENDING").map((r) => r.id));
  const idOf = (key: string) => /^[uov]\/[0-9a-f-]{36}\/([0-9a-f-]{36})/.exec(key)?.[1];
  const orphans = objects.filter((key) => !ids.has(idOf(key) ?? ""));
  checks.push({
    name: "no stored object without its photo",
    ok: orphans.length === 0,
    detail: orphans.length ? `${orphans.length}, e.g. ${orphans.slice(0, 3).join(", ")}` : `${objects.length} objects`,
  });
  const stored = new Set(objects);
  const missing = media
    .filter((m) => m.status === "READY")
    .flatMap((m) => {
      const expected = m.variants.map((variant) => variantKey(m, variant));
      return [m.storage_key, ...expected].filter((key) => !stored.has(key));
    });
  checks.push({
    name: "every READY photo's original and variants are stored",
    ok: missing.length === 0,
    detail: missing.length ? `${missing.length} missing, e.g. ${missing.slice(0, 3).join(", ")}` : undefined,
  });
  // The upload's own copy (u/) goes once the photo is verified (copied to o/); a PENDING photo's is still needed.
  const staleUploads = objects.filter((key) => key.startsWith("u/") && !pending.has(idOf(key) ?? "")).length;
  checks.push({
    name: "no uploaded copy left behind after verification",
    ok: staleUploads === 0,
    detail: staleUploads ? `${staleUploads}` : undefined,
  });

  // Retried writes: none twice, every acknowledged one there, with its key.
  await zero(
    "no comment or post written twice by a retried request",
    `SELECT (SELECT count(*) FROM (SELECT body FROM comments WHERE body LIKE 'soak %' GROUP BY body HAVING count(*) > 1) c)
          + (SELECT count(*) FROM (SELECT caption FROM posts WHERE caption LIKE 'soak %' GROUP BY caption HAVING count(*) > 1) p) AS n`,
  );
  const acknowledged = ledger.filter((entry) => entry.ok && entry.marker);
  const markers = acknowledged.map((entry) => entry.marker as string);
  const found = await count(
    db,
    `SELECT (SELECT count(*) FROM comments WHERE body = ANY($1)) + (SELECT count(*) FROM posts WHERE caption = ANY($1)) AS n`,
    [markers],
  );
  checks.push({
    name: "every comment and post the clients were told succeeded exists",
    ok: found === markers.length,
    detail: `${found} of ${markers.length}`,
  });
  // A key is recorded with its answer; where the database failed just then, the client still got its answer and
  // the server logged the key it could not keep (input.unrecorded) — never silently.
  const keys = ledger.filter((entry) => entry.ok && entry.kind !== "UploadFlow").map((entry) => entry.key);
  // The table keeps each key's SHA-256 (as the servers' logs name them).
  const recorded = new Set(
    (
      await db.query<{ key: string }>("SELECT key FROM idempotency_keys WHERE key = ANY($1)", [keys.map(keyId)])
    ).rows.map((row) => row.key),
  );
  const silent = keys.filter((key) => !recorded.has(keyId(key)) && !input.unrecorded.has(keyId(key)));
  checks.push({
    name: "every acknowledged write recorded its idempotency key, or the server logged why not",
    ok: silent.length === 0,
    detail: `${recorded.size} of ${keys.length} recorded, ${keys.length - recorded.size - silent.length} logged as not${silent.length ? `, ${silent.length} neither (e.g. ${silent[0]})` : ""}`,
  });
  return checks;
}

/**
 * What the clients are served after the run, through every instance, against PostgreSQL: each sampled viewer's
 * feed (its posts in order, their like counts, whether the viewer likes each) — through timelines, the entity cache
 * and each instance's local copies, whatever the faults did to them.
 */
export async function checkServedFeeds(input: {
  database: pg.Client;
  urls: string[];
  viewers: { id: string; token: string }[];
  /** The mobile app's Feed document's id (a persisted document: the instances may refuse others). */
  feedDocumentId: string;
}): Promise<IntegrityCheck> {
  const { database: db, urls, viewers, feedDocumentId } = input;
  const wrong: string[] = [];
  for (const viewer of viewers) {
    const expected = (
      await db.query<{ id: string; like_count: number; liked: boolean }>(
        `SELECT p.id, p.like_count, EXISTS (SELECT 1 FROM likes l WHERE l.post_id = p.id AND l.user_id = $1) AS liked
         FROM posts p
         WHERE p.published AND (p.author_id = $1 OR p.author_id IN (SELECT followee_id FROM follows WHERE follower_id = $1))
         ORDER BY p.created_at DESC, p.id DESC LIMIT 20`,
        [viewer.id],
      )
    ).rows.map((row) => `${row.id}:${row.like_count}:${row.liked}`);
    for (const url of urls) {
      const response = await fetch(`${url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${viewer.token}` },
        body: JSON.stringify({ documentId: feedDocumentId, variables: { first: 20 } }),
      });
      const body = (await response.json()) as {
        data?: { feed: { edges: { node: { id: string; likeCount: number; viewerHasLiked: boolean } }[] } };
        errors?: unknown[];
      };
      if (!response.ok || !body.data || body.errors) {
        wrong.push(`${viewer.id} through ${url}: HTTP ${response.status}, ${JSON.stringify(body.errors ?? null)}`);
        continue;
      }
      const served = (body.data?.feed.edges ?? []).map(({ node }) => {
        const id = Buffer.from(node.id, "base64").toString().split(":")[1];
        return `${id}:${node.likeCount}:${node.viewerHasLiked}`;
      });
      if (served.join() !== expected.join()) wrong.push(`${viewer.id} through ${url}`);
    }
  }
  return {
    name: `every sampled viewer's feed, through each instance, is PostgreSQL's (${viewers.length} viewers)`,
    ok: viewers.length > 0 && wrong.length === 0,
    detail: wrong.length
      ? `${wrong.length} differ, e.g. ${wrong[0]}`
      : viewers.length
        ? undefined
        : "no viewer sampled",
  };
}
