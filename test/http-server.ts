// Serves a function instance over real HTTP (a Node server on a free port), for tests with real clients.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createServerAdapter } from "@whatwg-node/server";
import type { Instance } from "./instances.ts";

export async function serve(instance: Instance): Promise<{ url: string; close(): Promise<void> }> {
  const { fetch } = await instance.module();
  const server: Server = createServer(createServerAdapter((request: Request) => fetch(request)));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
