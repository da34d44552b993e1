// An unexpected failure (here: the database is unreachable) must reach the client as a generic error with a
// request id, and the real error must be in the structured log under the same id. No stack, no SQL, no host.
import { afterAll, beforeAll, expect, test } from "vitest";

const lines: string[] = [];
const write = process.stdout.write.bind(process.stdout);

beforeAll(() => {
  // Nothing listens on port 1: every query fails to connect.
  process.env.DATABASE_URL = "postgresql://postgres@127.0.0.1:1/nowhere";
  process.env.LOG_LEVEL = "error";
  process.stdout.write = ((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  }) as typeof process.stdout.write;
});
afterAll(() => {
  process.stdout.write = write;
});

test("unexpected errors are masked, carry the request id, and are logged with it", async () => {
  const { fetch } = await import("../functions/graphql.ts");
  const response = await fetch(
    new Request("http://shutter.test/graphql", {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "trace-me-123" },
      body: JSON.stringify({ query: "{ explore(first: 1) { edges { node { id } } } }" }),
    }),
  );
  const body = await response.json();
  expect(response.headers.get("x-request-id")).toBe("trace-me-123");
  expect(body.errors).toHaveLength(1);
  expect(body.errors[0].message).toBe(
    "Something went wrong on our side. Try again; if it keeps happening, tell us the request id.",
  );
  expect(body.errors[0].extensions).toEqual({ code: "INTERNAL_SERVER_ERROR", requestId: "trace-me-123" });
  const text = JSON.stringify(body);
  for (const leak of ["127.0.0.1", "ECONNREFUSED", "stack", "prisma", "SELECT"]) expect(text).not.toContain(leak);

  const logged = lines
    .flatMap((l) => l.split("\n"))
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  const entry = logged.find((l) => l.msg === "unexpected error");
  expect(entry).toMatchObject({ level: 50, requestId: "trace-me-123", service: "shutter" });
  expect(JSON.stringify(entry.err)).toMatch(/ECONNREFUSED|connect/i);
});
