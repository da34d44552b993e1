-- What a PostGraphile user writes for the screens PostGraphile cannot generate from the tables alone, in a schema
-- of its own (applied by bench/peer.ts, idempotent). The viewer comes from the verified token, as PostGraphile
-- passes it: a transaction-local setting (`jwt.claims.sub`).
CREATE SCHEMA IF NOT EXISTS peer;

CREATE OR REPLACE FUNCTION peer.viewer_id() RETURNS uuid LANGUAGE sql STABLE AS $$
  SELECT nullif(current_setting('jwt.claims.sub', true), '')::uuid
$$;

-- Posts are shown once published (all their photos have variants), as Shutter shows them.

-- The feed: the newest posts of the people the viewer follows and their own, fan-out on read, as Shutter reads it
-- (each author's newest posts from the (author_id, created_at, id) index, merged).
CREATE OR REPLACE FUNCTION peer.feed(count int) RETURNS SETOF public.posts LANGUAGE sql STABLE AS $$
  SELECT p.* FROM (
    SELECT newest.id, newest.created_at FROM (
      SELECT followee_id AS id FROM public.follows WHERE follower_id = peer.viewer_id()
      UNION ALL SELECT peer.viewer_id()
    ) author CROSS JOIN LATERAL (
      SELECT p.created_at, p.id FROM public.posts p WHERE p.author_id = author.id AND p.published
      ORDER BY p.created_at DESC, p.id DESC LIMIT count
    ) newest
    ORDER BY newest.created_at DESC, newest.id DESC LIMIT count
  ) top JOIN public.posts p ON p.id = top.id
  ORDER BY p.created_at DESC, p.id DESC
$$;

-- Explore: the newest 1000 posts ranked by likes, then newest first (Shutter's ranking).
CREATE OR REPLACE FUNCTION peer.explore(count int) RETURNS SETOF public.posts LANGUAGE sql STABLE AS $$
  SELECT * FROM (SELECT * FROM public.posts WHERE published ORDER BY created_at DESC, id DESC LIMIT 1000) recent
  ORDER BY like_count DESC, created_at DESC, id DESC LIMIT count
$$;

CREATE OR REPLACE FUNCTION peer.user_by_handle(handle text) RETURNS public.users LANGUAGE sql STABLE AS $$
  SELECT * FROM public.users u WHERE u.handle = user_by_handle.handle
$$;

-- Computed columns (a function named <table>_<field> taking the row).
CREATE OR REPLACE FUNCTION peer.posts_viewer_has_liked(p public.posts) RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT EXISTS (SELECT 1 FROM public.likes l WHERE l.post_id = p.id AND l.user_id = peer.viewer_id())
$$;

CREATE OR REPLACE FUNCTION peer.users_viewer_is_following(u public.users) RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT EXISTS (SELECT 1 FROM public.follows f WHERE f.followee_id = u.id AND f.follower_id = peer.viewer_id())
$$;

-- Only a READY photo is anyone's avatar (Shutter shows no other).
CREATE OR REPLACE FUNCTION peer.users_avatar(u public.users) RETURNS public.media LANGUAGE sql STABLE AS $$
  SELECT * FROM public.media m WHERE m.id = u.avatar_id AND m.status = 'READY'
$$;

-- Photos are served from the CDN base URL (as Shutter's bench configuration does).
CREATE OR REPLACE FUNCTION peer.media_url(m public.media) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT current_setting('peer.cdn_base', true) || '/' || m.storage_key
$$;

-- A photo's variant, as Shutter's Photo.url(width, format) picks it: the smallest at least `width` wide in `format`
-- (JPEG if the photo has none in it), or the largest there is; from the CDN base URL.
CREATE OR REPLACE FUNCTION peer.media_variant_url(m public.media, width int, format text) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT current_setting('peer.cdn_base', true) || '/v/' || m.owner_id || '/' || m.id || '/' || (v ->> 'width') || '.'
    || CASE v ->> 'format' WHEN 'jpeg' THEN 'jpg' ELSE v ->> 'format' END
  FROM jsonb_array_elements(m.variants) v
  WHERE m.status = 'READY' AND v ->> 'format' = CASE
    WHEN EXISTS (SELECT 1 FROM jsonb_array_elements(m.variants) f WHERE f ->> 'format' = format) THEN format
    ELSE 'jpeg' END
  ORDER BY (v ->> 'width')::int < width, abs((v ->> 'width')::int - width)
  LIMIT 1
$$;

-- Width / height as displayed (Shutter's Photo.aspectRatio; avatars are square once READY).
CREATE OR REPLACE FUNCTION peer.media_aspect_ratio(m public.media) RETURNS float8 LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN m.purpose = 'AVATAR' AND m.status = 'READY' THEN 1 ELSE m.width::float8 / m.height END
$$;
