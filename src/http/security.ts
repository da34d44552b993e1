import { EnvelopArmorPlugin } from "@escape.tech/graphql-armor";
import { useDisableIntrospection } from "@graphql-yoga/plugin-disable-introspection";
import {
  type DocumentNode,
  GraphQLError,
  type GraphQLInputType,
  type GraphQLSchema,
  getNullableType,
  isInputObjectType,
  isListType,
  Kind,
  MaxIntrospectionDepthRule,
  type ValidationRule,
  visit,
} from "graphql";
import { type ComplexityEstimator, getComplexity } from "graphql-query-complexity";
import { createGraphQLError, type Plugin } from "graphql-yoga";
import type { Context } from "../../schema/builder.ts";
import { DEFAULT_PAGE_SIZE } from "../domain/pagination.ts";
import { chargeOperation } from "../domain/rate-limit.ts";
import { ErrorCode, RateLimitedError, RequestErrorCode } from "../errors.ts";
import { config } from "../platform/config.ts";
import { requestScope } from "../platform/logger.ts";
import { registerAdmittedDocument } from "./plugins/use-persisted-documents.ts";

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
    useVariablesShape(),
    useGate(),
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

/** How deep and how large variables may be: well beyond any real input, short of any recursion limit. */
const VARIABLES = { maxDepth: 20, maxValues: 10_000 };

/**
 * Walks a JSON value without recursion (a deeply nested one cannot overflow the stack), depth first.
 * @returns "deep" or "large" past the limits, "nul" if a string holds U+0000 (when asked to look), else null.
 */
function inspectVariables(value: unknown, lookForNul: boolean): "deep" | "large" | "nul" | null {
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
 * No text may contain U+0000: PostgreSQL cannot store it, so it would fail deep inside a write. This rule
 * checks the document's string literals; variables are checked by the gate (validation results are cached
 * per document, so no rule may depend on variables).
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
 * Variables too deep or too large are a malformed request (400), refused before anything parses the document:
 * graphql-js coerces them recursively.
 */
function useVariablesShape(): Plugin {
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

/** The root fields of introspection (`__typename` costs like any field). */
const INTROSPECTION_FIELDS = new Set(["__schema", "__type"]);

/**
 * How large a list is, declared where it is defined (the `extensions` of a Pothos field, argument or input
 * field): `maxItems`, or, for a list as long as an argument (`nodes(ids:)`), `listSize`. test/schema.test.ts
 * fails when a list in the schema declares neither.
 */
export interface ListSizeExtensions {
  maxItems?: number;
  listSize?: { argument: string; maxItems: number };
}

/** A list argument longer than its declared maximum (refused before execution). */
class ListTooLong extends Error {
  constructor(path: string, max: number) {
    super(`"${path}" can hold at most ${max} items.`);
  }
}

/** Checks the lists in an argument's value (and the input objects in it) against their declared maximums. */
function checkInputLists(type: GraphQLInputType, value: unknown, path: string, maxItems?: number): void {
  const nullable = getNullableType(type);
  if (value == null) return;
  if (isListType(nullable)) {
    const items = Array.isArray(value) ? value : [value];
    if (maxItems !== undefined && items.length > maxItems) throw new ListTooLong(path, maxItems);
    for (const item of items) checkInputLists(nullable.ofType, item, path);
  } else if (isInputObjectType(nullable) && typeof value === "object") {
    for (const field of Object.values(nullable.getFields())) {
      const limit = (field.extensions as ListSizeExtensions).maxItems;
      checkInputLists(field.type, (value as Record<string, unknown>)[field.name], `${path}.${field.name}`, limit);
    }
  }
}

/**
 * The cost model: a field costs 1, and what a list selects is paid once per item it can return. A connection
 * returns `first` (or `last`, default 20) items and its `edges` are not charged again; any other list returns
 * at most its declared `maxItems`, and `nodes(ids:)` as many items as distinct ids (repeats are loaded once).
 * A mutation costs 10 more: writes are dearer than reads. Introspection has a budget of its own (see the
 * gate), so it costs nothing here: its size is the schema's, not the data's. List arguments longer than they
 * may be are refused here, before anything runs.
 */
const estimateCost: ComplexityEstimator = ({ field, args, childComplexity, type }) => {
  if (type.name === "Query" && INTROSPECTION_FIELDS.has(field.name)) return 0;
  for (const arg of field.args) {
    checkInputLists(arg.type, args[arg.name], arg.name, (arg.extensions as ListSizeExtensions).maxItems);
  }
  const { maxItems, listSize } = field.extensions as ListSizeExtensions;
  if (listSize) {
    const given = args[listSize.argument];
    const items = Array.isArray(given) ? given : given == null ? [] : [given];
    if (items.length > listSize.maxItems) throw new ListTooLong(listSize.argument, listSize.maxItems);
    return 1 + childComplexity * new Set(items).size;
  }
  const size = args.first ?? args.last;
  if (field.args.some((arg) => arg.name === "first")) {
    return 1 + childComplexity * Math.max(0, typeof size === "number" ? size : DEFAULT_PAGE_SIZE);
  }
  const self = type.name === "Mutation" ? 11 : 1;
  if (field.name === "edges") return self + childComplexity;
  if (isListType(getNullableType(field.type))) return self + childComplexity * (maxItems ?? UNDECLARED_LIST_SIZE);
  return self + childComplexity;
};

/** What a list that declares no size is priced at (none should: test/schema.test.ts). */
const UNDECLARED_LIST_SIZE = 100;

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

interface GateArgs {
  schema: GraphQLSchema;
  document: DocumentNode;
  variableValues?: Record<string, unknown> | null;
  operationName?: string | null;
  contextValue: unknown;
}

const refusal = (message: string, code: string) =>
  new GraphQLError(message, { extensions: { code, http: { status: 400 } } });

/**
 * The gate every operation passes after it parsed and validated, whichever way it came in (query, mutation or
 * subscription; POST or GET; by document, by persisted id or registering one; from API Gateway or a socket):
 * no NUL in its variables; list arguments within their sizes; a cost within MAX_COMPLEXITY (fragments
 * expanded, at most 10,000 fields counted, so a "fragment bomb" stops early); then the cost is charged to the
 * caller's rate-limit budget, and only then is a new Automatic Persisted Query registered (its size charged
 * too). @returns the errors that refuse it, or null when it may run.
 *
 * Introspection (where enabled) is budgeted apart from data: its answer is the schema, whatever the page sizes,
 * so the data cost model (which multiplies by list sizes) would price the standard introspection query that
 * GraphiQL and code generators send at ~50,000 points. Instead, graphql-js's MaxIntrospectionDepthRule bounds
 * the nesting that makes introspection expensive (`fields { type { fields { … } } }`), and each request that
 * introspects is charged INTROSPECTION_COST points of the caller's rate-limit budget.
 */
async function admit(args: GateArgs): Promise<GraphQLError[] | null> {
  const context = args.contextValue as Context;
  if (inspectVariables(args.variableValues, true) === "nul") return [refusal(NUL_MESSAGE, ErrorCode.BAD_USER_INPUT)];
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
    if (error instanceof ListTooLong) return [refusal(error.message, ErrorCode.BAD_USER_INPUT)];
    if (String(error).includes("maximum allowed number of nodes")) {
      return [
        refusal(
          "This operation selects too many fields (more than 10,000 once fragments are expanded).",
          RequestErrorCode.QUERY_TOO_COMPLEX,
        ),
      ];
    }
    // Variables that don't fit their types: execution reports that to the client, without running anything.
    return null;
  }
  if (cost > max) {
    return [
      refusal(
        `This operation would cost ${cost} points, more than the limit of ${max}: ask for fewer items (first/last) or fewer nested lists.`,
        RequestErrorCode.QUERY_TOO_COMPLEX,
      ),
    ];
  }
  if (introspects(args.document)) cost += config().limits.introspectionCost;
  try {
    await chargeOperation(cost, context.viewer?.id ?? null, context.clientAddress);
    await registerAdmittedDocument(context.viewer?.id ?? null, context.clientAddress);
  } catch (error) {
    if (!(error instanceof RateLimitedError)) throw error;
    return [error];
  }
  return null;
}

/** The gate, for every operation: queries and mutations before they execute, subscriptions before they start. */
function useGate(): Plugin {
  return {
    onValidate({ addValidationRule }) {
      addValidationRule(noNulLiterals);
      addValidationRule(MaxIntrospectionDepthRule);
    },
    async onExecute({ args, setResultAndStopExecution }) {
      const errors = await admit(args);
      if (errors) setResultAndStopExecution({ errors });
    },
    async onSubscribe({ args, setResultAndStopExecution }) {
      const errors = await admit(args);
      if (errors) setResultAndStopExecution({ errors });
    },
  };
}
