// One emulated Lambda instance (a child process of scripts/gateway.ts): loads the bundled handler once (the
// init phase), then serves one invocation at a time, like the Lambda runtime, over IPC.
import { pathToFileURL } from "node:url";

type Message =
  | { type: "init"; module: string; handler: string }
  | { type: "invoke"; id: string; event: unknown; deadline: number };

let handler: ((event: unknown, context: unknown) => Promise<unknown>) | undefined;
const send = (message: Record<string, unknown>) => process.send?.(message);

process.on("message", async (message: Message) => {
  if (message.type === "init") {
    const started = performance.now();
    try {
      const module = await import(pathToFileURL(message.module).href);
      handler = module[message.handler];
      if (typeof handler !== "function") throw new Error(`${message.module} exports no function ${message.handler}`);
      send({ type: "ready", initMs: performance.now() - started });
    } catch (error) {
      send({ type: "init-error", message: String((error as Error)?.stack ?? error) });
    }
    return;
  }
  const started = performance.now();
  try {
    const context = {
      awsRequestId: message.id,
      functionName: "shutter-graphql",
      getRemainingTimeInMillis: () => message.deadline - Date.now(),
    };
    const result = await (handler as NonNullable<typeof handler>)(message.event, context);
    send({
      type: "result",
      id: message.id,
      result,
      durationMs: performance.now() - started,
      rss: process.memoryUsage().rss,
    });
  } catch (error) {
    send({
      type: "error",
      id: message.id,
      message: String((error as Error)?.stack ?? error),
      durationMs: performance.now() - started,
      rss: process.memoryUsage().rss,
    });
  }
});
