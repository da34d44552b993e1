// Who the client is, for per-address limits (the anonymous budget, failed logins, sign-ups). The address a
// request came from is the first hop of the chain [socket peer or API Gateway's sourceIp, then the
// X-Forwarded-For entries from right to left] that is not a trusted proxy. Proxies append the address they
// received the request from, so everything left of the last trusted proxy was written by whoever sent the
// request, the client included: the left-most X-Forwarded-For entry is never trusted as such.
import { isIP } from "node:net";
import { config } from "../platform/config.ts";
import { logger } from "../platform/logger.ts";

/** "::ffff:203.0.113.9" (an IPv4 peer on a dual-stack socket) is 203.0.113.9. */
const normalize = (address: string) => address.trim().replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, "$1");

let warned = false;

/**
 * The client's address: `peer` is who connected to us (the TCP peer, or API Gateway's sourceIp), `forwardedFor`
 * the X-Forwarded-For header as received.
 */
export function resolveClientAddress(peer: string | undefined, forwardedFor: string | null): string {
  const { trustedProxies } = config();
  // Without a peer (an entry called in process) the chain still starts with it: a header alone is never trusted.
  const chain = [peer?.trim() || "unknown", ...(forwardedFor ?? "").split(",").reverse()]
    .filter((hop) => hop.trim())
    .map(normalize)
    // A gateway that appends the peer it saw to X-Forwarded-For as well (API Gateway) is one hop, not two.
    .filter((hop, i, hops) => i === 0 || hop !== hops[i - 1]);
  if ("hops" in trustedProxies) {
    if (trustedProxies.hops === 0 && forwardedFor && !warned) {
      warned = true;
      logger().warn(
        { peer },
        "requests arrive through a proxy (X-Forwarded-For) but TRUSTED_PROXIES is 0: per-address limits count the proxy's address for every client; set TRUSTED_PROXIES (see docs/security.md)",
      );
    }
    // Beyond the chain's start, the left-most hop is the best there is (a client that sent no header).
    return chain[Math.min(trustedProxies.hops, chain.length - 1)] as string;
  }
  const untrusted = chain.find((hop) => {
    if (hop === "unknown") return true;
    const family = isIP(hop);
    return !family || !trustedProxies.ranges.check(hop, family === 6 ? "ipv6" : "ipv4");
  });
  return untrusted ?? (chain.at(-1) as string);
}
