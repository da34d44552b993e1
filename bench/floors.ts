// The floors Shutter is measured against, each a server of its own started like Shutter (a process on PORT):
//   node bench/floors.ts data       the mobile Feed response, built by ONE hand-written SQL statement through
//                                   `pg` on plain node:http — what the feed costs with no GraphQL, no ORM,
//                                   no loaders, no cache: the database's share
//   node bench/floors.ts transport  a constant response from the HTTP stack Shutter runs on (node:http and
//                                   @whatwg-node/server): what any request costs before GraphQL starts
// The data floor answers every scenario's request with the feed (the only screen it implements), so its
// ratios compare each Shutter screen with the cost of serving one real, personalised page.
import { createServer } from "node:http";
import { createServerAdapter } from "@whatwg-node/server";
import pg from "pg";

const kind = process.argv[2];
const port = Number(process.env.PORT ?? 0);

/** A Relay global id in SQL (base64 of "Type:uuid"), inline so the floor stays one statement. */
const gid = (type: string, column: string) =>
  `replace(encode(convert_to('${type}:' || ${column}, 'UTF8'), 'base64'), E'\\n', '')`;

/** The URL of a photo's WebP variant at least `width` wide, or its largest (Photo.url(width, format: WEBP)). */
const variantUrl = (alias: string, width: number) => `(
  SELECT $3 || '/v/' || ${alias}.owner_id || '/' || ${alias}.id || '/' || (v ->> 'width') || '.webp'
  FROM jsonb_array_elements(${alias}.variants) v WHERE v ->> 'format' = 'webp'
  ORDER BY (v ->> 'width')::int < ${width}, abs((v ->> 'width')::int - ${width}) LIMIT 1)`;

// The exact JSON Shutter returns for clients/mobile/feed.graphql (first: 20): global ids are base64 of
// "Type:uuid", cursors base64url of [createdAtMillis, "uuid"], photos and the avatar only when READY.
const FEED_SQL = `
WITH page AS (
  SELECT p.* FROM (
    SELECT newest.id FROM (SELECT followee_id AS id FROM follows WHERE follower_id = $1::uuid UNION ALL SELECT $1::uuid) a
    CROSS JOIN LATERAL (
      SELECT created_at, id FROM posts WHERE author_id = a.id AND published
      ORDER BY created_at DESC, id DESC LIMIT $2 + 1
    ) newest
    ORDER BY newest.created_at DESC, newest.id DESC LIMIT $2 + 1
  ) top JOIN posts p ON p.id = top.id
), shown AS (
  SELECT page.*, row_number() OVER (ORDER BY created_at DESC, id DESC) AS n,
    translate(encode(convert_to('[' || (extract(epoch FROM created_at) * 1000)::bigint || ',"' || id || '"]',
      'UTF8'), 'base64'), E'+/=\\n', '-_') AS cursor
  FROM page ORDER BY created_at DESC, id DESC LIMIT $2
)
SELECT json_build_object('data', json_build_object('feed', json_build_object(
  'edges', coalesce((
    SELECT json_agg(json_build_object('cursor', s.cursor, 'node', json_build_object(
      'id', ${gid("Post", "s.id")},
      'published', s.published,
      'caption', s.caption,
      'createdAt', to_char(s.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
      'likeCount', s.like_count,
      'commentCount', s.comment_count,
      'viewerHasLiked', EXISTS (SELECT 1 FROM likes l WHERE l.post_id = s.id AND l.user_id = $1::uuid),
      'author', (
        SELECT json_build_object('id', ${gid("User", "u.id")}, 'handle', u.handle, 'displayName', u.display_name,
          'avatar', (SELECT json_build_object('id', ${gid("Photo", "a.id")}, 'url', ${variantUrl("a", 128)})
                     FROM media a WHERE a.id = u.avatar_id AND a.status = 'READY'))
        FROM users u WHERE u.id = s.author_id),
      'photos', coalesce((
        SELECT json_agg(json_build_object('id', ${gid("Photo", "m.id")}, 'url', ${variantUrl("m", 1080)},
          'aspectRatio', m.width::float8 / m.height, 'placeholder', m.placeholder) ORDER BY m.position)
        FROM media m WHERE m.post_id = s.id AND m.status = 'READY'), '[]'),
      'comments', json_build_object('edges', coalesce((
        SELECT json_agg(json_build_object('node', json_build_object('id', ${gid("Comment", "c.id")}, 'body', c.body,
          'author', json_build_object('id', ${gid("User", "cu.id")}, 'handle', cu.handle))) ORDER BY c.created_at, c.id)
        FROM (SELECT * FROM comments WHERE post_id = s.id ORDER BY created_at, id LIMIT 3) c
        JOIN users cu ON cu.id = c.author_id), '[]'))
    )) ORDER BY s.n)
    FROM shown s), '[]'),
  'pageInfo', json_build_object(
    'hasNextPage', (SELECT count(*) FROM page) > $2,
    'endCursor', (SELECT cursor FROM shown ORDER BY n DESC LIMIT 1))
)))::text AS body`;

/** The viewer of a bearer token: its `sub`, read without verifying (the floor measures data, not crypto). */
function viewerOf(authorization: string | undefined): string | null {
  const payload = authorization?.replace(/^Bearer /, "").split(".")[1];
  if (!payload) return null;
  try {
    return JSON.parse(Buffer.from(payload, "base64url").toString()).sub ?? null;
  } catch {
    return null;
  }
}

function listen(server: ReturnType<typeof createServer>) {
  server.keepAliveTimeout = 65_000;
  server.listen(port, "127.0.0.1", () => {
    const address = server.address();
    process.stdout.write(
      `${JSON.stringify({ msg: "listening", port: typeof address === "object" && address?.port })}\n`,
    );
  });
  process.once("SIGTERM", () => server.close(() => process.exit(0)));
}

if (kind === "data") {
  const pool = new pg.Pool({
    connectionString: process.env.DATABASE_URL,
    max: Number(process.env.DATABASE_POOL_MAX ?? 10),
  });
  const baseUrl = (process.env.S3_PUBLIC_BASE_URL ?? "").replace(/\/$/, "");
  listen(
    createServer((req, res) => {
      // The body is not needed (every request is answered with the feed), but it is read, as any server must.
      req.resume();
      req.on("end", async () => {
        const viewer = viewerOf(req.headers.authorization);
        if (!viewer) {
          res.writeHead(401, { "content-type": "application/json" }).end('{"errors":[{"message":"sign in"}]}');
          return;
        }
        try {
          const { rows } = await pool.query<{ body: string }>(FEED_SQL, [viewer, 20, baseUrl]);
          res.writeHead(200, { "content-type": "application/json" }).end(rows[0]?.body);
        } catch (error) {
          res
            .writeHead(500, { "content-type": "application/json" })
            .end(JSON.stringify({ errors: [{ message: String(error) }] }));
        }
      });
    }),
  );
} else if (kind === "transport") {
  const body = JSON.stringify({ data: { hello: "world" } });
  listen(
    createServer(
      createServerAdapter(async (request) => {
        await request.arrayBuffer();
        return new Response(body, { headers: { "content-type": "application/json" } });
      }),
    ),
  );
} else if (kind !== undefined) {
  process.stderr.write("usage: node bench/floors.ts data|transport\n");
  process.exit(2);
}
