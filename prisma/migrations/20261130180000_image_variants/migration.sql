-- Photos get variants made off the request path (the images function): verified uploads are PROCESSING until
-- then, or FAILED. A post is published once all its photos are READY.

-- AlterEnum
ALTER TYPE "MediaStatus" ADD VALUE 'PROCESSING';
ALTER TYPE "MediaStatus" ADD VALUE 'FAILED';

-- AlterTable
ALTER TABLE "media" ADD COLUMN     "color" TEXT,
ADD COLUMN     "failure" TEXT,
ADD COLUMN     "placeholder" TEXT,
ADD COLUMN     "processing_attempts" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "processing_started_at" TIMESTAMPTZ(3),
ADD COLUMN     "variants" JSONB;

-- AlterTable
ALTER TABLE "posts" ADD COLUMN     "published" BOOLEAN NOT NULL DEFAULT true;

-- DropIndex
DROP INDEX "posts_author_id_created_at_id_idx";

-- DropIndex
DROP INDEX "posts_created_at_id_idx";

-- CreateIndex
CREATE INDEX "posts_author_id_published_created_at_id_idx" ON "posts"("author_id", "published", "created_at" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "posts_published_created_at_id_idx" ON "posts"("published", "created_at" DESC, "id" DESC);
