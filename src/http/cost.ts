import {
  type DocumentNode,
  type GraphQLInputType,
  getNullableType,
  isInputObjectType,
  isListType,
  visit,
} from "graphql";
import type { ComplexityEstimator } from "graphql-query-complexity";
import { DEFAULT_PAGE_SIZE } from "../domain/pagination.ts";

// The cost model the gate (plugins/use-gate.ts) prices every operation with.

/** The root fields of introspection (`__typename` costs like any field). */
const INTROSPECTION_FIELDS = new Set(["__schema", "__type"]);

/**
 * How large a list is, declared where it is defined (the `extensions` of a Pothos field, argument or input
 * field): `maxItems`, or, for a list as long as an argument (`nodes(ids:)`), `listSize`.
 * test/api/schema.unit.test.ts fails when a list in the schema declares neither.
 */
export interface ListSizeExtensions {
  maxItems?: number;
  listSize?: { argument: string; maxItems: number };
}

/** A list argument longer than its declared maximum (refused before execution). */
export class ListTooLong extends Error {
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
 * at most its declared `maxItems`, and `nodes(ids:)` as many items as ids: a repeated id is loaded once, but
 * GraphQL executes what is selected on it once per copy (a nested connection's page query included), so every
 * copy is paid for.
 * A mutation costs 10 more: writes are dearer than reads. Introspection has a budget of its own (see the
 * gate), so it costs nothing here: its size is the schema's, not the data's. List arguments longer than they
 * may be are refused here, before anything runs.
 */
export const estimateCost: ComplexityEstimator = ({ field, args, childComplexity, type }) => {
  if (type.name === "Query" && INTROSPECTION_FIELDS.has(field.name)) return 0;
  for (const arg of field.args) {
    checkInputLists(arg.type, args[arg.name], arg.name, (arg.extensions as ListSizeExtensions).maxItems);
  }
  const { maxItems, listSize } = field.extensions as ListSizeExtensions;
  if (listSize) {
    const given = args[listSize.argument];
    const items = Array.isArray(given) ? given : given == null ? [] : [given];
    if (items.length > listSize.maxItems) throw new ListTooLong(listSize.argument, listSize.maxItems);
    return 1 + childComplexity * items.length;
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

/** What a list that declares no size is priced at (none should: test/api/schema.unit.test.ts). */
const UNDECLARED_LIST_SIZE = 100;

/** Whether a document asks for the schema (`__schema` or `__type`: valid only at the root of a query). */
export function introspects(document: DocumentNode): boolean {
  let found = false;
  visit(document, {
    Field(node) {
      if (INTROSPECTION_FIELDS.has(node.name.value)) found = true;
    },
  });
  return found;
}
