// The deploy step for persisted documents (`npm run persisted:push`): an older app version's manifest, loaded
// into Redis, keeps working in `persisted-only` deployments built after it. Redis is where deploys put it, so
// this runs with REDIS_URL.
import { expect, test } from "vitest";
import { sha256, trustDocuments } from "../../src/http/persisted-documents.ts";
import { startInstance } from "../kit/instances.ts";

test("documents of an older app version, loaded by the deploy step, keep working under persisted-only", async () => {
  const instance = await startInstance({ PERSISTED_QUERIES: "persisted-only" });
  const run = async (documentId: string) => {
    const response = await instance.fetch("/graphql", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/graphql-response+json" },
      body: JSON.stringify({ documentId }),
    });
    return { status: response.status, body: await response.json() };
  };
  const older = "query OldAppExplore { explore(first: 2) { edges { node { id caption } } } }";
  const id = `sha256:${sha256(older)}`;
  expect((await run(id)).status).toBe(404);
  expect(await trustDocuments({ [id]: older })).toBe(1);
  const result = await run(id);
  expect(result.status).toBe(200);
  expect(result.body.data.explore).toBeDefined();
  await expect(trustDocuments({ [id]: `${older} ` })).rejects.toThrow(/is not the SHA-256/);
});
