import { EnvelopArmorPlugin } from "@escape.tech/graphql-armor";
import { useDisableIntrospection } from "@graphql-yoga/plugin-disable-introspection";
import {
  type DocumentNode,
  GraphQLError,
  getNullableType,
  isListType,
  Kind,
  MaxIntrospectionDepthRule,
  type ValidationRule,
  visit,
} from "graphql";
import { type ComplexityEstimator, getComplexity } from "graphql-query-complexity";
import type { Plugin } from "graphql-yoga";
import type { Context } from "../schema/builder.ts";
import { config } from "./config.ts";
import { ErrorCode, RateLimitedError, RequestErrorCode } from "./errors.ts";
import { requestScope } from "./logger.ts";
import { DEFAULT_PAGE_SIZE } from "./pagination.ts";
import { chargeOperation } from "./rate-limit.ts";

/** Request headers browser clients may send (CORS lets them through a preflight): Apollo's and Yoga's. */
export const CLIENT_HEADERS = [
  "apollo-require-preflight",
  "x-apollo-operation-name",
  "apollographql-client-name",
  "apollographql-client-version",
  "x-graphql-yoga-csrf",
];

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
    useJsonPosts(),
    useCostLimit(),
  ];
}

/** Content types a web page may POST to another site without a CORS preflight (an HTML form, a beacon). */
const SIMPLE_CONTENT_TYPES = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"];

/**
 * Cross-site request forgery, decided from the threat. Shutter authenticates with a bearer header, never a
 * cookie, so a request another website makes a browser send carries no credentials: it can do nothing its
 * author could not do from their own machine. What such a request still carries is the visitor's address,
 * which per-address limits count (failed logins, the anonymous budget): a page could make its visitors'
 * browsers spend them. So the only requests a browser can send cross-site without a preflight — GETs and
 * form-style POSTs — are harmless here: a GET can only run a query (mutations over GET are refused with 405),
 * and a POST must be JSON (a content type a page cannot send cross-site unless CORS allows its origin).
 * Clients need no extra header (urql and Apollo send persisted queries over GET with their defaults). If
 * cookie authentication is ever added, a CSRF header requirement must come back for it.
 */
export function useJsonPosts(): Plugin {
  return {
    onRequest({ request, endResponse, fetchAPI }) {
      if (request.method !== "POST") return;
      const type = (request.headers.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
      if (!SIMPLE_CONTENT_TYPES.includes(type)) return;
      endResponse(
        new fetchAPI.Response(
          JSON.stringify({
            errors: [
              {
                message: "Send the operation as application/json (or application/graphql-response+json), or use GET.",
                extensions: {
                  code: RequestErrorCode.UNSUPPORTED_MEDIA_TYPE,
                  requestId: requestScope.getStore()?.requestId,
                },
              },
            ],
          }),
          { status: 415, headers: { "content-type": "application/json" } },
        ),
      );
    },
  };
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

/** The root fields of introspection (`__typename` costs like any field). */
const INTROSPECTION_FIELDS = new Set(["__schema", "__type"]);

/**
 * The cost model: a field costs 1, and what a list selects is paid once per item it can return. A connection
 * returns `first` (or `last`, default 20) items and its `edges` are not charged again; other lists (a post's
 * photos) count as 10 items. A mutation costs 10 more: writes are dearer than reads. Introspection has a budget
 * of its own (see useCostLimit), so it costs nothing here: its size is the schema's, not the data's.
 */
const estimateCost: ComplexityEstimator = ({ field, args, childComplexity, type }) => {
  if (type.name === "Query" && INTROSPECTION_FIELDS.has(field.name)) return 0;
  const size = args.first ?? args.last;
  if (field.args.some((arg) => arg.name === "first")) {
    return 1 + childComplexity * Math.max(0, typeof size === "number" ? size : DEFAULT_PAGE_SIZE);
  }
  const self = type.name === "Mutation" ? 11 : 1;
  if (field.name === "edges") return self + childComplexity;
  if (isListType(getNullableType(field.type))) return self + childComplexity * 10;
  return self + childComplexity;
};

/** Whether a document asks for the schema (`__schema` or `__type`: valid only at the root of a query). */
function introspects(document: DocumentNode): boolean {
  let found = false;
  visit(document, {
    Field(node) {
      if (INTROSPECTION_FIELDS.has(node.name.value)) found = true;
    },
  });
  return found;
}

/**
 * Before execution, with the request's variables: refuses NUL characters in variables and operations costing
 * more than MAX_COMPLEXITY (fragments expanded, at most 10,000 fields counted, so a "fragment bomb" stops
 * early), then charges the cost to the caller's rate-limit budget.
 *
 * Introspection (where enabled) is budgeted apart from data: its answer is the schema, whatever the page sizes,
 * so the data cost model (which multiplies by list sizes) would price the standard introspection query that
 * GraphiQL and code generators send at ~50,000 points. Instead, graphql-js's MaxIntrospectionDepthRule bounds
 * the nesting that makes introspection expensive (`fields { type { fields { … } } }`), and each request that
 * introspects is charged INTROSPECTION_COST points of the caller's rate-limit budget.
 */
function useCostLimit(): Plugin {
  return {
    onValidate({ addValidationRule }) {
      addValidationRule(noNulLiterals);
      addValidationRule(MaxIntrospectionDepthRule);
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
      if (introspects(args.document)) cost += config().limits.introspectionCost;
      try {
        await chargeOperation(cost, context.viewer?.id ?? null, context.clientAddress);
      } catch (error) {
        if (!(error instanceof RateLimitedError)) throw error;
        setResultAndStopExecution({ errors: [error as GraphQLError] });
      }
    },
  };
}
