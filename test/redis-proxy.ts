// A TCP proxy in front of the real Redis, to make it unreachable, slow or failing on demand (tests only).
import { createServer, Socket as NetSocket, type Server, type Socket } from "node:net";

export type ProxyMode = "forward" | "slow" | "errors" | "down";

export interface RedisProxy {
  url: string;
  mode: ProxyMode;
  setMode(mode: ProxyMode): void;
  close(): Promise<void>;
}

export async function startRedisProxy(target: string, delayMs = 400): Promise<RedisProxy> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  const proxy: RedisProxy = {
    url: "",
    mode: "forward",
    setMode(mode) {
      this.mode = mode;
      // Going down drops every open connection, as a crashed or restarted Redis would.
      if (mode === "down") for (const socket of sockets) socket.destroy();
    },
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer((client) => {
    if (proxy.mode === "down") return client.destroy();
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => {});
    if (proxy.mode === "errors") {
      // Every command gets an error reply (a Redis out of memory, a misconfigured proxy).
      client.on("data", () => client.write("-ERR injected failure\r\n"));
      return;
    }
    const upstream = new NetSocket();
    sockets.add(upstream);
    upstream.on("close", () => sockets.delete(upstream));
    upstream.on("error", () => client.destroy());
    upstream.connect(Number(port), hostname);
    client.on("data", (chunk) => {
      if (proxy.mode === "errors") client.write("-ERR injected failure\r\n");
      else if (proxy.mode === "slow") setTimeout(() => upstream.write(chunk), delayMs);
      else upstream.write(chunk);
    });
    upstream.on("data", (chunk) => client.write(chunk));
    client.on("close", () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address() as { port: number };
  proxy.url = `redis://127.0.0.1:${address.port}`;
  return proxy;
}
