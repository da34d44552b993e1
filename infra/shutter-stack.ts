// Shutter on AWS: the GraphQL Lambda behind an HTTP API, a private bucket for photos, PostgreSQL and Redis
// (created here, or existing ones), secrets from Secrets Manager or SSM, the orphan cleanup on a schedule, and
// migrations run on every deploy that changes them, before the new code takes traffic.
import * as cdk from "aws-cdk-lib";
import * as rest from "aws-cdk-lib/aws-apigateway";
import * as apigw from "aws-cdk-lib/aws-apigatewayv2";
import { HttpJwtAuthorizer } from "aws-cdk-lib/aws-apigatewayv2-authorizers";
import { HttpLambdaIntegration } from "aws-cdk-lib/aws-apigatewayv2-integrations";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as elasticache from "aws-cdk-lib/aws-elasticache";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import * as logs from "aws-cdk-lib/aws-logs";
import * as rds from "aws-cdk-lib/aws-rds";
import * as s3 from "aws-cdk-lib/aws-s3";
import * as s3n from "aws-cdk-lib/aws-s3-notifications";
import * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import * as sqs from "aws-cdk-lib/aws-sqs";
import * as triggers from "aws-cdk-lib/triggers";
import type { Construct } from "constructs";
import { photoBucketCorsRule } from "./bucket-cors.ts";

export interface ShutterStackProps extends cdk.StackProps {
  /** The bundle (`npm run build` → dist/functions). */
  readonly functionsDir: string;
  /**
   * `create`: RDS PostgreSQL behind RDS Proxy, in a new VPC. `existing`: DATABASE_URL comes from the settings
   * secret (`secretId` or `ssmPath`), e.g. Aurora, Neon or a database in `vpc`.
   */
  readonly database:
    | {
        readonly kind: "create";
        readonly instanceType?: string;
        /** Read replicas of the instance: reads go to them at the floor their writes set (docs/scaling.md). */
        readonly readReplicas?: number;
      }
    | { readonly kind: "existing" };
  /**
   * `create`: ElastiCache over TLS — `single` (default: one primary), `cluster` (cluster mode: `shards` × (1 +
   * `replicasPerShard`) nodes, failover automatic) or `serverless` (ElastiCache Serverless, cluster mode only).
   * `existing`: its URL (and whether it is a cluster). `none`: in-process only.
   */
  readonly redis:
    | {
        readonly kind: "create";
        readonly nodeType?: string;
        readonly mode?: "single" | "cluster" | "serverless";
        readonly shards?: number;
        readonly replicasPerShard?: number;
      }
    | { readonly kind: "existing"; readonly url: string; readonly cluster?: boolean }
    | { readonly kind: "none" };
  /** A Secrets Manager secret (name or ARN) whose JSON holds settings: at least JWT_PRIVATE_KEY. */
  readonly secretId?: string;
  /** An SSM Parameter Store path whose SecureString parameters are settings (…/JWT_PRIVATE_KEY). */
  readonly ssmPath?: string;
  /**
   * Put a JWT authorizer on /graphql (anonymous traffic then uses /graphql/public). The issuer is an external
   * OIDC provider (also set OIDC_ISSUER/OIDC_AUDIENCE in `settings`) or Shutter itself, when JWT_ISSUER is its
   * https URL (it serves /.well-known/openid-configuration).
   */
  readonly jwtAuthorizer?: { readonly issuer: string; readonly audience: string[] };
  /** Browser origins allowed to call the API and to PUT uploads. Default: none (apps are not affected). */
  readonly corsOrigins?: string[];
  /** Existing network for an `existing` database or Redis that is only reachable inside it. */
  readonly vpc?: { readonly vpcId: string; readonly availabilityZones: string[]; readonly privateSubnetIds: string[] };
  /** More settings for the function (see docs/configuration.md). */
  readonly settings?: Record<string, string>;
  /** Requests per second and burst the API accepts before answering 429. */
  readonly throttle?: { readonly rateLimit: number; readonly burstLimit: number };
  /** Caps concurrent instances (and so database connections: instances × DATABASE_POOL_MAX). */
  readonly reservedConcurrency?: number;
  /**
   * A second endpoint that streams (default on): a REST API whose Lambda proxy integration streams the response
   * (`response-streaming-invocations`) to the GraphQL function's streaming handler — a deferred query's parts as
   * each is ready, and subscriptions (with Redis) for up to `streamingTimeout`.
   */
  readonly streaming?: boolean;
  /** How long a streamed response (a subscription) may last: the function's timeout, at most 15 minutes. */
  readonly streamingTimeout?: cdk.Duration;
}

/** Days after which uploads never verified (still tagged pending) are expired by the bucket itself. */
export const ABANDONED_UPLOAD_DAYS = 2;

export class ShutterStack extends cdk.Stack {
  readonly api: apigw.HttpApi;
  readonly graphqlFunction: lambda.Function;
  readonly bucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: ShutterStackProps) {
    super(scope, id, props);
    if (!props.secretId && !props.ssmPath) {
      throw new Error(
        "Shutter needs its secret settings (at least JWT_PRIVATE_KEY): give secretId (Secrets Manager) or ssmPath (SSM).",
      );
    }

    const creates = props.database.kind === "create" || props.redis.kind === "create";
    const vpc = props.vpc
      ? ec2.Vpc.fromVpcAttributes(this, "Vpc", {
          vpcId: props.vpc.vpcId,
          availabilityZones: props.vpc.availabilityZones,
          privateSubnetIds: props.vpc.privateSubnetIds,
        })
      : creates
        ? new ec2.Vpc(this, "Vpc", {
            maxAzs: 2,
            natGateways: 1,
            subnetConfiguration: [
              { name: "public", subnetType: ec2.SubnetType.PUBLIC },
              { name: "functions", subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
              { name: "data", subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
            ],
            // Photos are read and written by the function over a gateway endpoint, not the NAT.
            gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
          })
        : undefined;
    const functionSecurityGroup = vpc
      ? new ec2.SecurityGroup(this, "FunctionSecurityGroup", { vpc, description: "Shutter functions" })
      : undefined;
    const inVpc: Partial<lambda.FunctionProps> = vpc
      ? {
          vpc,
          vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
          securityGroups: [functionSecurityGroup as ec2.SecurityGroup],
        }
      : {};

    // Photos: private, reached only through presigned URLs. Uploads arrive tagged pending (the tag is part of
    // the signed PUT) and lose the tag when verified: what stays pending is expired here, even if the cleanup
    // schedule never ran.
    const cors = photoBucketCorsRule(props.corsOrigins ?? []);
    this.bucket = new s3.Bucket(this, "Photos", {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      removalPolicy: cdk.RemovalPolicy.RETAIN,
      cors: [
        {
          allowedMethods: cors.AllowedMethods as s3.HttpMethods[],
          allowedOrigins: cors.AllowedOrigins,
          allowedHeaders: cors.AllowedHeaders,
          maxAge: cors.MaxAgeSeconds,
        },
      ],
      lifecycleRules: [
        {
          id: "abandoned-uploads",
          tagFilters: { "shutter-upload": "pending" },
          expiration: cdk.Duration.days(ABANDONED_UPLOAD_DAYS),
        },
        { id: "incomplete-multipart", abortIncompleteMultipartUploadAfter: cdk.Duration.days(1) },
      ],
    });

    const environment: Record<string, string> = {
      NODE_ENV: "production",
      S3_BUCKET: this.bucket.bucketName,
      S3_REGION: this.region,
      // One invocation at a time per instance: two connections let a request's batched loaders run in parallel.
      DATABASE_POOL_MAX: "2",
      ...(props.secretId ? { SHUTTER_SECRET_ID: props.secretId } : {}),
      ...(props.ssmPath ? { SHUTTER_SSM_PATH: props.ssmPath } : {}),
      ...(props.corsOrigins?.length ? { CORS_ORIGINS: props.corsOrigins.join(",") } : {}),
      ...(props.jwtAuthorizer ? { AUTH_TRUST_GATEWAY: "true" } : {}),
    };

    let databaseSecret: secretsmanager.ISecret | undefined;
    let proxy: rds.DatabaseProxy | undefined;
    if (props.database.kind === "create" && vpc) {
      const instanceType = new ec2.InstanceType(props.database.instanceType ?? "t4g.micro");
      const readReplicas = props.database.readReplicas ?? 0;
      const database = new rds.DatabaseInstance(this, "Database", {
        engine: rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_17 }),
        instanceType,
        vpc,
        vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
        credentials: rds.Credentials.fromGeneratedSecret("shutter"),
        databaseName: "shutter",
        storageEncrypted: true,
        allocatedStorage: 20,
        maxAllocatedStorage: 200,
        backupRetention: cdk.Duration.days(7),
        deletionProtection: true,
        removalPolicy: cdk.RemovalPolicy.SNAPSHOT,
      });
      databaseSecret = database.secret as secretsmanager.ISecret;
      // Transaction-mode pooling in front of the database: Shutter sends no named prepared statements and keeps
      // no session state, so connections are never pinned (see docs/deploy.md).
      proxy = database.addProxy("Proxy", {
        secrets: [databaseSecret],
        vpc,
        requireTLS: true,
        vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      });
      database.connections.allowDefaultPortFrom(proxy);
      proxy.connections.allowFrom(functionSecurityGroup as ec2.SecurityGroup, ec2.Port.tcp(5432));
      environment.DATABASE_SECRET_ID = databaseSecret.secretArn;
      environment.DATABASE_HOST = proxy.endpoint;
      // Read replicas, reached directly (RDS Proxy fronts the primary only; for Aurora, its reader endpoint):
      // the function builds their URLs from the same credentials (platform/secrets.ts).
      const replicas = Array.from(
        { length: readReplicas },
        (_, i) =>
          new rds.DatabaseInstanceReadReplica(this, `DatabaseReplica${i + 1}`, {
            sourceDatabaseInstance: database,
            instanceType,
            vpc,
            vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
            storageEncrypted: true,
            removalPolicy: cdk.RemovalPolicy.DESTROY,
          }),
      );
      for (const replica of replicas) {
        replica.connections.allowFrom(functionSecurityGroup as ec2.SecurityGroup, ec2.Port.tcp(5432));
      }
      if (replicas.length) {
        environment.DATABASE_REPLICA_HOSTS = replicas.map((replica) => replica.dbInstanceEndpointAddress).join(",");
      }
    }

    if (props.redis.kind === "create" && vpc) {
      const redisSecurityGroup = new ec2.SecurityGroup(this, "RedisSecurityGroup", {
        vpc,
        description: "Shutter Redis",
      });
      redisSecurityGroup.addIngressRule(functionSecurityGroup as ec2.SecurityGroup, ec2.Port.tcp(6379));
      const subnets = new elasticache.CfnSubnetGroup(this, "RedisSubnets", {
        description: "Shutter Redis",
        subnetIds: vpc.selectSubnets({ subnetType: ec2.SubnetType.PRIVATE_ISOLATED }).subnetIds,
      });
      const mode = props.redis.mode ?? "single";
      if (mode === "serverless") {
        // Cluster mode only, TLS only; scales shards by itself. Its replication is managed: WAIT is not offered.
        const cache = new elasticache.CfnServerlessCache(this, "Redis", {
          serverlessCacheName: `${this.stackName.toLowerCase().slice(0, 30)}-cache`,
          engine: "valkey",
          majorEngineVersion: "8",
          subnetIds: vpc.selectSubnets({ subnetType: ec2.SubnetType.PRIVATE_ISOLATED }).subnetIds,
          securityGroupIds: [redisSecurityGroup.securityGroupId],
        });
        environment.REDIS_URL = `rediss://${cache.attrEndpointAddress}:${cache.attrEndpointPort}`;
        environment.REDIS_CLUSTER = "true";
      } else if (mode === "cluster") {
        const redis = new elasticache.CfnReplicationGroup(this, "Redis", {
          replicationGroupDescription: "Shutter: hot entities, persisted queries, rate limits (cluster mode)",
          engine: "redis",
          engineVersion: "7.1",
          cacheNodeType: props.redis.nodeType ?? "cache.t4g.small",
          clusterMode: "enabled",
          cacheParameterGroupName: "default.redis7.cluster.on",
          numNodeGroups: props.redis.shards ?? 3,
          replicasPerNodeGroup: props.redis.replicasPerShard ?? 1,
          automaticFailoverEnabled: true,
          multiAzEnabled: (props.redis.replicasPerShard ?? 1) > 0,
          transitEncryptionEnabled: true,
          atRestEncryptionEnabled: true,
          cacheSubnetGroupName: subnets.ref,
          securityGroupIds: [redisSecurityGroup.securityGroupId],
        });
        environment.REDIS_URL = `rediss://${redis.attrConfigurationEndPointAddress}:${redis.attrConfigurationEndPointPort}`;
        environment.REDIS_CLUSTER = "true";
        // A write answers once a replica holds its invalidations: a failover cannot bring stale entries back.
        if ((props.redis.replicasPerShard ?? 1) > 0) environment.REDIS_WAIT_REPLICAS = "1";
      } else {
        const redis = new elasticache.CfnReplicationGroup(this, "Redis", {
          replicationGroupDescription: "Shutter: hot entities, persisted queries, rate limits",
          engine: "redis",
          engineVersion: "7.1",
          cacheNodeType: props.redis.nodeType ?? "cache.t4g.micro",
          numCacheClusters: 1,
          clusterMode: "disabled",
          transitEncryptionEnabled: true,
          atRestEncryptionEnabled: true,
          cacheSubnetGroupName: subnets.ref,
          securityGroupIds: [redisSecurityGroup.securityGroupId],
        });
        environment.REDIS_URL = `rediss://${redis.attrPrimaryEndPointAddress}:${redis.attrPrimaryEndPointPort}`;
      }
    } else if (props.redis.kind === "existing") {
      environment.REDIS_URL = props.redis.url;
      if (props.redis.cluster) environment.REDIS_CLUSTER = "true";
    }
    Object.assign(environment, props.settings);

    const code = lambda.Code.fromAsset(props.functionsDir, { exclude: ["*.map"] });
    const fn = (id: string, handler: string, extra: Partial<lambda.FunctionProps> = {}) => {
      const f = new lambda.Function(this, id, {
        runtime: lambda.Runtime.NODEJS_24_X,
        architecture: lambda.Architecture.ARM_64,
        code,
        handler,
        // Measured (`npm run bench:memory -- --lambda 512,1024`: an instance started with the flags Lambda gives
        // Node for the size, the screens one request at a time): 309 MB used at most at 512 MB, 381 at 1024 (V8
        // keeps more garbage when allowed). 1024 leaves room for full local caches, and Lambda gives CPU in
        // proportion to memory: a cold start is CPU-bound (~250 ms of one core), ~0.6 vCPU here against ~0.3 at 512.
        memorySize: 1024,
        timeout: cdk.Duration.seconds(10),
        environment,
        logGroup: new logs.LogGroup(this, `${id}Logs`, {
          retention: logs.RetentionDays.ONE_MONTH,
          removalPolicy: cdk.RemovalPolicy.DESTROY,
        }),
        ...inVpc,
        ...extra,
      });
      this.grantSettings(f, props, databaseSecret);
      return f;
    };

    this.graphqlFunction = fn("GraphQL", "graphql.handler", {
      description: "Shutter GraphQL API",
      ...(props.reservedConcurrency ? { reservedConcurrentExecutions: props.reservedConcurrency } : {}),
    });
    this.bucket.grantReadWrite(this.graphqlFunction);

    const cleanup = fn("Cleanup", "cleanup.handler", {
      description: "Deletes uploads that were never used",
      timeout: cdk.Duration.minutes(5),
    });
    this.bucket.grantReadWrite(cleanup);
    new events.Rule(this, "CleanupSchedule", {
      schedule: events.Schedule.rate(cdk.Duration.minutes(15)),
      targets: [new targets.LambdaFunction(cleanup)],
    });

    // Events: the GraphQL function announces committed outbox events on a queue (EVENTS_QUEUE_URL, instead of
    // the Redis stream); the events function takes them in batches, reporting failures per message, and a
    // message received five times moves to the dead-letter queue. Every minute a schedule sweeps the outbox
    // for events never announced and sends the notification deliveries that are due.
    const eventsDeadLetters = new sqs.Queue(this, "EventsDeadLetters", {
      retentionPeriod: cdk.Duration.days(14),
      enforceSSL: true,
    });
    const eventsQueue = new sqs.Queue(this, "EventsQueue", {
      visibilityTimeout: cdk.Duration.seconds(60),
      deadLetterQueue: { queue: eventsDeadLetters, maxReceiveCount: 5 },
      enforceSSL: true,
    });
    const eventsFunction = fn("Events", "events.handler", {
      description: "Turns outbox events into notifications",
      timeout: cdk.Duration.seconds(30),
    });
    eventsFunction.addEventSource(
      new SqsEventSource(eventsQueue, {
        batchSize: 25,
        maxBatchingWindow: cdk.Duration.seconds(1),
        reportBatchItemFailures: true,
      }),
    );
    new events.Rule(this, "EventsSweep", {
      schedule: events.Schedule.rate(cdk.Duration.minutes(1)),
      targets: [new targets.LambdaFunction(eventsFunction)],
    });
    eventsQueue.grantSendMessages(this.graphqlFunction);
    this.graphqlFunction.addEnvironment("EVENTS_QUEUE_URL", eventsQueue.queueUrl);

    // Images: a verified original arriving under o/ notifies the images queue; the images function (more memory:
    // libvips uses it, and Lambda gives CPU in proportion) makes the variants, one photo per message, reporting
    // the ones to retry. A schedule sweeps for photos whose notification was lost or whose invocation died.
    // Originals stay private; a CDN in front of the bucket must serve v/ (the variants) only.
    const imagesDeadLetters = new sqs.Queue(this, "ImagesDeadLetters", {
      retentionPeriod: cdk.Duration.days(14),
      enforceSSL: true,
    });
    const imagesQueue = new sqs.Queue(this, "ImagesQueue", {
      // At least six times the function's timeout, as Lambda recommends for SQS sources.
      visibilityTimeout: cdk.Duration.minutes(6),
      deadLetterQueue: { queue: imagesDeadLetters, maxReceiveCount: 3 },
      enforceSSL: true,
    });
    this.bucket.addEventNotification(s3.EventType.OBJECT_CREATED, new s3n.SqsDestination(imagesQueue), {
      prefix: "o/",
    });
    const imagesFunction = fn("Images", "images.handler", {
      description: "Makes the variants of verified photos",
      memorySize: 2048,
      timeout: cdk.Duration.minutes(1),
      // Bounded memory per invocation (one photo at a time) and bounded parallel load on the database.
      reservedConcurrentExecutions: 10,
    });
    imagesFunction.addEventSource(new SqsEventSource(imagesQueue, { batchSize: 1, reportBatchItemFailures: true }));
    this.bucket.grantReadWrite(imagesFunction);
    new events.Rule(this, "ImagesSweep", {
      schedule: events.Schedule.rate(cdk.Duration.minutes(5)),
      targets: [new targets.LambdaFunction(imagesFunction)],
    });

    const migrate = fn("Migrate", "migrate.handler", {
      description: "Applies prisma/migrations (runs on deploy)",
      timeout: cdk.Duration.minutes(5),
    });
    // Runs on the first deploy and whenever the bundle (and so the migrations) changes, after the database and
    // before the GraphQL function is updated; a failing migration fails the deploy.
    new triggers.Trigger(this, "MigrateOnDeploy", {
      handler: migrate,
      executeOnHandlerChange: true,
      executeAfter: proxy ? [proxy] : [],
      executeBefore: [this.graphqlFunction],
      timeout: cdk.Duration.minutes(5),
    });

    const integration = new HttpLambdaIntegration("GraphQLIntegration", this.graphqlFunction);
    this.api = new apigw.HttpApi(this, "Api", {
      description: "Shutter GraphQL API",
      createDefaultStage: false,
    });
    new apigw.HttpStage(this, "DefaultStage", {
      httpApi: this.api,
      stageName: "$default",
      autoDeploy: true,
      throttle: props.throttle ?? { rateLimit: 500, burstLimit: 1000 },
    });
    const authorizer = props.jwtAuthorizer
      ? new HttpJwtAuthorizer("Jwt", props.jwtAuthorizer.issuer, { jwtAudience: props.jwtAuthorizer.audience })
      : undefined;
    // GraphQL over POST and GET (persisted queries, cacheable); OPTIONS is CORS, answered by Shutter.
    this.api.addRoutes({
      path: "/graphql",
      methods: [apigw.HttpMethod.POST, apigw.HttpMethod.GET],
      integration,
      authorizer,
    });
    const open = (path: string, methods: apigw.HttpMethod[]) => this.api.addRoutes({ path, methods, integration });
    open("/graphql", [apigw.HttpMethod.OPTIONS]);
    if (authorizer) open("/graphql/public", [apigw.HttpMethod.POST, apigw.HttpMethod.GET, apigw.HttpMethod.OPTIONS]);
    open("/.well-known/{file}", [apigw.HttpMethod.GET]);
    open("/health", [apigw.HttpMethod.GET]);
    // The operations webhook authenticates each request by its signature, not by a JWT.
    open("/webhooks/ops/{source}", [apigw.HttpMethod.POST]);

    if (props.streaming ?? true) {
      // The same bundle's streaming handler, as a function of its own: its timeout is how long a stream may last
      // (a subscription ends cleanly before it, telling its client to subscribe again), which the buffered
      // function's 10 s must not become. REST APIs have no JWT authorizer: this function verifies tokens itself.
      const streamingFunction = fn("GraphQLStreaming", "graphql.streamingHandler", {
        description: "Shutter GraphQL API, streaming (@defer, @stream, subscriptions)",
        timeout: props.streamingTimeout ?? cdk.Duration.minutes(15),
        environment: { ...environment, AUTH_TRUST_GATEWAY: "false" },
        ...(props.reservedConcurrency ? { reservedConcurrentExecutions: props.reservedConcurrency } : {}),
      });
      this.bucket.grantReadWrite(streamingFunction);
      eventsQueue.grantSendMessages(streamingFunction);
      streamingFunction.addEnvironment("EVENTS_QUEUE_URL", eventsQueue.queueUrl);
      const throttle = props.throttle ?? { rateLimit: 500, burstLimit: 1000 };
      const streamingApi = new rest.RestApi(this, "StreamingApi", {
        description: "Shutter GraphQL API, streaming",
        // Regional: a streamed response may idle 5 minutes there (30 s on edge-optimized endpoints).
        endpointConfiguration: { types: [rest.EndpointType.REGIONAL] },
        deployOptions: {
          stageName: "stream",
          throttlingRateLimit: throttle.rateLimit,
          throttlingBurstLimit: throttle.burstLimit,
        },
      });
      const streamed = new rest.LambdaIntegration(streamingFunction, {
        responseTransferMode: rest.ResponseTransferMode.STREAM,
        // With streaming, the integration may run up to 15 minutes.
        timeout: props.streamingTimeout ?? cdk.Duration.minutes(15),
      });
      const graphql = streamingApi.root.addResource("graphql");
      for (const resource of [graphql, graphql.addResource("public")]) {
        for (const method of ["GET", "POST", "OPTIONS"]) resource.addMethod(method, streamed);
      }
      new cdk.CfnOutput(this, "GraphQLStreamingUrl", { value: streamingApi.urlForPath("/graphql") });
    }

    new cdk.CfnOutput(this, "GraphQLUrl", { value: `${this.api.apiEndpoint}/graphql` });
    new cdk.CfnOutput(this, "BucketName", { value: this.bucket.bucketName });
    if (proxy) new cdk.CfnOutput(this, "DatabaseProxyEndpoint", { value: proxy.endpoint });
  }

  /** Lets a function read the settings it is pointed at. */
  private grantSettings(f: lambda.Function, props: ShutterStackProps, databaseSecret?: secretsmanager.ISecret) {
    if (props.secretId) {
      const secret = props.secretId.startsWith("arn:")
        ? secretsmanager.Secret.fromSecretCompleteArn(this, `${f.node.id}SettingsSecret`, props.secretId)
        : secretsmanager.Secret.fromSecretNameV2(this, `${f.node.id}SettingsSecret`, props.secretId);
      secret.grantRead(f);
    }
    if (props.ssmPath) {
      const path = props.ssmPath.replace(/\/$/, "");
      f.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ["ssm:GetParametersByPath"],
          resources: [this.formatArn({ service: "ssm", resource: "parameter", resourceName: path.replace(/^\//, "") })],
        }),
      );
      // SecureString parameters encrypted with the account's default SSM key.
      f.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ["kms:Decrypt"],
          resources: ["*"],
          conditions: { StringEquals: { "kms:ViaService": `ssm.${this.region}.amazonaws.com` } },
        }),
      );
    }
    databaseSecret?.grantRead(f);
  }
}
