import { logger } from "./logger.ts";

/**
 * Loads secret settings into the environment before the configuration is read, so that nothing secret has
 * to sit in the function's environment variables:
 * - SHUTTER_SECRET_ID: a Secrets Manager secret whose value is a JSON object of settings
 *   (e.g. {"JWT_PRIVATE_KEY": "...", "DATABASE_URL": "..."});
 * - SHUTTER_SSM_PATH: an SSM Parameter Store path whose (SecureString) parameters are settings, named by the
 *   last path segment (/shutter/prod/DATABASE_URL → DATABASE_URL);
 * - DATABASE_SECRET_ID: the database credentials secret RDS generates ({username, password, host, port, dbname}),
 *   turned into DATABASE_URL; DATABASE_HOST replaces its host (an RDS Proxy endpoint), over verified TLS; and,
 *   with DATABASE_REPLICA_HOSTS (read replicas' endpoints, comma-separated), into DATABASE_REPLICA_URLS alike.
 * Settings already in the environment win. The AWS SDK clients are loaded only when one of these is set.
 */
export async function loadSecrets(env: Record<string, string | undefined> = process.env): Promise<void> {
  const settings: Record<string, string> = {};
  if (env.SHUTTER_SECRET_ID) Object.assign(settings, await secretJson(env.SHUTTER_SECRET_ID));
  if (env.DATABASE_SECRET_ID && (!env.DATABASE_URL || (env.DATABASE_REPLICA_HOSTS && !env.DATABASE_REPLICA_URLS))) {
    const credentials = await secretJson(env.DATABASE_SECRET_ID);
    settings.DATABASE_URL = databaseUrl(credentials, env.DATABASE_HOST);
    if (env.DATABASE_REPLICA_HOSTS) {
      settings.DATABASE_REPLICA_URLS = env.DATABASE_REPLICA_HOSTS.split(",")
        .map((host) => host.trim())
        .filter(Boolean)
        .map((host) => databaseUrl(credentials, host))
        .join(",");
    }
  }
  if (env.SHUTTER_SSM_PATH) {
    const { SSMClient, GetParametersByPathCommand } = await import("@aws-sdk/client-ssm");
    const client = new SSMClient({});
    let NextToken: string | undefined;
    do {
      const page = await client.send(
        new GetParametersByPathCommand({
          Path: env.SHUTTER_SSM_PATH,
          WithDecryption: true,
          Recursive: true,
          NextToken,
        }),
      );
      for (const parameter of page.Parameters ?? []) {
        if (parameter.Name && parameter.Value !== undefined)
          settings[parameter.Name.split("/").pop() as string] = parameter.Value;
      }
      NextToken = page.NextToken;
    } while (NextToken);
  }
  const loaded = Object.keys(settings).filter((key) => env[key] === undefined);
  for (const key of loaded) env[key] = String(settings[key]);
  if (loaded.length) logger().info({ settings: loaded }, "secrets: settings loaded");
}

async function secretJson(secretId: string): Promise<Record<string, unknown>> {
  const { SecretsManagerClient, GetSecretValueCommand } = await import("@aws-sdk/client-secrets-manager");
  const client = new SecretsManagerClient({});
  try {
    const { SecretString } = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
    return JSON.parse(SecretString ?? "{}");
  } finally {
    client.destroy();
  }
}

/** A connection URL from an RDS credentials secret. */
export function databaseUrl(secret: Record<string, unknown>, host?: string): string {
  const url = new URL("postgresql://localhost");
  url.username = encodeURIComponent(String(secret.username));
  url.password = encodeURIComponent(String(secret.password));
  url.hostname = host ?? String(secret.host);
  url.port = String(secret.port ?? 5432);
  url.pathname = `/${secret.dbname ?? "postgres"}`;
  url.searchParams.set("sslmode", "verify-full");
  return url.toString();
}
