// The container target: the bundled Node HTTP entry (what the Dockerfile runs) with its health endpoints and
// graceful shutdown, the Dockerfile's lint, and the Knative manifest's agreement with both.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { parse } from "yaml";
import { migrate } from "../../functions/migrate.ts";
import { SETTING_NAMES } from "../../src/platform/config.ts";
import { bundleDir } from "../kit/bundle.ts";
import { type EmptyDatabase, emptyDatabase } from "../kit/databases.ts";
import { startProxy, type TcpProxy } from "../kit/tcp-proxy.ts";

const root = new URL("../..", import.meta.url).pathname;

interface Server {
  url: string;
  child: ChildProcess;
  logs: Record<string, unknown>[];
  exited: Promise<number | null>;
}

/** Starts the bundled server.mjs on a free port, as `node server.mjs` in the image. */
async function startServer(dir: string, env: Record<string, string> = {}): Promise<Server> {
  const child = spawn(process.execPath, ["server.mjs"], {
    cwd: dir,
    env: { ...process.env, PORT: "0", LOG_LEVEL: "info", LOG_FORMAT: "json", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = "";
  child.stderr?.on("data", (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const port = await new Promise<number>((resolve, reject) => {
    setTimeout(
      () => reject(new Error(`server.mjs did not start in 20 s:\n${stderr}\n${JSON.stringify(logs)}`)),
      20_000,
    );
    let buffer = "";
    child.stdout?.on("data", (chunk) => {
      buffer += chunk;
      const lines = buffer.split("\n");
      buffer = lines.pop() ?? "";
      for (const line of lines) {
        const record = JSON.parse(line);
        logs.push(record);
        if (record.msg === "server: listening") resolve(record.port);
      }
    });
    child.once("exit", (code) => reject(new Error(`server.mjs exited with ${code}:\n${stderr}`)));
  });
  return { url: `http://127.0.0.1:${port}`, child, logs, exited };
}

const graphql = (
  server: Server,
  query: string,
  headers: Record<string, string> = {},
  variables: Record<string, unknown> = {},
) =>
  fetch(`${server.url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ query, variables }),
  });

let bundle: string;
beforeAll(() => {
  bundle = bundleDir();
}, 120_000);

describe("the Node HTTP entry (server.mjs)", () => {
  // Its own database, reached through a proxy that can slow it down to hold a request in flight.
  let database: EmptyDatabase;
  let proxy: TcpProxy;
  let server: Server;
  beforeAll(async () => {
    database = await emptyDatabase();
    await migrate(database.url);
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    await client.query(
      `INSERT INTO users (id, handle, display_name, email) VALUES (gen_random_uuid(), 'ana', 'Ana in a container', 'ana@container.test')`,
    );
    await client.end();
    proxy = await startProxy(database.url, 800);
    server = await startServer(bundle, { DATABASE_URL: proxy.url, SHUTDOWN_DELAY_MS: "300" });
  }, 60_000);
  afterAll(async () => {
    server.child.kill("SIGKILL");
    await proxy.close();
    await database.drop();
  });

  const ANA = `{ user(handle: "ana") { displayName } }`;

  test("serves GraphQL, and health and readiness", async () => {
    const response = await graphql(server, ANA);
    expect(response.status).toBe(200);
    expect((await response.json()).data.user.displayName).toBe("Ana in a container");
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    const ready = await fetch(`${server.url}/ready`);
    expect([ready.status, await ready.json()]).toEqual([200, { status: "ready" }]);
  });

  test("on SIGTERM: not ready, then finishes the request in flight, then exits cleanly", async () => {
    proxy.setMode("slow"); // every statement now takes 800 ms
    const inFlight = graphql(server, `{ user(handle: "ana") { handle displayName } }`);
    await new Promise((resolve) => setTimeout(resolve, 200));

    server.child.kill("SIGTERM");
    await new Promise((resolve) => setTimeout(resolve, 100));
    const notReady = await fetch(`${server.url}/ready`);
    expect([notReady.status, await notReady.json()]).toEqual([503, { status: "shutting down" }]);

    await new Promise((resolve) => setTimeout(resolve, 400)); // past SHUTDOWN_DELAY_MS: no new connections
    await expect(fetch(`${server.url}/health`)).rejects.toThrow();
    const answered = await inFlight;
    expect(answered.status).toBe(200);
    expect((await answered.json()).data.user).toEqual({ handle: "ana", displayName: "Ana in a container" });
    expect(await server.exited).toBe(0);
    expect(server.logs.map((l) => l.msg)).toEqual(
      expect.arrayContaining(["server: shutting down", "server: draining", "server: stopped"]),
    );
  });

  test("not ready while the database is unreachable, alive all the same", async () => {
    const unreachable = await startServer(bundle, { DATABASE_URL: "postgresql://postgres@127.0.0.1:9/shutter" });
    try {
      const ready = await fetch(`${unreachable.url}/ready`);
      expect([ready.status, await ready.json()]).toEqual([503, { status: "database unreachable" }]);
      expect((await fetch(`${unreachable.url}/health`)).status).toBe(200);
    } finally {
      unreachable.child.kill("SIGTERM");
      expect(await unreachable.exited).toBe(0);
    }
  });
});

describe("load shedding", () => {
  test("beyond its concurrency and its queue it refuses at once with 503, serves the rest, stays healthy", async () => {
    const database = await emptyDatabase();
    await migrate(database.url);
    // Every statement takes 800 ms: the first requests hold their slots while the rest arrive.
    const proxy = await startProxy(database.url, 800);
    const server = await startServer(bundle, {
      DATABASE_URL: proxy.url,
      MAX_CONCURRENT_REQUESTS: "2",
      MAX_QUEUED_REQUESTS: "2",
      MAX_QUEUE_WAIT_MS: "30000",
    });
    try {
      proxy.setMode("slow");
      // Not kept by the response cache (a search): each one reaches the database.
      const SEARCH = `{ searchUsers(prefix: "an", first: 1) { edges { node { handle } } } }`;
      // Half of them over Server-Sent Events, which Yoga serves queries over too: shed all the same.
      const answers = Promise.all(
        Array.from({ length: 10 }, (_, i) => graphql(server, SEARCH, i % 2 ? { accept: "text/event-stream" } : {})),
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      // Health is never queued.
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
      const responses = await answers;
      const refused = responses.filter((r) => r.status === 503);
      expect(responses.map((r) => r.status).sort()).toEqual([...Array(4).fill(200), ...Array(6).fill(503)]);
      for (const response of refused) {
        expect(response.headers.get("retry-after")).toBe("1");
        expect((await response.json()).errors[0].extensions.code).toBe("SERVICE_UNAVAILABLE");
      }
      expect(server.logs.filter((l) => l.msg === "server: overloaded, request refused")).toHaveLength(6);
      // The load gone, it serves again.
      proxy.setMode("forward");
      expect((await graphql(server, SEARCH)).status).toBe(200);
    } finally {
      server.child.kill("SIGKILL");
      await proxy.close();
      await database.drop();
    }
  });

  test("an open stream holds its place (MAX_OPEN_STREAMS) until it ends; requests are served meanwhile", async () => {
    const database = await emptyDatabase();
    await migrate(database.url);
    const server = await startServer(bundle, { DATABASE_URL: database.url, MAX_OPEN_STREAMS: "1" });
    try {
      const signUp = await graphql(
        server,
        `mutation { signUp(input: { handle: "streamer", displayName: "S", email: "s@example.com", password: "correct horse battery" }) { ... on SignUpSuccess { session { accessToken } } } }`,
      );
      const token = (await signUp.json()).data.signUp.session.accessToken as string;
      const SUBSCRIBE = "subscription { notificationAdded { id } }";
      const sse = { accept: "text/event-stream", authorization: `Bearer ${token}` };
      const first = await graphql(server, SUBSCRIBE, sse);
      expect(first.status).toBe(200);
      const reader = first.body?.getReader();
      // A second stream while the first is open: refused at once.
      const second = await graphql(server, SUBSCRIBE, sse);
      expect(second.status).toBe(503);
      expect((await second.json()).errors[0].extensions.code).toBe("SERVICE_UNAVAILABLE");
      expect(server.logs.some((l) => l.msg === "server: overloaded, stream refused")).toBe(true);
      // An ordinary request is not held back by the stream.
      expect((await graphql(server, "{ __typename }")).status).toBe(200);
      // The first one ends (the client goes away): its place is free again.
      await reader?.cancel();
      let third: Response | undefined;
      for (let waited = 0; waited < 5_000; waited += 100) {
        third = await graphql(server, SUBSCRIBE, sse);
        if (third.status === 200) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(third?.status).toBe(200);
      await third?.body?.cancel();
    } finally {
      server.child.kill("SIGKILL");
      await database.drop();
    }
  });
});

describe("the bundle's deploy-time migration (migrate.mjs)", () => {
  test("migrates a fresh database with the bundled engine and migrations, then finds nothing to do", async () => {
    const database = await emptyDatabase();
    const invoke = () => {
      const run = spawnSync(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          "const m = await import('./migrate.mjs'); console.log(JSON.stringify(await m.handler()));",
        ],
        { cwd: bundle, encoding: "utf8", env: { ...process.env, DATABASE_URL: database.url, LOG_LEVEL: "silent" } },
      );
      if (run.status !== 0) throw new Error(run.stderr);
      return JSON.parse(run.stdout.trim().split("\n").at(-1) as string);
    };
    try {
      const first = await invoke();
      expect(first.applied.length).toBeGreaterThan(1);
      expect(first.applied[0]).toMatch(/_init$/);
      expect(await invoke()).toEqual({ applied: [] });
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      const { rows } = await client.query(
        "SELECT count(*)::int AS n FROM _prisma_migrations WHERE finished_at IS NOT NULL",
      );
      await client.end();
      expect(rows[0].n).toBe(first.applied.length);
    } finally {
      await database.drop();
    }
    // A new embedded database and Prisma's WebAssembly schema engine: slow on a loaded machine.
  }, 120_000);
});

describe("the image and its manifest", () => {
  test("the Dockerfile passes the linter and runs the bundle's server entry", () => {
    const lint = spawnSync(
      process.execPath,
      [`${root}node_modules/dockerfile-utils/bin/dockerfile-utils`, "lint", "Dockerfile"],
      {
        cwd: root,
        encoding: "utf8",
      },
    );
    expect(lint.stdout + lint.stderr).toBe("");
    expect(lint.status).toBe(0);
    const dockerfile = readFileSync(`${root}Dockerfile`, "utf8");
    expect(dockerfile).toMatch(/^CMD \["node", "server\.mjs"\]$/m);
    expect(dockerfile).toMatch(/^COPY --from=build .*\/app\/dist\/functions \.\/$/m);
    expect(readFileSync(`${bundle}/server.mjs`, "utf8").length).toBeGreaterThan(0);
  });

  test("the Knative service probes the server's endpoints on its port, with settings Shutter knows", () => {
    const service = parse(readFileSync(`${root}infra/knative/service.yaml`, "utf8"));
    expect(service).toMatchObject({ apiVersion: "serving.knative.dev/v1", kind: "Service" });
    const [container] = service.spec.template.spec.containers;
    expect(container.ports).toEqual([{ name: "http1", containerPort: 8080 }]);
    expect(readFileSync(`${root}Dockerfile`, "utf8")).toContain("PORT=8080");
    expect(container.readinessProbe.httpGet.path).toBe("/ready");
    expect(container.livenessProbe.httpGet.path).toBe("/health");
    const names = container.env.map((e: { name: string }) => e.name);
    expect(names.filter((name: string) => !SETTING_NAMES.includes(name))).toEqual([]);
    expect(names).toEqual(expect.arrayContaining(["NODE_ENV", "DATABASE_URL", "JWT_PRIVATE_KEY", "S3_BUCKET"]));
  });
});
