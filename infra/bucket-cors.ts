// The photo bucket's CORS rule: what a browser needs to upload a photo straight to object storage with the
// presigned PUT that `createUpload` returns (the signed Content-Type and X-Amz-Tagging headers; the browser
// sets Content-Length itself). Photos are shown with <img>, which needs no CORS. One definition for the AWS
// stack, `npm run dev`'s embedded S3 and the tests' buckets (test/photos/upload.browser.test.ts proves a page on
// another origin can upload with exactly this).

/** The CORS rule, in the S3 API's shape (PutBucketCors); an empty list of origins means any origin. */
export function photoBucketCorsRule(origins: string[]) {
  return {
    AllowedMethods: ["PUT"],
    AllowedOrigins: origins.length ? origins : ["*"],
    AllowedHeaders: ["content-type", "x-amz-tagging"],
    MaxAgeSeconds: 3600,
  };
}
