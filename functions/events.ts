// The events handler: outbox events → notifications (src/workers/notifications.ts), exactly once whatever triggers it.
// - `handler` for AWS Lambda: an SQS batch (the managed queue the stream maps to on AWS; each message body is
//   {"event": "<outbox id>"}; failures are reported per message, so only they are retried and, after the
//   queue's maxReceiveCount, land in its dead-letter queue), or a schedule (EventBridge), which sweeps the
//   outbox for events older than a few seconds and sends due notification deliveries.
// - `runEvents` (src/workers/runner.ts) for long-running processes and local development (`npm run events`).
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import { deliverDue } from "../src/events/delivery.ts";
import { loadSecrets } from "../src/platform/secrets.ts";
import { flushTelemetry, initTelemetry } from "../src/platform/telemetry.ts";
import { processEvents } from "../src/workers/notifications.ts";
import { prune, sweep } from "../src/workers/runner.ts";

await loadSecrets();
await initTelemetry();

export { runEvents } from "../src/workers/runner.ts";

export async function handler(event: Partial<SQSEvent>): Promise<SQSBatchResponse | Record<string, number>> {
  try {
    return await handle(event);
  } finally {
    await flushTelemetry(); // before the instance may freeze
  }
}

async function handle(event: Partial<SQSEvent>): Promise<SQSBatchResponse | Record<string, number>> {
  if (Array.isArray(event.Records)) {
    const byEvent = new Map<bigint, string[]>();
    const batchItemFailures: { itemIdentifier: string }[] = [];
    for (const record of event.Records) {
      const id = /^\d{1,19}$/.exec(eventIdOf(record.body));
      if (id) byEvent.set(BigInt(id[0]), [...(byEvent.get(BigInt(id[0])) ?? []), record.messageId]);
      else batchItemFailures.push({ itemIdentifier: record.messageId }); // malformed: to the dead-letter queue
    }
    const failed = await processEvents([...byEvent.keys()]);
    for (const id of failed)
      for (const messageId of byEvent.get(id) ?? []) batchItemFailures.push({ itemIdentifier: messageId });
    return { batchItemFailures };
  }
  const swept = await sweep(10_000);
  const delivered = await deliverDue();
  await prune();
  return { ...swept, ...delivered };
}

function eventIdOf(body: string): string {
  try {
    return String((JSON.parse(body) as { event?: unknown }).event ?? "");
  } catch {
    return "";
  }
}
