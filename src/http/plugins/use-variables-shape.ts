import { createGraphQLError, type Plugin } from "graphql-yoga";
import { RequestErrorCode } from "../../errors.ts";

export const NUL = "\u0000";
export const NUL_MESSAGE = "Text can't contain the NUL character (U+0000).";

/** How deep and how large variables may be: well beyond any real input, short of any recursion limit. */
const VARIABLES = { maxDepth: 20, maxValues: 10_000 };

/**
 * Walks a JSON value without recursion (a deeply nested one cannot overflow the stack), depth first.
 * @returns "deep" or "large" past the limits, "nul" if a string holds U+0000 (when asked to look), else null.
 */
export function inspectVariables(value: unknown, lookForNul: boolean): "deep" | "large" | "nul" | null {
  const pending: [unknown, number][] = [[value, 0]];
  let seen = 0;
  while (pending.length) {
    const [current, depth] = pending.pop() as [unknown, number];
    if (++seen > VARIABLES.maxValues) return "large";
    if (depth > VARIABLES.maxDepth) return "deep";
    if (typeof current === "string") {
      if (lookForNul && current.includes(NUL)) return "nul";
    } else if (typeof current === "object" && current !== null) {
      for (const child of Object.values(current)) pending.push([child, depth + 1]);
    }
  }
  return null;
}

/**
 * Variables too deep or too large are a malformed request (400), refused before anything parses the document:
 * graphql-js coerces them recursively.
 */
export function useVariablesShape(): Plugin {
  return {
    onParams({ params }) {
      const problem = inspectVariables(params.variables, false);
      if (problem === "deep" || problem === "large") {
        throw createGraphQLError(
          problem === "deep"
            ? `Variables can be nested at most ${VARIABLES.maxDepth} levels deep.`
            : `Variables can hold at most ${VARIABLES.maxValues} values.`,
          { extensions: { code: RequestErrorCode.BAD_REQUEST, http: { status: 400 } } },
        );
      }
    },
  };
}
