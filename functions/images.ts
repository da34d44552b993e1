// The images function: makes the variants of verified photos (src/services/images.ts), off the request path.
// - SQS batches of S3 event notifications (on AWS the bucket notifies the images queue when a verified original
//   arrives under o/): one photo per message; a photo to retry (storage or database trouble) is reported as a
//   failed message, so only it comes back, and after the queue's maxReceiveCount it lands in the dead-letter queue.
// - `{ "mediaId": "…" }`: one photo (a manual retry).
// - Anything else (the EventBridge schedule): every photo still waiting whose claim is not held, until the
//   invocation's time is nearly up. It picks up what a lost notification or a crashed invocation left behind.
// Long-running processes do the same work in the events runner (src/workers/runner.ts).
import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { logger } from "../src/platform/logger.ts";
import { createRequestScope, requestScope } from "../src/platform/request-scope.ts";
import { loadSecrets } from "../src/platform/secrets.ts";
import { flushTelemetry, initTelemetry } from "../src/platform/telemetry.ts";
import { processPhoto, processWaitingPhotos } from "../src/services/images.ts";

await loadSecrets();
await initTelemetry();

/** o/<owner>/<photo id>.<ext>: the verified originals the bucket notifies about. */
const ORIGINAL_KEY = /^o\/[0-9a-f-]{36}\/([0-9a-f-]{36})\.[a-z]+$/;

/** The photo ids an S3 event notification (a queue message's body) is about; none for S3's test event. */
export function mediaIdsOf(body: string): string[] | null {
  try {
    const event = JSON.parse(body) as { Records?: { s3?: { object?: { key?: string } } }[]; Event?: string };
    if (event.Event === "s3:TestEvent") return [];
    if (!Array.isArray(event.Records)) return null;
    const ids: string[] = [];
    for (const record of event.Records) {
      // Keys arrive URL-encoded, spaces as "+".
      const key = decodeURIComponent((record.s3?.object?.key ?? "").replace(/\+/g, " "));
      const match = ORIGINAL_KEY.exec(key);
      if (!match) return null;
      ids.push(match[1] as string);
    }
    return ids;
  } catch {
    return null;
  }
}

export async function handler(
  event: Partial<SQSEvent> & { mediaId?: string },
  context?: Partial<Context>,
): Promise<SQSBatchResponse | { outcome: string } | Record<string, number>> {
  try {
    return await handle(event, context);
  } finally {
    await flushTelemetry(); // before the instance may freeze
  }
}

async function handle(
  event: Partial<SQSEvent> & { mediaId?: string },
  context?: Partial<Context>,
): Promise<SQSBatchResponse | { outcome: string } | Record<string, number>> {
  return requestScope.run(createRequestScope(context?.awsRequestId ?? `images-${Date.now()}`), async () => {
    if (Array.isArray(event.Records)) {
      const batchItemFailures: { itemIdentifier: string }[] = [];
      for (const record of event.Records) {
        const ids = mediaIdsOf(record.body);
        if (ids === null) {
          logger().warn({ messageId: record.messageId }, "images: not an S3 notification of an original; dropped");
          continue;
        }
        let retry = false;
        for (const id of ids) if ((await processPhoto(id)) === "retry") retry = true;
        if (retry) batchItemFailures.push({ itemIdentifier: record.messageId });
      }
      return { batchItemFailures };
    }
    if (typeof event.mediaId === "string") return { outcome: await processPhoto(event.mediaId) };
    // Leave time to finish the photo in hand before the invocation's timeout.
    const budget = (context?.getRemainingTimeInMillis?.() ?? 60_000) - 20_000;
    return processWaitingPhotos(AbortSignal.timeout(Math.max(1_000, budget)));
  });
}
