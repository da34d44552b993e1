// The benchmark's data: a seeded database (created, migrated and seeded once, then reused), and what the load
// needs from it — viewers with access tokens, posts, handles — plus the apps' documents and their ids.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { encodeGlobalID } from "@pothos/plugin-relay";
import pg from "pg";

const root = new URL("..", import.meta.url).pathname;

export interface Fixtures {
  viewers: { id: string; token: string }[];
  posts: string[];
  handles: string[];
  users: string[];
}

/** Runs a repository script, relaying its output with a prefix (seeding and migrations show progress). */
export function runScript(args: string[], env: Record<string, string>, prefix: string): Promise<void> {
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, stdio: "pipe" });
  const relay = (chunk: Buffer) => {
    for (const line of chunk.toString().split(/\r|\n/)) if (line.trim()) process.stderr.write(`${prefix}${line}\n`);
  };
  child.stdout.on("data", relay);
  child.stderr.on("data", relay);
  return new Promise((resolve, reject) =>
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${args.join(" ")} exited with ${code}`)))),
  );
}

/** The bench database on the server of `serverUrl`: created, migrated and seeded (`size`) unless it already is. */
export async function ensureDatabase(serverUrl: string, name: string, size: "small" | "large", minUsers: number) {
  const admin = new pg.Client({
    connectionString: Object.assign(new URL(serverUrl), { pathname: "/postgres" }).toString(),
  });
  await admin.connect();
  const { rowCount } = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
  if (!rowCount) await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = Object.assign(new URL(serverUrl), { pathname: `/${name}` }).toString();
  await runScript(["prisma/engine.mjs", "migrate", "deploy"], { DATABASE_URL: url }, "  migrate: ");
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const users = Number((await client.query("SELECT count(*) AS n FROM users")).rows[0].n);
  // Seeded before photos had variants (the images function): seeded again.
  const stale = Number((await client.query("SELECT count(*) AS n FROM media WHERE variants IS NULL")).rows[0].n);
  await client.end();
  if (users >= minUsers && stale === 0) {
    process.stderr.write(`  data: ${name} already holds the ${size} data set (${users} users): reused\n`);
  } else {
    process.stderr.write(`  data: seeding the ${size} data set into ${name} (once; later runs reuse it)\n`);
    await runScript(
      ["prisma/seed.ts", "--size", size, "--reset", "--no-upload"],
      { DATABASE_URL: url, S3_BUCKET: "" },
      "  seed: ",
    );
  }
  return url;
}

/** Rows the load draws from, at random: viewers who follow people (their feed has posts), posts, people. */
export async function loadFixtures(
  url: string,
  viewerCount: number,
  sign: (userId: string) => Promise<string>,
): Promise<Fixtures> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const viewers = (
      await client.query<{ id: string }>(
        `SELECT id FROM users WHERE following_count > 0 ORDER BY md5(id::text) LIMIT $1`,
        [viewerCount],
      )
    ).rows;
    const posts = (await client.query<{ id: string }>(`SELECT id FROM posts ORDER BY md5(id::text) LIMIT 2000`)).rows;
    const people = (
      await client.query<{ id: string; handle: string }>(
        `SELECT id, handle FROM users ORDER BY md5(id::text) LIMIT 2000`,
      )
    ).rows;
    return {
      viewers: await Promise.all(viewers.map(async (v) => ({ id: v.id, token: await sign(v.id) }))),
      posts: posts.map((p) => encodeGlobalID("Post", p.id)),
      handles: people.map((p) => p.handle),
      users: people.map((p) => encodeGlobalID("User", p.id)),
    };
  } finally {
    await client.end();
  }
}

/** The mobile app's operations by name, with their persisted document ids (clients/mobile, codegen's manifest). */
export function mobileDocuments(): Record<string, { id: string; document: string }> {
  const manifest: Record<string, string> = JSON.parse(
    readFileSync(`${root}clients/mobile/generated/persisted-documents.json`, "utf8"),
  );
  const byName: Record<string, { id: string; document: string }> = {};
  for (const [id, document] of Object.entries(manifest)) {
    const name = /\b(?:query|mutation)\s+(\w+)/.exec(document)?.[1];
    if (name) byName[name] = { id, document };
  }
  return byName;
}
