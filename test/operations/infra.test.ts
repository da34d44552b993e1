// The AWS stack (infra/): what `cdk synth` produces, asserted on the CloudFormation template, for a stack
// that creates its database and Redis and for one given existing endpoints and a JWT authorizer.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as cdk from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, test } from "vitest";
import { ShutterStack, type ShutterStackProps } from "../../infra/shutter-stack.ts";

const root = new URL("../..", import.meta.url).pathname;
// The template depends on the bundle only through its asset hash: a stand-in folder will do.
const functionsDir = mkdtempSync(join(tmpdir(), "shutter-functions-"));
writeFileSync(join(functionsDir, "graphql.mjs"), "export const handler = () => {};\n");

const synth = (props: Partial<ShutterStackProps>) =>
  Template.fromStack(
    new ShutterStack(new cdk.App(), "Shutter", {
      functionsDir,
      database: { kind: "create" },
      redis: { kind: "create" },
      secretId: "shutter/prod",
      ...props,
    }),
  );

const graphqlFunction = (template: Template) => {
  const functions = template.findResources("AWS::Lambda::Function", { Properties: { Handler: "graphql.handler" } });
  expect(Object.keys(functions)).toHaveLength(1);
  return Object.values(functions)[0] as { Properties: Record<string, any> };
};

describe("a stack that creates its database and Redis", () => {
  let template: Template;
  beforeAll(() => {
    template = synth({});
  });

  test("the GraphQL function: Node 24 on arm64, in the VPC, pointed at the proxy, Redis over TLS and its secrets", () => {
    const fn = graphqlFunction(template);
    expect(fn.Properties).toMatchObject({ Runtime: "nodejs24.x", Architectures: ["arm64"], MemorySize: 1024 });
    expect(fn.Properties.VpcConfig.SubnetIds.length).toBeGreaterThan(0);
    const env = fn.Properties.Environment.Variables;
    expect(env).toMatchObject({
      NODE_ENV: "production",
      SHUTTER_SECRET_ID: "shutter/prod",
      DATABASE_POOL_MAX: "2",
      DATABASE_HOST: { "Fn::GetAtt": [expect.stringMatching(/^DatabaseProxy/), "Endpoint"] },
      DATABASE_SECRET_ID: { Ref: expect.stringMatching(/^DatabaseSecretAttachment/) },
    });
    expect(JSON.stringify(env.REDIS_URL)).toContain("rediss://");
    expect(env.AUTH_TRUST_GATEWAY).toBeUndefined();
  });

  test("PostgreSQL behind RDS Proxy with TLS; Redis with cluster mode off and encryption", () => {
    template.hasResourceProperties("AWS::RDS::DBInstance", { Engine: "postgres", StorageEncrypted: true });
    template.hasResourceProperties("AWS::RDS::DBProxy", { EngineFamily: "POSTGRESQL", RequireTLS: true });
    template.hasResourceProperties("AWS::ElastiCache::ReplicationGroup", {
      Engine: "redis",
      ClusterMode: "disabled",
      TransitEncryptionEnabled: true,
      AtRestEncryptionEnabled: true,
    });
    // Opened: the proxy to the function (5432), the database to the proxy (its port), Redis to the function.
    const ingress = Object.values(template.findResources("AWS::EC2::SecurityGroupIngress")).map((r: any) =>
      typeof r.Properties.FromPort === "number" ? r.Properties.FromPort : r.Properties.FromPort["Fn::GetAtt"][1],
    );
    expect(ingress.map(String).sort()).toEqual(["5432", "6379", "Endpoint.Port"]);
  });

  test("the HTTP API routes GraphQL POST and GET, CORS preflight, the JWKS and the webhook, throttled", () => {
    const routes = Object.values(template.findResources("AWS::ApiGatewayV2::Route")).map(
      (r: any) => `${r.Properties.RouteKey} ${r.Properties.AuthorizationType ?? "NONE"}`,
    );
    expect(routes.sort()).toEqual([
      "GET /.well-known/{file} NONE",
      "GET /graphql NONE",
      "GET /health NONE",
      "OPTIONS /graphql NONE",
      "POST /graphql NONE",
      "POST /webhooks/ops/{source} NONE",
    ]);
    template.hasResourceProperties("AWS::ApiGatewayV2::Stage", {
      StageName: "$default",
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingBurstLimit: 1000, ThrottlingRateLimit: 500 },
    });
  });

  test("a private bucket with CORS for uploads and a lifecycle rule for abandoned ones", () => {
    template.hasResourceProperties("AWS::S3::Bucket", {
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      // Exactly what a browser needs for the presigned upload (test/photos/upload.browser.test.ts uploads with it).
      CorsConfiguration: {
        CorsRules: [
          {
            AllowedMethods: ["PUT"],
            AllowedOrigins: ["*"],
            AllowedHeaders: ["content-type", "x-amz-tagging"],
            MaxAge: 3600,
          },
        ],
      },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({
            Id: "abandoned-uploads",
            Status: "Enabled",
            ExpirationInDays: 2,
            TagFilters: [{ Key: "shutter-upload", Value: "pending" }],
          }),
          Match.objectLike({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } }),
        ]),
      },
    });
    // TLS only.
    template.hasResourceProperties("AWS::S3::BucketPolicy", {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
        ]),
      },
    });
  });

  test("cleanup every 15 minutes; migrations run on deploy before the GraphQL function changes", () => {
    const cleanup = template.findResources("AWS::Lambda::Function", { Properties: { Handler: "cleanup.handler" } });
    const [cleanupId] = Object.keys(cleanup);
    template.hasResourceProperties("AWS::Events::Rule", {
      ScheduleExpression: "rate(15 minutes)",
      Targets: [Match.objectLike({ Arn: { "Fn::GetAtt": [cleanupId, "Arn"] } })],
    });
    const migrate = template.findResources("AWS::Lambda::Function", { Properties: { Handler: "migrate.handler" } });
    expect(Object.keys(migrate)).toHaveLength(1);
    const trigger = Object.values(template.findResources("Custom::Trigger"))[0] as any;
    // The trigger invokes the migrate function's current version (a new one per bundle change).
    expect(JSON.stringify(trigger.Properties.HandlerArn)).toMatch(/"Ref":"MigrateCurrentVersion/);
    expect(trigger.DependsOn).toEqual(expect.arrayContaining([expect.stringMatching(/^DatabaseProxy/)]));
    const graphqlId = Object.keys(
      template.findResources("AWS::Lambda::Function", { Properties: { Handler: "graphql.handler" } }),
    )[0] as string;
    const graphql = template.toJSON().Resources[graphqlId];
    expect(graphql.DependsOn).toEqual(expect.arrayContaining([expect.stringMatching(/^MigrateOnDeploy/)]));
  });

  test("events: announced on a queue with a dead-letter queue, consumed in batches, swept every minute", () => {
    const [eventsId] = Object.keys(
      template.findResources("AWS::Lambda::Function", { Properties: { Handler: "events.handler" } }),
    );
    const queues = Object.keys(template.findResources("AWS::SQS::Queue"));
    const queueId = queues.find((id) => id.startsWith("EventsQueue"));
    const deadId = queues.find((id) => id.startsWith("EventsDeadLetters"));
    template.hasResourceProperties("AWS::SQS::Queue", {
      RedrivePolicy: { deadLetterTargetArn: { "Fn::GetAtt": [deadId, "Arn"] }, maxReceiveCount: 5 },
    });
    template.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      EventSourceArn: { "Fn::GetAtt": [queueId, "Arn"] },
      FunctionName: { Ref: eventsId },
      FunctionResponseTypes: ["ReportBatchItemFailures"],
    });
    template.hasResourceProperties("AWS::Events::Rule", {
      ScheduleExpression: "rate(1 minute)",
      Targets: [Match.objectLike({ Arn: { "Fn::GetAtt": [eventsId, "Arn"] } })],
    });
    expect(graphqlFunction(template).Properties.Environment.Variables.EVENTS_QUEUE_URL).toEqual({ Ref: queueId });
    template.hasResourceProperties("AWS::ApiGatewayV2::Route", { RouteKey: "POST /webhooks/ops/{source}" });
  });

  test("images: originals arriving under o/ notify a queue the images function consumes, one photo at a time", () => {
    const [imagesId] = Object.keys(
      template.findResources("AWS::Lambda::Function", { Properties: { Handler: "images.handler" } }),
    );
    const queues = Object.keys(template.findResources("AWS::SQS::Queue"));
    const queueId = queues.find((id) => id.startsWith("ImagesQueue"));
    const deadId = queues.find((id) => id.startsWith("ImagesDeadLetters"));
    template.hasResourceProperties("AWS::Lambda::Function", {
      Handler: "images.handler",
      MemorySize: 2048,
      Timeout: 60,
      ReservedConcurrentExecutions: 10,
      Architectures: ["arm64"],
    });
    template.hasResourceProperties("AWS::SQS::Queue", {
      VisibilityTimeout: 360,
      RedrivePolicy: { deadLetterTargetArn: { "Fn::GetAtt": [deadId, "Arn"] }, maxReceiveCount: 3 },
    });
    template.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      EventSourceArn: { "Fn::GetAtt": [queueId, "Arn"] },
      FunctionName: { Ref: imagesId },
      BatchSize: 1,
      FunctionResponseTypes: ["ReportBatchItemFailures"],
    });
    template.hasResourceProperties("Custom::S3BucketNotifications", {
      NotificationConfiguration: {
        QueueConfigurations: [
          Match.objectLike({
            Events: ["s3:ObjectCreated:*"],
            Filter: { Key: { FilterRules: [{ Name: "prefix", Value: "o/" }] } },
            QueueArn: { "Fn::GetAtt": [queueId, "Arn"] },
          }),
        ],
      },
    });
    template.hasResourceProperties("AWS::Events::Rule", {
      ScheduleExpression: "rate(5 minutes)",
      Targets: [Match.objectLike({ Arn: { "Fn::GetAtt": [imagesId, "Arn"] } })],
    });
  });

  test("the streaming endpoint: a REST API streaming the GraphQL function's streaming handler, for up to 15 minutes", () => {
    const functions = template.findResources("AWS::Lambda::Function", {
      Properties: { Handler: "graphql.streamingHandler" },
    });
    const [streaming] = Object.values(functions) as { Properties: Record<string, any> }[];
    expect(Object.keys(functions)).toHaveLength(1);
    expect(streaming?.Properties).toMatchObject({ Runtime: "nodejs24.x", Timeout: 900, MemorySize: 1024 });
    // No JWT authorizer on a REST API: the function verifies tokens itself.
    expect(streaming?.Properties.Environment.Variables.AUTH_TRUST_GATEWAY).toBe("false");
    const methods = Object.values(template.findResources("AWS::ApiGateway::Method")) as { Properties: any }[];
    expect(methods.map((m) => m.Properties.HttpMethod).sort()).toEqual([
      "GET",
      "GET",
      "OPTIONS",
      "OPTIONS",
      "POST",
      "POST",
    ]);
    for (const { Properties } of methods) {
      expect(Properties.Integration).toMatchObject({
        Type: "AWS_PROXY",
        ResponseTransferMode: "STREAM",
        TimeoutInMillis: 900_000,
      });
      expect(JSON.stringify(Properties.Integration.Uri)).toContain("/response-streaming-invocations");
    }
    template.hasResourceProperties("AWS::ApiGateway::RestApi", { EndpointConfiguration: { Types: ["REGIONAL"] } });
    template.hasResourceProperties("AWS::ApiGateway::Stage", {
      StageName: "stream",
      MethodSettings: Match.arrayWith([Match.objectLike({ ThrottlingBurstLimit: 1000, ThrottlingRateLimit: 500 })]),
    });
    template.hasOutput("GraphQLStreamingUrl", {});
    expect(Object.keys(synth({ streaming: false }).findResources("AWS::ApiGateway::RestApi"))).toEqual([]);
  });

  test("the functions may read their secrets and the bucket, and nothing broader", () => {
    const policies = Object.values(template.findResources("AWS::IAM::Policy")).map((p: any) =>
      JSON.stringify(p.Properties.PolicyDocument),
    );
    const graphqlPolicy = policies.find((p) => p.includes("s3:PutObject")) as string;
    expect(graphqlPolicy).toContain("secretsmanager:GetSecretValue");
    expect(graphqlPolicy).toContain(":secret:shutter/prod-??????");
    expect(graphqlPolicy).not.toMatch(/"Action":"\*"|"s3:\*"/);
  });
});

describe("a stack on existing endpoints, with a JWT authorizer", () => {
  let template: Template;
  beforeAll(() => {
    template = synth({
      database: { kind: "existing" },
      redis: { kind: "existing", url: "rediss://cache.example.com:6379" },
      secretId: undefined,
      ssmPath: "/shutter/prod",
      jwtAuthorizer: { issuer: "https://auth.example.com/", audience: ["shutter-app"] },
      corsOrigins: ["https://shutter.example.com"],
    });
  });

  test("creates no network, database or cache, and reads its settings from SSM", () => {
    for (const type of [
      "AWS::EC2::VPC",
      "AWS::RDS::DBInstance",
      "AWS::RDS::DBProxy",
      "AWS::ElastiCache::ReplicationGroup",
    ]) {
      template.resourceCountIs(type, 0);
    }
    const fn = graphqlFunction(template);
    expect(fn.Properties.VpcConfig).toBeUndefined();
    expect(fn.Properties.Environment.Variables).toMatchObject({
      REDIS_URL: "rediss://cache.example.com:6379",
      SHUTTER_SSM_PATH: "/shutter/prod",
      AUTH_TRUST_GATEWAY: "true",
      CORS_ORIGINS: "https://shutter.example.com",
    });
    const policies = JSON.stringify(template.findResources("AWS::IAM::Policy"));
    expect(policies).toContain("ssm:GetParametersByPath");
    expect(policies).toContain("parameter/shutter/prod");
  });

  test("/graphql needs a valid token at the gateway; /graphql/public is for anonymous screens", () => {
    template.hasResourceProperties("AWS::ApiGatewayV2::Authorizer", {
      AuthorizerType: "JWT",
      JwtConfiguration: { Issuer: "https://auth.example.com/", Audience: ["shutter-app"] },
      IdentitySource: ["$request.header.Authorization"],
    });
    const routes = Object.values(template.findResources("AWS::ApiGatewayV2::Route")).map(
      (r: any) => `${r.Properties.RouteKey} ${r.Properties.AuthorizationType ?? "NONE"}`,
    );
    expect(routes).toEqual(
      expect.arrayContaining([
        "POST /graphql JWT",
        "GET /graphql JWT",
        "OPTIONS /graphql NONE",
        "POST /graphql/public NONE",
        "GET /graphql/public NONE",
      ]),
    );
    template.hasResourceProperties("AWS::S3::Bucket", {
      CorsConfiguration: { CorsRules: [Match.objectLike({ AllowedOrigins: ["https://shutter.example.com"] })] },
    });
  });
});

describe("scaled out: a Redis cluster (or ElastiCache Serverless) and read replicas", () => {
  test("cluster mode: shards with a replica each, failover automatic, writes wait for a replica", () => {
    const template = synth({
      redis: { kind: "create", mode: "cluster", shards: 3, replicasPerShard: 1 },
      database: { kind: "create", readReplicas: 2 },
    });
    template.hasResourceProperties("AWS::ElastiCache::ReplicationGroup", {
      ClusterMode: "enabled",
      NumNodeGroups: 3,
      ReplicasPerNodeGroup: 1,
      AutomaticFailoverEnabled: true,
      TransitEncryptionEnabled: true,
    });
    const environment = graphqlFunction(template).Properties.Environment.Variables;
    expect(environment).toMatchObject({ REDIS_CLUSTER: "true", REDIS_WAIT_REPLICAS: "1" });
    expect(JSON.stringify(environment.REDIS_URL)).toContain("ConfigurationEndPoint.Address");
    // Two replicas of the instance, reached directly by the function, their endpoints in DATABASE_REPLICA_HOSTS.
    const replicas = template.findResources("AWS::RDS::DBInstance", {
      Properties: { SourceDBInstanceIdentifier: Match.anyValue() },
    });
    expect(Object.keys(replicas)).toHaveLength(2);
    expect(JSON.stringify(environment.DATABASE_REPLICA_HOSTS)).toContain("Endpoint.Address");
  });

  test("ElastiCache Serverless: cluster mode over TLS", () => {
    const template = synth({ redis: { kind: "create", mode: "serverless" } });
    template.hasResourceProperties("AWS::ElastiCache::ServerlessCache", { Engine: "valkey" });
    expect(template.findResources("AWS::ElastiCache::ReplicationGroup")).toEqual({});
    const environment = graphqlFunction(template).Properties.Environment.Variables;
    expect(environment.REDIS_CLUSTER).toBe("true");
    expect(environment.REDIS_WAIT_REPLICAS).toBeUndefined();
    expect(environment.DATABASE_REPLICA_HOSTS).toBeUndefined();
  });
});

test("a stack without secret settings is refused, saying what is missing", () => {
  expect(() => synth({ secretId: undefined })).toThrow(/JWT_PRIVATE_KEY.*secretId.*ssmPath/);
});

test("`cdk synth` runs offline through the CDK CLI and writes the template", () => {
  const out = mkdtempSync(join(tmpdir(), "shutter-cdk-out-"));
  const run = spawnSync(
    `${root}node_modules/.bin/cdk`,
    ["synth", "--no-notices", "--quiet", "-o", out, "-c", `functionsDir=${functionsDir}`, "-c", "redis=none"],
    {
      cwd: `${root}infra`,
      encoding: "utf8",
      env: { ...process.env, PATH: `${root}node_modules/.bin:${process.env.PATH}`, CDK_DISABLE_VERSION_CHECK: "1" },
      timeout: 120_000,
    },
  );
  expect(run.status, run.stderr).toBe(0);
  const template = JSON.parse(readFileSync(join(out, "Shutter.template.json"), "utf8"));
  const types = Object.values(template.Resources).map((r: any) => r.Type);
  expect(types).toEqual(
    expect.arrayContaining(["AWS::Lambda::Function", "AWS::ApiGatewayV2::Api", "AWS::RDS::DBProxy"]),
  );
  expect(types).not.toContain("AWS::ElastiCache::ReplicationGroup");
}, 120_000);
