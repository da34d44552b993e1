// Requests to the test file's function instance, through its real entry as the target under test serves it (the
// source's Fetch handler, or the bundle behind the API Gateway emulator or in its container entry: instances.ts).
import { meros } from "meros/browser";
import {
  assertChangesDeclared,
  BUNDLED,
  type Instance,
  operationBody,
  queryThrough,
  type RequestOptions,
  serveOverHttp,
  startInstance,
} from "./instances.ts";

export const ENDPOINT = "http://shutter.test/graphql";

/** A part of an incremental answer (@defer, @stream): the first has `data`, the later ones `incremental`. */
export type Part = { data?: any; errors?: any[]; incremental?: any[]; hasNext?: boolean; extensions?: any };

/** The parts of a multipart/mixed answer, in order, as a client's parser (meros, GraphiQL's) reads them. */
export async function multipartParts(response: Response): Promise<Part[]> {
  const parts = await meros<Part>(response);
  if (parts instanceof Response) throw new Error(`not multipart: ${parts.headers.get("content-type")}`);
  const read: Part[] = [];
  for await (const part of parts) {
    if (!part.json) throw new Error(`a part that is not JSON: ${part.body}`);
    read.push(part.body);
  }
  return read;
}

// On the source target, the function module as this file imports it: loaded now, before any test starts
// instances of its own (each resets the module registry).
const entry = BUNDLED ? undefined : await import("../../functions/graphql.ts");
let shared: Promise<Instance> | undefined;

/**
 * The test file's function instance: on the source target the function module as the file imports it; on a
 * bundled target one started for the file (and stopped after it by test/kit/setup.ts).
 */
export function target(): Promise<Instance> {
  shared ??= entry
    ? Promise.resolve({
        fetch: sourceFetch,
        query: queryThrough(sourceFetch),
        invoke: (event) => entry.handler(event as never),
        url: () => (served ??= serveOverHttp(entry.fetch).then((server) => server.url)),
        logs: [],
        close: async () => {},
      })
    : startInstance();
  return shared;
}

let served: Promise<string> | undefined;

const sourceFetch = (input: string | Request, init?: RequestOptions) =>
  (entry as NonNullable<typeof entry>).fetch(
    typeof input === "string" ? new Request(new URL(input, ENDPOINT), init) : input,
    {
      remoteAddress: init?.from,
    },
  );

/** Sends a request to the test file's function instance. */
export async function send(input: string | Request, init?: RequestOptions): Promise<Response> {
  return (await target()).fetch(input, init);
}

export interface GraphQLResponse<T = Record<string, any>> {
  status: number;
  headers: Headers;
  data: T | null | undefined;
  errors: { message: string; path?: string[]; extensions?: Record<string, any> }[] | undefined;
  extensions: Record<string, any> | undefined;
}

/** POSTs an operation to the function, as a web client would. */
export function gql<T = Record<string, any>>(
  query: string,
  variables: Record<string, unknown> = {},
  options: { token?: string; headers?: Record<string, string> } = {},
): Promise<GraphQLResponse<T>> {
  return post<T>(operationBody(query, variables), options);
}

/** POSTs a GraphQL request body (an operation's text, or a persisted document's id: test/kit/operations.ts). */
export async function post<T = Record<string, any>>(
  body: Record<string, unknown>,
  options: { token?: string | undefined; headers?: Record<string, string> } = {},
): Promise<GraphQLResponse<T>> {
  const response = await send(
    new Request(ENDPOINT, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/graphql-response+json",
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        ...options.headers,
      },
      body: JSON.stringify(body),
    }),
  );
  const answer = (await response.json()) as { data?: T; errors?: GraphQLResponse["errors"]; extensions?: any };
  assertChangesDeclared(answer);
  return {
    status: response.status,
    headers: response.headers,
    data: answer.data,
    errors: answer.errors,
    extensions: answer.extensions,
  };
}

/** Like `gql`, but fails the test on any top-level error and returns `data`. */
export async function ok<T = Record<string, any>>(
  query: string,
  variables: Record<string, unknown> = {},
  options: { token?: string } = {},
): Promise<T> {
  const result = await gql<T>(query, variables, options);
  if (result.errors?.length || !result.data) {
    throw new Error(`GraphQL errors: ${JSON.stringify(result.errors ?? result)}`);
  }
  return result.data;
}
