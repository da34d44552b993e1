// Secret settings from AWS Secrets Manager and SSM Parameter Store, read at function init. Those are cloud APIs
// that cannot run here: a small HTTP server stands in for both, speaking their JSON protocols, and the real
// AWS SDK clients are pointed at it (AWS_ENDPOINT_URL_*). Everything else is real.
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { loadSecrets } from "../../src/platform/secrets.ts";

const RDS_PASSWORD = "p@ss:w/rd%?#";
const secrets: Record<string, unknown> = {
  "shutter/app": { JWT_ISSUER: "from-secrets-manager", LOG_LEVEL: "warn" },
  "shutter/db": { username: "postgres", password: RDS_PASSWORD, host: "db.internal", port: 5432, dbname: "shutter" },
};
const parameters = Array.from({ length: 12 }, (_, i) => ({
  Name: `/shutter/prod/SETTING_${i}`,
  Type: "SecureString",
  Value: `value-${i}`,
}));
const calls: { target: string; body: Record<string, unknown> }[] = [];

const read = async (request: IncomingMessage) => {
  let text = "";
  for await (const chunk of request) text += chunk;
  return JSON.parse(text || "{}");
};

const server = createServer(async (request, response) => {
  const target = String(request.headers["x-amz-target"]);
  const body = await read(request);
  calls.push({ target, body });
  const reply = (status: number, payload: unknown) => {
    response.writeHead(status, { "content-type": "application/x-amz-json-1.1" });
    response.end(JSON.stringify(payload));
  };
  if (target === "secretsmanager.GetSecretValue") {
    const secret = secrets[body.SecretId];
    if (!secret) return reply(400, { __type: "ResourceNotFoundException", message: "not found" });
    return reply(200, { Name: body.SecretId, SecretString: JSON.stringify(secret) });
  }
  if (target === "AmazonSSM.GetParametersByPath") {
    // Pages of five, as SSM pages (at most ten) do.
    const start = Number(body.NextToken ?? 0);
    const page = parameters.filter((p) => p.Name.startsWith(body.Path)).slice(start, start + 5);
    return reply(200, {
      Parameters: body.WithDecryption ? page : [],
      ...(start + 5 < parameters.length ? { NextToken: String(start + 5) } : {}),
    });
  }
  reply(400, { __type: "UnknownOperationException" });
});

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_SECRETS_MANAGER: endpoint,
    AWS_ENDPOINT_URL_SSM: endpoint,
    AWS_REGION: "eu-west-1",
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
  });
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

describe("loadSecrets", () => {
  test("settings from a Secrets Manager secret and every page of an SSM path; the environment wins", async () => {
    const env: Record<string, string | undefined> = {
      SHUTTER_SECRET_ID: "shutter/app",
      SHUTTER_SSM_PATH: "/shutter/prod",
      LOG_LEVEL: "debug",
    };
    await loadSecrets(env);
    expect(env.JWT_ISSUER).toBe("from-secrets-manager");
    expect(env.LOG_LEVEL).toBe("debug");
    for (let i = 0; i < 12; i++) expect(env[`SETTING_${i}`]).toBe(`value-${i}`);
    expect(calls.filter((c) => c.target === "AmazonSSM.GetParametersByPath")).toHaveLength(3);
    expect(calls.find((c) => c.target === "AmazonSSM.GetParametersByPath")?.body).toMatchObject({
      Path: "/shutter/prod",
      WithDecryption: true,
      Recursive: true,
    });
  });

  test("an RDS credentials secret becomes DATABASE_URL, through the proxy's endpoint, over verified TLS", async () => {
    const env: Record<string, string | undefined> = {
      DATABASE_SECRET_ID: "shutter/db",
      DATABASE_HOST: "shutter.proxy-abc.eu-west-1.rds.amazonaws.com",
    };
    await loadSecrets(env);
    const url = env.DATABASE_URL as string;
    expect(url).toMatch(
      /^postgresql:\/\/postgres:.+@shutter\.proxy-abc\.eu-west-1\.rds\.amazonaws\.com:5432\/shutter\?/,
    );
    // The driver reads back exactly the password that was stored, special characters included.
    const { parse } = await import("pg-connection-string");
    expect(parse(url)).toMatchObject({ user: "postgres", password: RDS_PASSWORD, database: "shutter" });
    expect(new URL(url).searchParams.get("sslmode")).toBe("verify-full");
  });

  test("read replicas' endpoints become DATABASE_REPLICA_URLS with the same credentials", async () => {
    const env: Record<string, string | undefined> = {
      DATABASE_SECRET_ID: "shutter/db",
      DATABASE_HOST: "shutter.proxy-abc.eu-west-1.rds.amazonaws.com",
      DATABASE_REPLICA_HOSTS: "reader-1.abc.eu-west-1.rds.amazonaws.com, reader-2.abc.eu-west-1.rds.amazonaws.com",
    };
    await loadSecrets(env);
    const { parse } = await import("pg-connection-string");
    const replicas = (env.DATABASE_REPLICA_URLS as string).split(",").map((url) => parse(url));
    expect(replicas).toMatchObject([
      {
        host: "reader-1.abc.eu-west-1.rds.amazonaws.com",
        user: "postgres",
        password: RDS_PASSWORD,
        database: "shutter",
      },
      {
        host: "reader-2.abc.eu-west-1.rds.amazonaws.com",
        user: "postgres",
        password: RDS_PASSWORD,
        database: "shutter",
      },
    ]);
    expect(new URL(env.DATABASE_URL as string).hostname).toBe("shutter.proxy-abc.eu-west-1.rds.amazonaws.com");
  });

  test("a missing secret fails the start with the service's error", async () => {
    await expect(loadSecrets({ SHUTTER_SECRET_ID: "shutter/missing" })).rejects.toMatchObject({
      name: "ResourceNotFoundException",
    });
  });

  test("nothing is fetched when no secret is configured", async () => {
    const before = calls.length;
    const env: Record<string, string | undefined> = { DATABASE_URL: "postgresql://x@y/z" };
    await loadSecrets(env);
    expect(calls.length).toBe(before);
    expect(env).toEqual({ DATABASE_URL: "postgresql://x@y/z" });
  });
});
