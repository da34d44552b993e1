import { EnvelopArmorPlugin } from "@escape.tech/graphql-armor";
import { useCSRFPrevention } from "@graphql-yoga/plugin-csrf-prevention";
import { useDisableIntrospection } from "@graphql-yoga/plugin-disable-introspection";
import { GraphQLError, getNullableType, isListType, Kind, type ValidationRule } from "graphql";
import { type ComplexityEstimator, getComplexity } from "graphql-query-complexity";
import type { Plugin } from "graphql-yoga";
import type { Context } from "../schema/builder.ts";
import { config } from "./config.ts";
import { ErrorCode, RateLimitedError, RequestErrorCode } from "./errors.ts";
import { requestScope } from "./logger.ts";
import { DEFAULT_PAGE_SIZE } from "./pagination.ts";
import { chargeOperation } from "./rate-limit.ts";

/** Headers that prove a request was not a "simple" cross-site browser request (GET, form POST). */
export const CSRF_HEADERS = ["x-graphql-yoga-csrf", "apollo-require-preflight", "x-apollo-operation-name"];

/**
 * The limits every operation must pass before anything runs. GraphQL Armor refuses documents that are too
 * deep, have too many aliases, tokens or directives (cheaply, while parsing and validating) and hides field
 * suggestions in production; the cost rule refuses operations whose cost exceeds MAX_COMPLEXITY; then the
 * cost is charged to the caller's rate-limit budget.
 */
export function securityPlugins(): Plugin[] {
  const { limits, production, introspection } = config();
  return [
    EnvelopArmorPlugin({
      maxDepth: { n: limits.depth, flattenFragments: true },
      maxAliases: { n: limits.aliases },
      maxTokens: { n: limits.tokens },
      maxDirectives: { n: limits.directives },
      // Armor's cost model ignores page sizes; the Pothos rule below multiplies by `first`.
      costLimit: { enabled: false },
      blockFieldSuggestion: { enabled: production },
    }) as Plugin,
    useDisableIntrospection({ isDisabled: () => !introspection }),
    useCSRFPrevention({ requestHeaders: CSRF_HEADERS }),
    useCostLimit(),
  ];
}

/**
 * Refuses bodies larger than MAX_BODY_BYTES (413) before anything parses them, whether or not the client
 * declared a length; an accepted body is handed on already read.
 */
export function useBodyLimit(): Plugin {
  return {
    async onRequest({ request, setRequest, endResponse, fetchAPI }) {
      if (!request.body) return;
      const limit = config().limits.bodyBytes;
      const tooLarge = () =>
        endResponse(
          new fetchAPI.Response(
            JSON.stringify({
              errors: [
                {
                  message: `The request body is larger than ${limit} bytes.`,
                  extensions: {
                    code: RequestErrorCode.PAYLOAD_TOO_LARGE,
                    requestId: requestScope.getStore()?.requestId,
                  },
                },
              ],
            }),
            { status: 413, headers: { "content-type": "application/json" } },
          ),
        );
      if (Number(request.headers.get("content-length")) > limit) return tooLarge();
      const reader = request.body.getReader();
      const chunks: Uint8Array[] = [];
      let size = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > limit) {
          await reader.cancel();
          return tooLarge();
        }
        chunks.push(value);
      }
      setRequest(
        new fetchAPI.Request(request.url, {
          method: request.method,
          headers: request.headers,
          body: Buffer.concat(chunks),
        }),
      );
    },
  };
}

const NUL = "\u0000";
const NUL_MESSAGE = "Text can't contain the NUL character (U+0000).";

const containsNul = (value: unknown): boolean =>
  typeof value === "string"
    ? value.includes(NUL)
    : Array.isArray(value)
      ? value.some(containsNul)
      : typeof value === "object" && value !== null && Object.values(value).some(containsNul);

/**
 * No text may contain U+0000: PostgreSQL cannot store it, so it would fail deep inside a write. This rule
 * checks the document's string literals; variables are checked before execution (validation results are
 * cached per document, so no rule may depend on variables).
 */
const noNulLiterals: ValidationRule = (context) => ({
  [Kind.STRING]: (node) => {
    if (node.value.includes(NUL)) {
      context.reportError(
        new GraphQLError(NUL_MESSAGE, { nodes: [node], extensions: { code: ErrorCode.BAD_USER_INPUT } }),
      );
    }
  },
});

/**
 * The cost model: a field costs 1, and what a list selects is paid once per item it can return. A connection
 * returns `first` (or `last`, default 20) items and its `edges` are not charged again; other lists (a post's
 * photos) count as 10 items. A mutation costs 10 more: writes are dearer than reads.
 */
const estimateCost: ComplexityEstimator = ({ field, args, childComplexity, type }) => {
  const size = args.first ?? args.last;
  if (field.args.some((arg) => arg.name === "first")) {
    return 1 + childComplexity * Math.max(0, typeof size === "number" ? size : DEFAULT_PAGE_SIZE);
  }
  const self = type.name === "Mutation" ? 11 : 1;
  if (field.name === "edges") return self + childComplexity;
  if (isListType(getNullableType(field.type))) return self + childComplexity * 10;
  return self + childComplexity;
};

/**
 * Before execution, with the request's variables: refuses NUL characters in variables and operations costing
 * more than MAX_COMPLEXITY (fragments expanded, at most 10,000 fields counted, so a "fragment bomb" stops
 * early), then charges the cost to the caller's rate-limit budget.
 */
function useCostLimit(): Plugin {
  return {
    onValidate({ addValidationRule }) {
      addValidationRule(noNulLiterals);
    },
    async onExecute({ args, setResultAndStopExecution }) {
      const context = args.contextValue as unknown as Context;
      const refuse = (message: string, code: string) =>
        setResultAndStopExecution({ errors: [new GraphQLError(message, { extensions: { code } })] });
      if (containsNul(args.variableValues)) return refuse(NUL_MESSAGE, ErrorCode.BAD_USER_INPUT);
      const max = config().limits.complexity;
      let cost: number;
      try {
        cost = getComplexity({
          schema: args.schema,
          query: args.document,
          variables: args.variableValues ?? {},
          operationName: args.operationName ?? undefined,
          estimators: [estimateCost],
          maxQueryNodes: 10_000,
        });
      } catch (error) {
        if (String(error).includes("maximum allowed number of nodes")) {
          return refuse(
            "This operation selects too many fields (more than 10,000 once fragments are expanded).",
            RequestErrorCode.QUERY_TOO_COMPLEX,
          );
        }
        // Variables that don't fit their types: execution reports that to the client, without running anything.
        return;
      }
      if (cost > max) {
        return refuse(
          `This operation would cost ${cost} points, more than the limit of ${max}: ask for fewer items (first/last) or fewer nested lists.`,
          RequestErrorCode.QUERY_TOO_COMPLEX,
        );
      }
      try {
        await chargeOperation(cost, context.viewer?.id ?? null, context.clientAddress);
      } catch (error) {
        if (!(error instanceof RateLimitedError)) throw error;
        setResultAndStopExecution({ errors: [error as GraphQLError] });
      }
    },
  };
}
