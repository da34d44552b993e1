-- Photos verified before the images function existed have no variants: they go through it once. Their posts
-- stay published, and their URLs are null until then (rather than the original, with its metadata).
UPDATE "media" SET "status" = 'PROCESSING' WHERE "status" = 'READY' AND "variants" IS NULL;
