import { getOperationAST } from "graphql";
import type { Plugin } from "graphql-yoga";
import { inSpan, inSpanSync, tracing } from "../../platform/telemetry.ts";

/**
 * GraphQL's phases as spans of the request's trace, when tracing is on: `graphql.parse`, `graphql.validate` and
 * `graphql.execute` (with the operation's name and type), the last one the parent of what resolvers do — loader
 * batches, SQL statements, Redis commands. (Parsing and validation are cached per document: a cached document
 * shows no parse span.) @envelop/opentelemetry does the execute span only and pins SDK 1.x; these are a few lines.
 */
export function useTracing(): Plugin {
  return {
    onParse({ parseFn, setParseFn }) {
      if (!tracing()) return;
      setParseFn((source, options) => inSpanSync("graphql.parse", {}, () => parseFn(source, options)));
    },
    onValidate({ validateFn, setValidationFn }) {
      if (!tracing()) return;
      setValidationFn((schema, document, rules, typeInfo, options) =>
        inSpanSync("graphql.validate", {}, () => validateFn(schema, document, rules, typeInfo, options)),
      );
    },
    onExecute({ executeFn, setExecuteFn, args }) {
      if (!tracing()) return;
      const operation = getOperationAST(args.document, args.operationName);
      setExecuteFn((executeArgs) =>
        inSpan(
          "graphql.execute",
          {
            "graphql.operation.name": operation?.name?.value ?? "",
            "graphql.operation.type": operation?.operation ?? "",
          },
          async () => executeFn(executeArgs),
        ),
      );
    },
  };
}
