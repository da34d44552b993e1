// One emulated Lambda instance (a child process of scripts/gateway.ts): loads the bundled handler once (the
// init phase), then serves one invocation at a time, like the Lambda runtime, over IPC. As Lambda's Node.js runtime
// does, it gives the function the `awslambda` global, and invokes a handler marked by `streamifyResponse` with a
// response stream whose bytes go to the gateway as they are written (InvokeWithResponseStream).
import { Writable } from "node:stream";
import { finished } from "node:stream/promises";
import { pathToFileURL } from "node:url";

type Message =
  | { type: "init"; module: string; handler: string }
  | { type: "invoke"; id: string; event: unknown; deadline: number }
  | { type: "abort"; id: string };

/** The response streams of streaming invocations in flight, by request id (the client may go away). */
const streams = new Map<string, ResponseStream>();

type Handler = ((event: unknown, ...rest: unknown[]) => Promise<unknown>) & { [HANDLER_STREAMING]?: string };

/** What `awslambda.streamifyResponse` marks a handler with (the runtime interface client's symbol). */
const HANDLER_STREAMING = Symbol.for("aws.lambda.runtime.handler.streaming");

/** A response stream as the runtime hands it to a streaming handler: a Writable with a content type. */
type ResponseStream = Writable & {
  setContentType(type: string): void;
  _onBeforeFirstWrite?: (write: (chunk: string | Uint8Array) => void) => void;
};

// The runtime interface client's `awslambda` (src/UserFunction.js, src/HttpResponseStream.js): the same behaviour,
// so the bundle meets here what it meets on Lambda.
Object.assign(globalThis, {
  awslambda: {
    streamifyResponse: (handler: Handler) => Object.assign(handler, { [HANDLER_STREAMING]: "response" }),
    HttpResponseStream: {
      from(stream: ResponseStream, prelude: Record<string, unknown>) {
        stream.setContentType("application/vnd.awslambda.http-integration-response");
        stream._onBeforeFirstWrite = (write) => {
          write(JSON.stringify(prelude));
          write(new Uint8Array(8));
        };
        return stream;
      },
    },
  },
});

let handler: Handler | undefined;
const send = (message: Record<string, unknown>) => process.send?.(message);

/** The stream a streaming invocation writes to: each chunk goes to the gateway at once. */
function responseStream(id: string): ResponseStream {
  let contentType = "application/octet-stream";
  let started = false;
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      send({ type: "chunk", id, data: chunk.toString("base64") });
      callback();
    },
  }) as ResponseStream;
  stream.setContentType = (type) => {
    if (started) throw new Error("Cannot set content-type, too late.");
    contentType = type;
  };
  const write = stream.write.bind(stream) as (chunk: string | Uint8Array) => boolean;
  stream.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    if (!started) {
      started = true;
      send({ type: "stream-start", id, contentType });
      stream._onBeforeFirstWrite?.((first) => write(first));
    }
    return (write as (...args: unknown[]) => boolean)(chunk, ...rest);
  }) as ResponseStream["write"];
  return stream;
}

process.on("message", async (message: Message) => {
  if (message.type === "abort") {
    streams.get(message.id)?.destroy(new Error("the client closed the connection"));
    return;
  }
  if (message.type === "init") {
    const started = performance.now();
    try {
      const module = await import(pathToFileURL(message.module).href);
      handler = module[message.handler];
      if (typeof handler !== "function") throw new Error(`${message.module} exports no function ${message.handler}`);
      send({
        type: "ready",
        initMs: performance.now() - started,
        streaming: handler[HANDLER_STREAMING] === "response",
      });
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
    const run = handler as Handler;
    let result: unknown;
    if (run[HANDLER_STREAMING] === "response") {
      const stream = responseStream(message.id);
      streams.set(message.id, stream);
      try {
        await run(message.event, stream, context);
        // The runtime ends the stream when the handler's promise settles, if the handler did not.
        if (!stream.writableEnded && !stream.destroyed) stream.end();
        if (!stream.destroyed) await finished(stream);
      } finally {
        streams.delete(message.id);
      }
    } else result = await run(message.event, context);
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
