// Apollo Client with its persisted-queries link, over a fetch that records every request on the wire.
import { createHash } from "node:crypto";
import { ApolloClient, HttpLink, InMemoryCache } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

export interface Wire {
  method: string;
  hasQuery: boolean;
  hash?: string;
  status: number;
  requestBytes: number;
}

/** An Apollo Client over a fetch that records every request on the wire. */
export function apollo(url: string, options: { useGET?: boolean; generateHash?: (q: string) => string } = {}) {
  const wire: Wire[] = [];
  const recordingFetch: typeof fetch = async (input, init) => {
    const target = new URL(String(input));
    const body = typeof init?.body === "string" ? init.body : "";
    const params = body ? JSON.parse(body) : Object.fromEntries(target.searchParams);
    const extensions = typeof params.extensions === "string" ? JSON.parse(params.extensions) : params.extensions;
    const response = await fetch(input, init);
    wire.push({
      method: init?.method ?? "GET",
      hasQuery: Boolean(params.query),
      hash: extensions?.persistedQuery?.sha256Hash,
      status: response.status,
      requestBytes: Buffer.byteLength(body) + Buffer.byteLength(target.search),
    });
    return response;
  };
  const persisted = new PersistedQueryLink({
    ...(options.generateHash
      ? { generateHash: (document) => options.generateHash!(JSON.stringify(document)) }
      : { sha256 }),
    useGETForHashedQueries: options.useGET ?? false,
  });
  const client = new ApolloClient({
    link: persisted.concat(new HttpLink({ uri: url, fetch: recordingFetch })),
    cache: new InMemoryCache(),
  });
  return { client, wire };
}
