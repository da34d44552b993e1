// Seeds a realistic, deterministic data set: the same --seed gives the same rows (ids and timestamps included).
//   npm run db:seed                       small: a few hundred users, for development
//   npm run db:seed -- --size large       ~10k users, 100k posts, 1M likes, 300k comments, for benchmarks
// Options: --seed N, --reset (empty the tables first), --if-empty (do nothing when users exist),
//          --upload / --no-upload (put generated images in object storage; default: small seeds, when S3_BUCKET is set)
// Rows go in with multi-row INSERT ... SELECT FROM unnest(...) batches: thousands of rows per statement.
import { parseArgs } from "node:util";
import pg from "pg";
import { hashPassword } from "../src/domain/auth.ts";
import { type Made, makeVariants } from "../src/images/transform.ts";
import { IMAGE_FORMATS, LADDERS, ladderWidths, variantKey } from "../src/images/variants.ts";
import { encodePng } from "./png.ts";

const SIZES = {
  small: { users: 300, posts: 1200, likes: 12_000, comments: 3_600, following: 25 },
  large: { users: 10_000, posts: 100_000, likes: 1_000_000, comments: 300_000, following: 60 },
} as const;

/** Password of every seeded account, so anyone can log in as any of them in development. */
export const SEED_PASSWORD = "shutter-demo";
/** Seeded timestamps end here (fixed, so the data set is identical on every run). */
const EPOCH = Date.UTC(2026, 5, 1);
const DAY = 86_400_000;
const BATCH = 5_000;

const { values: options } = parseArgs({
  options: {
    size: { type: "string", default: "small" },
    seed: { type: "string", default: "42" },
    reset: { type: "boolean", default: false },
    "if-empty": { type: "boolean", default: false },
    upload: { type: "boolean" },
    "no-upload": { type: "boolean" },
  },
});

const size = SIZES[options.size as keyof typeof SIZES];
if (!size) throw new Error(`--size must be one of ${Object.keys(SIZES).join(", ")}`);
if (!process.env.DATABASE_URL) throw new Error("Set DATABASE_URL to the database to seed.");

/** mulberry32: a small, fast PRNG; good enough for test data and fully determined by its seed. */
function createRandom(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (min: number, max: number) => min + Math.floor(next() * (max - min + 1)),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T,
  };
}

const random = createRandom(Number(options.seed));

/** A UUIDv7 for the given time, with random bits from the seeded generator. */
function uuidv7(ms: number): string {
  const hex = (n: number, digits: number) => Math.floor(n).toString(16).padStart(digits, "0");
  const rand = (digits: number) => Array.from({ length: digits }, () => hex(random.next() * 16, 1)).join("");
  const time = hex(ms, 12);
  const variant = (8 + Math.floor(random.next() * 4)).toString(16);
  return `${time.slice(0, 8)}-${time.slice(8)}-7${rand(3)}-${variant}${rand(3)}-${rand(12)}`;
}

/** Weighted sampling by binary search over cumulative weights. */
function createSampler(weights: number[]) {
  const cumulative: number[] = [];
  let total = 0;
  for (const w of weights) {
    total += w;
    cumulative.push(total);
  }
  return () => {
    const target = random.next() * total;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cumulative[mid] as number) < target) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

const ADJECTIVES = [
  "sunny",
  "quiet",
  "wild",
  "golden",
  "misty",
  "urban",
  "salty",
  "lucky",
  "tiny",
  "bold",
  "lazy",
  "rapid",
  "velvet",
  "amber",
  "polar",
  "crisp",
  "dusty",
  "neon",
  "mellow",
  "brave",
];
const NOUNS = [
  "fox",
  "lens",
  "pixel",
  "harbor",
  "maple",
  "comet",
  "otter",
  "canyon",
  "tram",
  "lagoon",
  "meadow",
  "falcon",
  "shutter",
  "prism",
  "atlas",
  "ember",
  "willow",
  "orbit",
  "pebble",
  "ridge",
];
const FIRST = [
  "Ana",
  "Ben",
  "Chloé",
  "Dev",
  "Elif",
  "Farah",
  "Gus",
  "Hana",
  "Ivo",
  "Jun",
  "Kemi",
  "Lars",
  "Mira",
  "Noor",
  "Omar",
  "Pia",
  "Quinn",
  "Rosa",
  "Sami",
  "Tomás",
  "Uma",
  "Vik",
  "Wen",
  "Yara",
  "Zoe",
];
const LAST = [
  "Silva",
  "Okafor",
  "Nguyen",
  "Müller",
  "Haddad",
  "Kowalski",
  "Tanaka",
  "Rossi",
  "Dubois",
  "Larsen",
  "Patel",
  "Kim",
  "Costa",
  "Novak",
  "Ibrahim",
  "Moreau",
  "Jensen",
  "Lopez",
  "Sato",
  "Walsh",
];
const PLACES = [
  "the harbor",
  "Lisbon",
  "the old town",
  "the lake",
  "my balcony",
  "the market",
  "the mountains",
  "the beach",
  "downtown",
  "the park",
];
const CAPTIONS = [
  "Golden hour at {place} ✨",
  "Weekend walk around {place}",
  "Can't get enough of {place}",
  "Found this spot near {place} 📍",
  "Morning light, {place}",
  "Colors of {place}",
  "",
];
const COMMENTS = [
  "Stunning!",
  "Love this 😍",
  "Where is this?",
  "Great shot",
  "The light here 🔥",
  "Wow",
  "Need to go there",
  "So good",
  "Beautiful colors",
  "📸👏",
];
const BIOS = [
  "Chasing light.",
  "Film and coffee.",
  "Mostly cats, sometimes mountains.",
  "Weekend photographer.",
  "",
  "City walks and street food.",
  "Here for the sunsets.",
];

type Row = (string | number | Date | null)[];

/** Inserts rows in batches through unnest(), one statement per batch. `types` are the Postgres array casts. */
async function insert(client: pg.Client, table: string, columns: string[], types: string[], rows: Row[]) {
  for (let i = 0; i < rows.length; i += BATCH) {
    const batch = rows.slice(i, i + BATCH);
    const arrays = columns.map((_, c) => batch.map((row) => row[c]));
    const params = types.map((type, c) => `$${c + 1}::${type}[]`).join(", ");
    await client.query(`INSERT INTO ${table} (${columns.join(", ")}) SELECT * FROM unnest(${params})`, arrays);
  }
}

function progress(label: string, done: number, total: number) {
  const line = `  ${label.padEnd(14)} ${done.toLocaleString("en").padStart(10)} / ${total.toLocaleString("en")}`;
  if (process.stdout.isTTY) process.stdout.write(`\r${line}${done >= total ? "\n" : ""}`);
  else if (done >= total || done % (BATCH * 20) === 0) console.log(line);
}

/** Inserts with progress, `BATCH * 4` rows at a time. */
async function insertWithProgress(
  client: pg.Client,
  label: string,
  table: string,
  columns: string[],
  types: string[],
  rows: Row[],
) {
  for (let i = 0; i < rows.length; i += BATCH * 4) {
    await insert(client, table, columns, types, rows.slice(i, i + BATCH * 4));
    progress(label, Math.min(i + BATCH * 4, rows.length), rows.length);
  }
  if (rows.length === 0) progress(label, 0, 0);
}

/** A small PNG (diagonal gradient in a palette colour): real image bytes for dev uploads. */
function png(width: number, height: number, [r, g, b]: [number, number, number]): Buffer {
  return encodePng(width, height, (x, y) => {
    const shade = 0.55 + 0.45 * ((x + y) / (width + height));
    return [r * shade, g * shade, b * shade];
  });
}

async function main() {
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  try {
    const { rows: existing } = await client.query<{ n: string }>("SELECT count(*) AS n FROM users");
    if (options["if-empty"] && Number(existing[0]?.n) > 0) {
      console.log(`seed: ${existing[0]?.n} users already present, nothing to do`);
      return;
    }
    if (options.reset) {
      await client.query(
        "TRUNCATE users, follows, posts, media, comments, likes, notifications, sessions, refresh_tokens, outbox_events, source_subscriptions, webhook_deliveries CASCADE",
      );
    } else if (Number(existing[0]?.n) > 0) {
      throw new Error("The database already has users: pass --reset to replace them, or --if-empty.");
    }
    const upload = options["no-upload"]
      ? false
      : (options.upload ?? (options.size === "small" && !!process.env.S3_BUCKET));
    const started = performance.now();
    console.log(`seed: ${options.size} data set (seed ${options.seed})${upload ? ", uploading images" : ""}`);
    await seed(client, upload);
    console.log(`seed: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await client.end();
  }
}

async function seed(client: pg.Client, upload: boolean) {
  const passwordHash = await hashPassword(SEED_PASSWORD);

  // Users, with a popularity that follows a power law: a few are followed by many, most by few.
  const users: { id: string; handle: string; createdAt: number }[] = [];
  const handles = new Set<string>();
  while (users.length < size.users) {
    const base = `${random.pick(ADJECTIVES)}_${random.pick(NOUNS)}`;
    const handle = handles.has(base) ? `${base}${random.int(2, 9999)}` : base;
    if (handles.has(handle)) continue;
    handles.add(handle);
    const createdAt = EPOCH - 400 * DAY + random.int(0, 200) * DAY;
    users.push({ id: uuidv7(createdAt), handle, createdAt });
  }
  const popularity = users.map((_, i) => 1 / (i + 1) ** 0.9);
  const activity = users.map(() => 0.2 + random.next() ** 2);
  await insertWithProgress(
    client,
    "users",
    "users",
    ["id", "handle", "display_name", "bio", "email", "password_hash", "created_at", "updated_at"],
    ["uuid", "text", "text", "text", "text", "text", "timestamptz", "timestamptz"],
    users.map((u) => {
      const at = new Date(u.createdAt);
      const name = `${random.pick(FIRST)} ${random.pick(LAST)}`;
      return [u.id, u.handle, name, random.pick(BIOS), `${u.handle}@example.com`, passwordHash, at, at];
    }),
  );

  // Follows: each user follows a log-normal-ish number of people, chosen by popularity.
  const pickPopular = createSampler(popularity);
  const follows: Row[] = [];
  for (const [i, user] of users.entries()) {
    const wanted = Math.min(users.length - 1, Math.round(size.following * Math.exp((random.next() - 0.5) * 2)));
    const chosen = new Set<number>();
    for (let attempts = 0; chosen.size < wanted && attempts < wanted * 4; attempts++) {
      const j = pickPopular();
      if (j !== i) chosen.add(j);
    }
    for (const j of chosen) {
      follows.push([user.id, (users[j] as { id: string }).id, new Date(user.createdAt + random.int(1, 30) * DAY)]);
    }
  }
  await insertWithProgress(
    client,
    "follows",
    "follows",
    ["follower_id", "followee_id", "created_at"],
    ["uuid", "uuid", "timestamptz"],
    follows,
  );

  // Posts over the 180 days before EPOCH; active users post more. Each has 1-10 READY photos.
  const pickAuthor = createSampler(activity);
  const posts: { id: string; authorIndex: number; createdAt: number }[] = [];
  for (let i = 0; i < size.posts; i++) {
    const createdAt = EPOCH - random.int(0, 180 * DAY);
    posts.push({ id: uuidv7(createdAt), authorIndex: pickAuthor(), createdAt });
  }
  posts.sort((a, b) => a.createdAt - b.createdAt);
  await insertWithProgress(
    client,
    "posts",
    "posts",
    ["id", "author_id", "caption", "created_at", "updated_at"],
    ["uuid", "uuid", "text", "timestamptz", "timestamptz"],
    posts.map((p) => {
      const at = new Date(p.createdAt);
      return [
        p.id,
        (users[p.authorIndex] as { id: string }).id,
        random.pick(CAPTIONS).replace("{place}", random.pick(PLACES)),
        at,
        at,
      ];
    }),
  );

  const palette: [number, number, number][] = [
    [232, 93, 74],
    [74, 144, 226],
    [80, 200, 120],
    [245, 190, 70],
    [155, 89, 182],
    [52, 73, 94],
  ];
  const images = palette.map((color) => png(480, 600, color));
  // Photos as the images function leaves them (READY, with variants, a placeholder and a colour). Uploaded seeds
  // put real objects behind them: each palette image is processed once, and its original and variants are stored
  // under every photo that uses it. Otherwise the rows alone (URLs resolve, nothing is behind them).
  const made = upload ? await makeSeedVariants(images) : [];
  const media: Row[] = [];
  for (const post of posts) {
    const roll = random.next();
    const count = roll < 0.65 ? 1 : roll < 0.9 ? random.int(2, 4) : random.int(5, 10);
    const ownerId = (users[post.authorIndex] as { id: string }).id;
    for (let position = 0; position < count; position++) {
      const id = uuidv7(post.createdAt - 60_000);
      // The same random draws either way, so uploading or not yields the same rows otherwise.
      const image = random.int(0, images.length - 1);
      const bytes = random.int(80_000, 2_000_000);
      const [width, height] = random.pick([
        [1080, 1080],
        [1080, 1350],
        [1080, 566],
      ] as const);
      const createdAt = new Date(post.createdAt - 60_000);
      const processed = made[image];
      media.push(
        processed
          ? [
              id,
              ownerId,
              "POST_PHOTO",
              `o/${ownerId}/${id}.png`,
              "image/png",
              (images[image] as Buffer).length,
              processed.width,
              processed.height,
              "READY",
              post.id,
              position,
              createdAt,
              JSON.stringify(
                processed.variants.map(({ width, height, format, bytes }) => ({ width, height, format, bytes })),
              ),
              processed.placeholder,
              processed.color,
              image,
            ]
          : [
              id,
              ownerId,
              "POST_PHOTO",
              `o/${ownerId}/${id}.jpg`,
              "image/jpeg",
              bytes,
              width,
              height,
              "READY",
              post.id,
              position,
              createdAt,
              JSON.stringify(listedVariants(width, height)),
              PLACEHOLDER,
              `#${palette[image]?.map((c) => c.toString(16).padStart(2, "0")).join("")}`,
              image,
            ],
      );
    }
  }
  await insertWithProgress(
    client,
    "media",
    "media",
    [
      "id",
      "owner_id",
      "purpose",
      "storage_key",
      "content_type",
      "byte_size",
      "width",
      "height",
      "status",
      "post_id",
      "position",
      "created_at",
      "variants",
      "placeholder",
      "color",
    ],
    [
      "uuid",
      "uuid",
      '"MediaPurpose"',
      "text",
      "text",
      "int",
      "int",
      "int",
      '"MediaStatus"',
      "uuid",
      "int",
      "timestamptz",
      "jsonb",
      "text",
      "text",
    ],
    media.map((row) => row.slice(0, 15)),
  );
  if (upload) await uploadImages(media, images, made);

  // Likes and comments: popular authors' posts get more; each post's likers are distinct people.
  const postWeights = posts.map((p) => (popularity[p.authorIndex] as number) * (0.3 + random.next()));
  const weightTotal = postWeights.reduce((a, b) => a + b, 0);
  const likes: Row[] = [];
  const notifications: Row[] = [];
  const likeNotifications: Row[] = [];
  const notificationActors: Row[] = [];
  for (const [i, post] of posts.entries()) {
    const target = Math.min(users.length - 1, Math.round((size.likes * (postWeights[i] as number)) / weightTotal));
    const likers = new Set<number>();
    for (let attempts = 0; likers.size < target && attempts < target * 3; attempts++) {
      const j = random.int(0, users.length - 1);
      if (j !== post.authorIndex) likers.add(j);
    }
    const authorId = (users[post.authorIndex] as { id: string }).id;
    // The likes of a post are one notification for its author, as the events handler aggregates them.
    let latest: { userId: string; at: Date } | undefined;
    const actors: { userId: string; at: Date }[] = [];
    for (const j of likers) {
      const at = new Date(Math.min(EPOCH, post.createdAt + random.int(0, 3 * DAY)));
      const userId = (users[j] as { id: string }).id;
      likes.push([post.id, userId, at]);
      actors.push({ userId, at });
      if (!latest || at > latest.at) latest = { userId, at };
    }
    if (latest) {
      const id = uuidv7(latest.at.getTime());
      likeNotifications.push([
        id,
        authorId,
        "LIKE",
        latest.userId,
        post.id,
        null,
        latest.at,
        `like:${post.id}`,
        actors.length,
      ]);
      for (const actor of actors) notificationActors.push([id, actor.userId, actor.at]);
    }
  }
  await insertWithProgress(
    client,
    "likes",
    "likes",
    ["post_id", "user_id", "created_at"],
    ["uuid", "uuid", "timestamptz"],
    likes,
  );

  const comments: Row[] = [];
  const commentNotifications: Row[] = [];
  const pickPost = createSampler(postWeights);
  for (let i = 0; i < size.comments; i++) {
    const post = posts[pickPost()] as (typeof posts)[number];
    const authorIndex = random.int(0, users.length - 1);
    const at = Math.min(EPOCH, post.createdAt + random.int(60_000, 5 * DAY));
    const id = uuidv7(at);
    const authorId = (users[authorIndex] as { id: string }).id;
    comments.push([id, post.id, authorId, random.pick(COMMENTS), new Date(at)]);
    if (authorIndex !== post.authorIndex) {
      commentNotifications.push([
        uuidv7(at),
        (users[post.authorIndex] as { id: string }).id,
        "COMMENT",
        authorId,
        post.id,
        id,
        new Date(at),
      ]);
    }
  }
  await insertWithProgress(
    client,
    "comments",
    "comments",
    ["id", "post_id", "author_id", "body", "created_at"],
    ["uuid", "uuid", "uuid", "text", "timestamptz"],
    comments,
  );

  // Every follow has its notification, as the events handler would have made it (the soak checks this).
  for (const [followerId = null, followeeId = null, at = null] of follows) {
    notifications.push([uuidv7((at as Date).getTime()), followeeId, "FOLLOW", followerId, null, null, at]);
  }
  // Older notifications have been seen; the last two weeks' are unread.
  const all = [...notifications, ...commentNotifications].map((row): Row => {
    const at = row[6] as Date;
    return [...row, at.getTime() < EPOCH - 14 * DAY ? at : null];
  });
  await insertWithProgress(
    client,
    "notifications",
    "notifications",
    ["id", "recipient_id", "kind", "actor_id", "post_id", "comment_id", "created_at", "read_at"],
    ["uuid", "uuid", '"NotificationKind"', "uuid", "uuid", "uuid", "timestamptz", "timestamptz"],
    all,
  );
  await insertWithProgress(
    client,
    "like notifications",
    "notifications",
    [
      "id",
      "recipient_id",
      "kind",
      "actor_id",
      "post_id",
      "comment_id",
      "created_at",
      "group_key",
      "actor_count",
      "read_at",
    ],
    ["uuid", "uuid", '"NotificationKind"', "uuid", "uuid", "uuid", "timestamptz", "text", "int", "timestamptz"],
    likeNotifications.map((row): Row => {
      const at = row[6] as Date;
      return [...row, at.getTime() < EPOCH - 14 * DAY ? at : null];
    }),
  );
  await insertWithProgress(
    client,
    "notification actors",
    "notification_actors",
    ["notification_id", "actor_id", "created_at"],
    ["uuid", "uuid", "timestamptz"],
    notificationActors,
  );

  console.log("  counters…");
  await client.query(`
    UPDATE posts p SET like_count = l.n FROM (SELECT post_id, count(*) AS n FROM likes GROUP BY post_id) l WHERE p.id = l.post_id;
    UPDATE posts p SET comment_count = c.n FROM (SELECT post_id, count(*) AS n FROM comments GROUP BY post_id) c WHERE p.id = c.post_id;
    UPDATE users u SET post_count = p.n FROM (SELECT author_id, count(*) AS n FROM posts GROUP BY author_id) p WHERE u.id = p.author_id;
    UPDATE users u SET follower_count = f.n FROM (SELECT followee_id, count(*) AS n FROM follows GROUP BY followee_id) f WHERE u.id = f.followee_id;
    UPDATE users u SET following_count = f.n FROM (SELECT follower_id, count(*) AS n FROM follows GROUP BY follower_id) f WHERE u.id = f.follower_id;`);
  // As autovacuum leaves a live database: fresh statistics, and visibility maps that allow index-only scans.
  console.log("  vacuum analyze…");
  await client.query("VACUUM ANALYZE");
}

/** A ThumbHash of a flat grey image: the placeholder of photos seeded without objects. */
const PLACEHOLDER = "1QcSHQRnh493V4dIh4eXh1h4kJUI";

/** The variants the images function would make of a photo this size (seeded without objects). */
function listedVariants(width: number, height: number) {
  return ladderWidths(LADDERS.POST_PHOTO, width, height).flatMap((w) =>
    IMAGE_FORMATS.map((format) => ({ width: w, height: Math.round((height * w) / width), format, bytes: 0 })),
  );
}

/** The images function's work on each palette image, done once. */
async function makeSeedVariants(images: Buffer[]): Promise<Made[]> {
  const made: Made[] = [];
  for (const image of images) {
    made.push(await makeVariants(image, LADDERS.POST_PHOTO));
    progress("variants", made.length, images.length);
  }
  return made;
}

/** Puts each photo's original and variants at their keys (a few concurrent PUTs at a time). */
async function uploadImages(media: Row[], images: Buffer[], made: Made[]) {
  const { PutObjectCommand } = await import("@aws-sdk/client-s3");
  const { s3, storageConfig } = await import("../src/platform/storage.ts");
  const { bucket } = storageConfig();
  const puts = media.flatMap((row) => {
    const image = row[15] as number;
    const owner = { id: row[0] as string, ownerId: row[1] as string };
    return [
      { Key: row[3] as string, Body: images[image] as Buffer, ContentType: "image/png" },
      ...(made[image]?.variants ?? []).map((variant) => ({
        Key: variantKey(owner, variant),
        Body: variant.data,
        ContentType: variant.contentType,
      })),
    ];
  });
  let done = 0;
  const worker = async () => {
    for (let put = puts.shift(); put; put = puts.shift()) {
      await (await s3()).send(new PutObjectCommand({ Bucket: bucket, ...put }));
      if (++done % 100 === 0 || puts.length === 0) progress("images", done, done + puts.length);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

await main();
