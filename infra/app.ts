// The CDK app: `npm run infra:synth` / `npm run infra:deploy` (see docs/deploy.md). Choices come from
// CDK context (infra/cdk.json, or `-c key=value` on the command line):
//   stackName      the stack (default Shutter)
//   functionsDir   the bundle (default ../dist/functions: run `npm run build` first)
//   database       create | existing (existing: DATABASE_URL in the settings secret)
//   databaseReplicas  read replicas of a created database (default 0)
//   redis          create | existing | none;  redisUrl (and redisCluster=true for a cluster) for existing
//   redisMode      single | cluster | serverless, for create (default single); redisShards, redisReplicasPerShard
//   secretId       Secrets Manager secret with settings (JSON);  ssmPath  SSM path with settings
//   jwtIssuer, jwtAudience   put a JWT authorizer on /graphql
//   corsOrigins    comma-separated browser origins
//   vpcId, availabilityZones, privateSubnetIds   an existing network (comma-separated lists)
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import * as cdk from "aws-cdk-lib";
import { ShutterStack, type ShutterStackProps } from "./shutter-stack.ts";

const app = new cdk.App();
const context = (key: string): string | undefined => {
  const value = app.node.tryGetContext(key);
  return value === undefined || value === "" ? undefined : String(value);
};
const list = (key: string) =>
  context(key)
    ?.split(",")
    .map((v) => v.trim())
    .filter(Boolean);

const functionsDir = resolve(context("functionsDir") ?? new URL("../dist/functions", import.meta.url).pathname);
if (!existsSync(`${functionsDir}/graphql.mjs`)) {
  throw new Error(`No bundle in ${functionsDir}: run \`npm run build\` first (or pass -c functionsDir=...).`);
}
const redisKind = context("redis") ?? "create";
const redisMode = context("redisMode") ?? "single";
if (!["single", "cluster", "serverless"].includes(redisMode)) {
  throw new Error("redisMode must be single, cluster or serverless");
}
const count = (key: string) => (context(key) === undefined ? undefined : Number(context(key)));
const redis: ShutterStackProps["redis"] =
  redisKind === "existing"
    ? { kind: "existing", url: context("redisUrl") ?? "", cluster: context("redisCluster") === "true" }
    : redisKind === "none"
      ? { kind: "none" }
      : {
          kind: "create",
          mode: redisMode as "single" | "cluster" | "serverless",
          shards: count("redisShards"),
          replicasPerShard: count("redisReplicasPerShard"),
        };
if (redis.kind === "existing" && !redis.url) throw new Error("redis=existing needs -c redisUrl=rediss://...");
const jwtIssuer = context("jwtIssuer");
const vpcId = context("vpcId");

new ShutterStack(app, context("stackName") ?? "Shutter", {
  functionsDir,
  database:
    context("database") === "existing"
      ? { kind: "existing" }
      : { kind: "create", readReplicas: count("databaseReplicas") },
  redis,
  secretId: context("secretId"),
  ssmPath: context("ssmPath"),
  jwtAuthorizer: jwtIssuer ? { issuer: jwtIssuer, audience: list("jwtAudience") ?? ["shutter-api"] } : undefined,
  corsOrigins: list("corsOrigins"),
  vpc: vpcId
    ? { vpcId, availabilityZones: list("availabilityZones") ?? [], privateSubnetIds: list("privateSubnetIds") ?? [] }
    : undefined,
  // Account and region from the AWS profile the CLI uses; the template itself stays environment-agnostic.
  env: process.env.CDK_DEFAULT_REGION
    ? { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION }
    : undefined,
});
