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

const kindOf = (value: unknown) => (value === null ? "null" : Array.isArray(value) ? "array" : typeof value);

/** What each parameter may be (absent, or null, is always allowed). */
const SHAPES: Record<string, "string" | "object"> = {
  query: "string",
  operationName: "string",
  documentId: "string",
  variables: "object",
  extensions: "object",
};

const badRequest = (message: string) =>
  createGraphQLError(message, { extensions: { code: RequestErrorCode.BAD_REQUEST, http: { status: 400 } } });

/**
 * Every parameter of the request has the type GraphQL over HTTP gives it, and variables are not too deep or too
 * large, or the request is malformed (400 BAD_REQUEST): checked before any other plugin reads them. Yoga's own
 * check runs after every plugin's `onParams` and does not look at `operationName` at all, so a number there
 * reached the response cache's hash (a masked internal error) and the access log. Variables are bounded before
 * anything parses the document: graphql-js coerces them recursively.
 */
export function useParamsShape(): Plugin {
  return {
    onParams({ params }) {
      for (const [name, shape] of Object.entries(SHAPES)) {
        const kind = kindOf((params as Record<string, unknown>)[name]);
        if (kind !== shape && kind !== "undefined" && kind !== "null") {
          throw badRequest(
            `Expected "${name}" to be ${shape === "string" ? "a string" : "an object"}, but given ${kind}.`,
          );
        }
      }
      const problem = inspectVariables(params.variables, false);
      if (problem === "deep" || problem === "large") {
        throw badRequest(
          problem === "deep"
            ? `Variables can be nested at most ${VARIABLES.maxDepth} levels deep.`
            : `Variables can hold at most ${VARIABLES.maxValues} values.`,
        );
      }
    },
  };
}
