// The strongest peer, measured in the same run as Shutter: PostGraphile v5 (Grafast; the Amber preset) on
// Shutter's own database, started like the other servers (a process on PORT that prints a JSON "listening" line):
//   node bench/peer.ts
// What a PostGraphile user writes for what it cannot generate from the tables is in bench/peer/schema.sql (its
// own schema, `peer`): the feed and explore as SQL functions, the viewer's booleans as computed columns. The
// viewer is the `sub` of the same ES256 access tokens Shutter verifies, checked here with the same public key and
// passed to PostgreSQL as PostGraphile passes claims (`jwt.claims.sub`). Same pool size as Shutter's.
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { exportJWK, importJWK, importPKCS8, jwtVerify } from "jose";
import pg from "pg";
import { postgraphile } from "postgraphile";
import { makePgService } from "postgraphile/adaptors/pg";
import { grafserv } from "postgraphile/grafserv/node";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";

const env = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`bench/peer.ts needs ${name}`);
  return value;
};

const connectionString = env("DATABASE_URL");
const pool = new pg.Pool({ connectionString, max: Number(process.env.DATABASE_POOL_MAX ?? 10) });
await pool.query(readFileSync(new URL("peer/schema.sql", import.meta.url), "utf8"));

const { d: _private, ...publicJwk } = await exportJWK(
  await importPKCS8(env("JWT_PRIVATE_KEY"), "ES256", { extractable: true }),
);
const publicKey = await importJWK(publicJwk, "ES256");
const cdnBase = (process.env.S3_PUBLIC_BASE_URL ?? "").replace(/\/$/, "");

const preset: GraphileConfig.Preset = {
  extends: [PostGraphileAmberPreset],
  pgServices: [makePgService({ pool, schemas: ["public", "peer"] })],
  grafserv: { graphiql: false },
  grafast: {
    async context(requestContext) {
      const header = requestContext.node?.req.headers.authorization;
      let sub = "";
      if (header?.startsWith("Bearer ")) {
        const { payload } = await jwtVerify(header.slice(7), publicKey, { algorithms: ["ES256"] });
        sub = payload.sub ?? "";
      }
      return { pgSettings: { "jwt.claims.sub": sub, "peer.cdn_base": cdnBase } };
    },
  },
};

const server = createServer();
await postgraphile(preset).createServ(grafserv).addTo(server);
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  const address = server.address();
  process.stdout.write(
    `${JSON.stringify({ msg: "listening", port: typeof address === "object" ? address?.port : 0 })}\n`,
  );
});
process.once("SIGTERM", () => server.close(() => pool.end().then(() => process.exit(0))));
