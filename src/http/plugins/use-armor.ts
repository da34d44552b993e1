import { EnvelopArmorPlugin } from "@escape.tech/graphql-armor";
import type { Plugin } from "graphql-yoga";
import { config } from "../../platform/config.ts";

/**
 * GraphQL Armor: refuses documents that are too deep, have too many aliases, tokens or directives (cheaply,
 * while parsing and validating) and hides field suggestions in production. Cost is priced by the gate
 * (use-gate.ts), which knows page sizes.
 */
export function useArmor(): Plugin {
  const { limits, production } = config();
  return EnvelopArmorPlugin({
    maxDepth: { n: limits.depth, flattenFragments: true },
    maxAliases: { n: limits.aliases },
    maxTokens: { n: limits.tokens },
    maxDirectives: { n: limits.directives },
    // Armor's cost model ignores page sizes; the gate's multiplies by `first`.
    costLimit: { enabled: false },
    blockFieldSuggestion: { enabled: production },
  }) as Plugin;
}
