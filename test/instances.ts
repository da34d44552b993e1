// Independent function instances in one test process: each import after vi.resetModules() runs the
// function's module scope again (its own configuration, Yoga, Prisma client and Redis client), like two
// Lambda instances or two containers sharing PostgreSQL and Redis.
import { vi } from "vitest";

type FunctionModule = typeof import("../functions/graphql.ts");

export interface Instance {
  query(
    query: string,
    variables?: Record<string, unknown>,
    token?: string,
  ): Promise<{ data: any; errors?: any[]; extensions?: any }>;
  /** The instance's function module (its Fetch and Lambda handlers). */
  module(): Promise<FunctionModule>;
  close(): Promise<void>;
}

export async function startInstance(env: Record<string, string> = {}): Promise<Instance> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  vi.resetModules();
  let functionModule: FunctionModule;
  try {
    functionModule = await import("../functions/graphql.ts");
  } finally {
    // A start that fails (bad configuration) must not leave its environment behind.
    if (!functionModule!) process.env = saved;
  }
  const { fetch } = functionModule;
  const { disconnectDb } = await import("../src/db.ts");
  const { closeCache, cacheStore } = await import("../src/cache.ts");
  const { closePubSub } = await import("../src/events/pubsub.ts");
  const { closePublisher } = await import("../src/events/stream.ts");
  const { config } = await import("../src/config.ts");
  // Settle what this instance reads from the environment before restoring it.
  config();
  cacheStore();
  process.env = saved;
  return {
    async query(query, variables = {}, token) {
      const response = await fetch(
        new Request("http://shutter.test/graphql", {
          method: "POST",
          headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
          body: JSON.stringify({ query, variables }),
        }),
      );
      return response.json();
    },
    module: async () => functionModule,
    async close() {
      closePubSub();
      await Promise.all([disconnectDb(), closeCache(), closePublisher()]);
    },
  };
}
