// Deletes photos nothing uses (abandoned uploads after UPLOAD_ORPHAN_AGE_MINUTES, verified photos in no post
// or profile after UPLOAD_UNUSED_RETENTION_HOURS), objects and records; and expired rate-limit counters (kept in
// PostgreSQL when there is no Redis).
// Exported for a scheduler (an EventBridge schedule on AWS); `npm run cleanup` runs it locally. Safe to run
// concurrently and repeatedly.
import { deleteExpiredLimits } from "../src/domain/rate-limit.ts";
import { logger } from "../src/platform/logger.ts";
import { createRequestScope, requestScope } from "../src/platform/request-scope.ts";
import { deleteOrphanedUploads } from "../src/services/uploads.ts";

export async function handler(event?: {
  olderThanMinutes?: number;
  unusedOlderThanHours?: number;
}): Promise<{ deleted: number }> {
  return requestScope.run(createRequestScope(`cleanup-${Date.now()}`), async () => {
    const deleted = await deleteOrphanedUploads(event);
    const expiredLimits = await deleteExpiredLimits();
    logger().info({ deleted, expiredLimits }, "cleanup: unused photos and expired rate limits deleted");
    return { deleted };
  });
}
