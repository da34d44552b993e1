import { config } from "../platform/config.ts";
import { logger } from "../platform/logger.ts";

/** What a committed write changed, as far as a purge goes: the parts of an entity (a Change, caching/changes.ts). */
interface ChangedParts {
  id: string;
  parts: readonly string[];
}

/** The surrogate keys of what changed (`post:<id>`, `user-counts:<id>` …): the tags of the answers to purge. */
export const changedKeys = (changes: readonly ChangedParts[]): string[] => [
  ...new Set(changes.flatMap((change) => change.parts.map((part) => `${part}:${change.id}`))),
];

/**
 * With CDN_PURGE_URL set, a commit's changes are POSTed there as surrogate keys (`{ "keys": [...] }`, with
 * CDN_PURGE_TOKEN as a bearer token): the hook for a CDN that purges by tag (Fastly's Surrogate-Key, Cloudflare's
 * Cache-Tag, or a small function that turns them into CloudFront invalidations). Public GET answers carry the
 * same keys in `Surrogate-Key`. Called when any write's changes are applied (applyChanges), so every process that commits purges — the
 * images and events functions as much as the GraphQL one. A purge that fails is logged; the write stands.
 */
export async function purgeCdn(changes: readonly ChangedParts[]): Promise<void> {
  const purge = config().responseCache.cdnPurge;
  if (!purge || changes.length === 0) return;
  const keys = changedKeys(changes);
  try {
    const response = await fetch(purge.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(purge.token ? { authorization: `Bearer ${purge.token}` } : {}),
      },
      body: JSON.stringify({ keys }),
      signal: AbortSignal.timeout(2_000),
    });
    if (!response.ok) logger().warn({ status: response.status, keys: keys.length }, "CDN purge refused");
  } catch (error) {
    logger().warn({ err: error, keys: keys.length }, "CDN purge failed");
  }
}
