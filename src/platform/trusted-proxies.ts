// TRUSTED_PROXIES, parsed: read by the configuration (platform/config.ts) and used at the HTTP edge to find the
// client's address (http/client-address.ts).
import { BlockList, isIP } from "node:net";

/**
 * Trusted proxies (TRUSTED_PROXIES): a number of hops (like Express's `trust proxy`: 1 trusts the proxy that
 * connected to us, so the address it appended is the client's), or address ranges (CIDRs, `loopback`,
 * `private`), for paths whose number of hops varies (Knative's activator is in the path only while scaling).
 */
export type TrustedProxies = { hops: number } | { ranges: BlockList };

const NAMED_RANGES: Record<string, [string, number, "ipv4" | "ipv6"][]> = {
  loopback: [
    ["127.0.0.0", 8, "ipv4"],
    ["::1", 128, "ipv6"],
  ],
  private: [
    ["10.0.0.0", 8, "ipv4"],
    ["172.16.0.0", 12, "ipv4"],
    ["192.168.0.0", 16, "ipv4"],
    ["100.64.0.0", 10, "ipv4"],
    ["fc00::", 7, "ipv6"],
  ],
};

/** Parses TRUSTED_PROXIES. @returns null when the value is not a count, a range or a named range list. */
export function parseTrustedProxies(value: string): TrustedProxies | null {
  if (/^\d{1,2}$/.test(value.trim())) return { hops: Number(value) };
  const ranges = new BlockList();
  for (const part of value.split(",").map((p) => p.trim())) {
    const named = NAMED_RANGES[part];
    if (named) {
      for (const [network, prefix, family] of named) ranges.addSubnet(network, prefix, family);
      continue;
    }
    const [network = "", prefix] = part.split("/");
    const family = isIP(network);
    const bits = prefix === undefined ? (family === 6 ? 128 : 32) : Number(prefix);
    if (!family || !Number.isInteger(bits) || bits < 0 || bits > (family === 6 ? 128 : 32)) return null;
    ranges.addSubnet(network, bits, family === 6 ? "ipv6" : "ipv4");
  }
  return { ranges };
}
