// A TCP proxy in front of a real server (Redis, PostgreSQL), to make it unreachable, slow or failing on demand,
// or to close every connection from the server's side (tests only).
import { createServer, Socket as NetSocket, type Server, type Socket } from "node:net";

export type ProxyMode = "forward" | "slow" | "errors" | "down";

export interface TcpProxy {
  /** The target's URL with the proxy's host and port. */
  url: string;
  mode: ProxyMode;
  setMode(mode: ProxyMode): void;
  /** Closes every open connection, as the server would (idle timeout, restart); returns how many clients had one. */
  dropAll(): number;
  close(): Promise<void>;
}

export async function startProxy(target: string, delayMs = 400): Promise<TcpProxy> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  const clients = new Set<Socket>();
  const proxy: TcpProxy = {
    url: "",
    mode: "forward",
    setMode(mode) {
      this.mode = mode;
      // Going down drops every open connection, as a crashed or restarted server would.
      if (mode === "down") this.dropAll();
    },
    dropAll() {
      const open = clients.size;
      for (const socket of sockets) socket.destroy();
      return open;
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
    clients.add(client);
    client.on("close", () => {
      sockets.delete(client);
      clients.delete(client);
    });
    client.on("error", () => {});
    if (proxy.mode === "errors") {
      // Every command gets an (Redis protocol) error reply: a Redis out of memory, a misconfigured proxy.
      client.on("data", () => client.write("-ERR injected failure\r\n"));
      return;
    }
    const upstream = new NetSocket();
    sockets.add(upstream);
    // The server closing its side (an idle keep-alive connection timing out) closes the client's: a proxy that
    // kept it open would take the client's next request into a dead connection.
    upstream.on("close", () => {
      sockets.delete(upstream);
      client.destroy();
    });
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
  const url = new URL(target);
  url.hostname = "127.0.0.1";
  url.port = String(address.port);
  proxy.url = url.toString();
  return proxy;
}
