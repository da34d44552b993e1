import { useDeferStream } from "@graphql-yoga/plugin-defer-stream";
import { type DocumentNode, type ExecutionResult, GraphQLError, type ValidationRule, visit } from "graphql";
import { handleStreamOrSingleExecutionResult, type Plugin } from "graphql-yoga";
import type { ServerContext } from "../context.ts";
import { INTERNAL_ERROR_MESSAGE, maskError } from "../mask-error.ts";

/**
 * `@defer` and `@stream` (the incremental delivery proposal, as Apollo Client and urql speak it): a query's first
 * part leaves as soon as what is not deferred is ready, the rest follow over `multipart/mixed` or
 * `text/event-stream` — to clients that ask for one of those, where the deployment streams. Everyone else gets the
 * whole answer at once, executed as if nothing were deferred (the proposal's advice: the directives are dropped,
 * so the answer is an ordinary one — batched, cached and priced like any other): a client that sent `Accept:
 * application/json` (or `*\/*`), and every client of a deployment that answers once (a buffered Lambda
 * integration). The directives are in the schema (schema/index.ts); this plugin adds their validation rules
 * (Yoga's defer/stream plugin), keeps them to queries, and masks errors in deferred parts (Yoga's masking sees
 * only a part's top-level errors).
 */
export function useIncrementalDelivery(): Plugin {
  return {
    onPluginInit({ addPlugin }) {
      // Its validation rules (labels, root fields, list fields); typed for envelop, not Yoga.
      addPlugin(useDeferStream() as Plugin);
    },
    onValidate({ addValidationRule }) {
      addValidationRule(incrementalInQueriesOnly);
    },
    onExecute({ args, executeFn, setExecuteFn }) {
      const { request } = args.contextValue as { request: Request };
      if (!partsWanted(request, args.contextValue as ServerContext)) {
        const whole = sentWhole(args.document);
        // (A document that defers nothing is itself: executed as it is.)
        if (whole !== args.document) setExecuteFn((execution) => executeFn({ ...execution, document: whole }));
        return;
      }
      return {
        onExecuteDone(payload) {
          return handleStreamOrSingleExecutionResult(payload, ({ result, setResult }) => {
            const parts = (result as Part).incremental;
            if (!parts?.some((part) => part.errors?.length)) return;
            setResult({
              ...result,
              incremental: parts.map((part) =>
                part.errors?.length
                  ? { ...part, errors: part.errors.map((error) => maskError(error, INTERNAL_ERROR_MESSAGE)) }
                  : part,
              ),
            } as unknown as ExecutionResult);
          });
        },
      };
    },
  };
}

/** A later part of an incremental answer: what it adds, each at its path. */
type Part = ExecutionResult & { incremental?: ExecutionResult[] };

const INCREMENTAL = new Set(["defer", "stream"]);

/** Documents as executed when their answer is sent whole: without @defer and @stream (one per parsed document). */
const wholeDocuments = new WeakMap<DocumentNode, DocumentNode>();

function sentWhole(document: DocumentNode): DocumentNode {
  let whole = wholeDocuments.get(document);
  if (!whole) {
    whole = visit(document, { Directive: (directive) => (INCREMENTAL.has(directive.name.value) ? null : undefined) });
    wholeDocuments.set(document, whole);
  }
  return whole;
}

/**
 * Whether a request's answer goes out in parts, if its document defers anything: the client asked for parts (by
 * naming `multipart/mixed` or `text/event-stream`; `*\/*` gets the whole answer) and this deployment streams.
 */
const partsWanted = (request: Request, server: ServerContext) =>
  !server.answersOnce && asksForParts(request.headers.get("accept"));

/** Whether an operation's answer goes out in parts (its text uses @defer or @stream, and parts are wanted). */
export const sentInParts = (request: Request, server: ServerContext, query: string) =>
  partsWanted(request, server) && /@(defer|stream)\b/.test(query);

const mediaTypes = (accept: string) => accept.split(",").map((type) => type.split(";")[0]?.trim().toLowerCase());

/** Whether the client named a media type that carries parts (`*\/*` does not: it gets the whole answer). */
const asksForParts = (accept: string | null) =>
  !!accept && mediaTypes(accept).some((type) => type === "multipart/mixed" || type === "text/event-stream");

/**
 * `@defer` and `@stream` in queries only: a mutation's answer is recorded whole for its Idempotency-Key's replays,
 * and a subscription's events are already parts of their own.
 */
const incrementalInQueriesOnly: ValidationRule = (context) => ({
  OperationDefinition(operation) {
    if (operation.operation === "query") return false;
    for (const node of [operation, ...context.getRecursivelyReferencedFragments(operation)]) {
      visit(node, {
        Directive(directive) {
          if (!INCREMENTAL.has(directive.name.value)) return;
          context.reportError(
            new GraphQLError(
              `@${directive.name.value} applies to queries only: a ${operation.operation}'s answer is sent whole.`,
              { nodes: directive },
            ),
          );
        },
      });
    }
    return false;
  },
});
