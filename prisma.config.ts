import { defineConfig } from "prisma/config";

// The CLI reads DATABASE_URL only for migrate/seed commands; `prisma generate` (run on install) needs none.
export default defineConfig({
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  datasource: {
    url: process.env.DATABASE_URL ?? "",
    shadowDatabaseUrl: process.env.SHADOW_DATABASE_URL,
  },
});
