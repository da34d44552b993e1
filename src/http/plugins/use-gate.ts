import {
  type DocumentNode,
  GraphQLError,
  type GraphQLSchema,
  Kind,
  MaxIntrospectionDepthRule,
  type ValidationRule,
} from "graphql";
import { getComplexity } from "graphql-query-complexity";
import type { Plugin } from "graphql-yoga";
import { chargeOperation } from "../../domain/rate-limit.ts";
import { ErrorCode, RateLimitedError, RequestErrorCode } from "../../errors.ts";
import { config } from "../../platform/config.ts";
import type { Context } from "../context.ts";
import { estimateCost, introspects, ListTooLong } from "../cost.ts";
import { registerAdmittedDocument } from "../persisted-documents.ts";
import { noteCharge } from "./use-budget-report.ts";
import { inspectVariables, NUL, NUL_MESSAGE } from "./use-params-shape.ts";

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
  costs.set(context.request, cost);
  try {
    // The response cache's lookup may have charged this very operation already (its answer was outdated).
    const due = cost - (precharged.get(context.request) ?? 0);
    if (due > 0) {
      noteCharge(context.request, cost, await chargeOperation(due, context.viewer?.id ?? null, context.clientAddress));
    }
    await registerAdmittedDocument(context.request, context.viewer?.id ?? null, context.clientAddress);
  } catch (error) {
    if (!(error instanceof RateLimitedError)) throw error;
    return [error];
  }
  return null;
}

/** The points each admitted operation costs, by request (what the response cache keeps with its answer). */
const costs = new WeakMap<Request, number>();
/** Points charged for a request before the gate saw it (by the response cache's lookup), by request. */
const precharged = new WeakMap<Request, number>();

/** What the gate charged for the request's operation, once admitted. */
export const admittedCost = (request: Request) => costs.get(request);

/** Notes points already charged for the request's operation (the response cache's lookup): the gate charges the rest. */
export function notePrecharged(request: Request, points: number): void {
  precharged.set(request, points);
}

/** The gate, for every operation: queries and mutations before they execute, subscriptions before they start. */
export function useGate(): Plugin {
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
