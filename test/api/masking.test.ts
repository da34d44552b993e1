// An unexpected failure (here: a database without Shutter's tables, a deploy gone wrong) must reach the client as a
// generic error with a request id, and the real error must be in the structured log under the same id. No stack,
// no SQL, no host. (An unreachable database is not unexpected: it is SERVICE_UNAVAILABLE, see outages.test.ts.)
import { expect, test } from "vitest";
import { emptyDatabase } from "../kit/databases.ts";
import { operationBody, startInstance } from "../kit/instances.ts";

test("unexpected errors are masked, carry the request id, and are logged with it", async () => {
  // A database that was never migrated: every query fails on a missing table.
  const database = await emptyDatabase();
  const instance = await startInstance({ DATABASE_URL: database.url, LOG_LEVEL: "error" });
  const response = await instance.fetch("/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", "x-request-id": "trace-me-123" },
    body: JSON.stringify(operationBody("{ explore(first: 1) { edges { node { id } } } }")),
  });
  const body = await response.json();
  expect(response.headers.get("x-request-id")).toBe("trace-me-123");
  expect(body.errors).toHaveLength(1);
  expect(body.errors[0].message).toBe(
    "Something went wrong on our side. Try again; if it keeps happening, tell us the request id.",
  );
  expect(body.errors[0].extensions).toEqual({ code: "INTERNAL_SERVER_ERROR", requestId: "trace-me-123" });
  const text = JSON.stringify(body);
  for (const leak of ["127.0.0.1", "does not exist", "posts", "stack", "prisma", "SELECT"]) {
    expect(text).not.toContain(leak);
  }

  const entry = await eventually(() => instance.logs.find((l) => l.msg === "unexpected error"));
  expect(entry).toMatchObject({ level: 50, requestId: "trace-me-123", service: "shutter" });
  expect(JSON.stringify(entry.err)).toMatch(/does not exist/i);
  await instance.close();
  await database.drop();
});

test("malformed parameters are a 400 BAD_REQUEST saying which, never an unexpected error", async () => {
  const instance = await startInstance({ LOG_LEVEL: "info" });
  const query = "{ explore(first: 1) { edges { node { id } } } }";
  const cases: [Record<string, unknown>, string][] = [
    [{ query, operationName: { $gt: "" } }, 'Expected "operationName" to be a string, but given object.'],
    [{ query, operationName: 7 }, 'Expected "operationName" to be a string, but given number.'],
    [{ query, operationName: ["Explore"] }, 'Expected "operationName" to be a string, but given array.'],
    [{ query: 5 }, 'Expected "query" to be a string, but given number.'],
    [{ query, variables: "{}" }, 'Expected "variables" to be an object, but given string.'],
    [{ query, variables: [1] }, 'Expected "variables" to be an object, but given array.'],
    [{ query, extensions: true }, 'Expected "extensions" to be an object, but given boolean.'],
    [{ documentId: { sha256: "x" } }, 'Expected "documentId" to be a string, but given object.'],
  ];
  for (const [body, message] of cases) {
    const response = await instance.fetch("/graphql", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    expect(
      [response.status, answer.errors?.[0]?.message, answer.errors?.[0]?.extensions?.code],
      JSON.stringify(body),
    ).toEqual([400, message, "BAD_REQUEST"]);
  }
  // Each was logged as the client's mistake, with no operation name taken from it.
  const lines = await eventually(() => {
    const found = instance.logs.filter((l) => l.msg === "request" && l.method === "POST");
    return found.length >= cases.length ? found : undefined;
  });
  expect(lines.map((l) => [l.status, l.operationName])).toEqual(cases.map(() => [400, undefined]));
  expect(instance.logs.filter((l) => l.level >= 50)).toEqual([]);
});

/** A log line of another process arrives a moment after the response. */
async function eventually<T>(find: () => T | undefined): Promise<T> {
  for (let waited = 0; waited < 3000; waited += 20) {
    const found = find();
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error("not logged within 3 s");
}
