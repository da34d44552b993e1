// Deletes abandoned uploads (PENDING photos older than UPLOAD_ORPHAN_AGE_MINUTES), objects and records.
// Exported for a scheduler (an EventBridge schedule on AWS); `npm run cleanup` runs it locally. Safe to run
// concurrently and repeatedly.
import { createRequestScope, logger, requestScope } from "../src/logger.ts";
import { deleteOrphanedUploads } from "../src/uploads.ts";

export async function handler(event?: { olderThanMinutes?: number }): Promise<{ deleted: number }> {
  return requestScope.run(createRequestScope(`cleanup-${Date.now()}`), async () => {
    const deleted = await deleteOrphanedUploads({ olderThanMinutes: event?.olderThanMinutes });
    logger().info({ deleted }, "cleanup: abandoned uploads deleted");
    return { deleted };
  });
}
