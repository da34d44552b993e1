import { defineEntity, loadThroughCache } from "../caching/entities.ts";
import type { ExternalIdentity } from "../domain/auth.ts";
import { db } from "../platform/db.ts";

/** External identity (issuer, subject) → the Shutter user it is linked to. Links are made once, never changed. */
const identityEntity = defineEntity<{ id: string; userId: string }, "identity">({
  name: "identity",
  table: "identities",
  parts: { identity: { ttlSeconds: 3600, fields: ["userId"] } },
  isValidId: (id) => id.length <= 600,
  load: async (ids) => {
    const pairs = ids.map((id) => JSON.parse(id) as [string, string]);
    const rows = await db().identity.findMany({
      where: { OR: pairs.map(([issuer, subject]) => ({ issuer, subject })) },
    });
    return rows.map((row) => ({ id: JSON.stringify([row.issuer, row.subject]), userId: row.userId }));
  },
});

/** The Shutter user an external identity is linked to (cached: links never change), or null. */
export async function userIdForIdentity(identity: ExternalIdentity): Promise<string | null> {
  const [entry] = await loadThroughCache(identityEntity, [JSON.stringify([identity.issuer, identity.subject])]);
  return entry?.userId ?? null;
}
