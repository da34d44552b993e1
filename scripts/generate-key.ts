// `npm run keys:generate`: a new ES256 signing key for Shutter's access tokens, printed as the JSON of a
// settings secret ({"JWT_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----..."}), ready for Secrets Manager:
//   npm run -s keys:generate > settings.json
//   aws secretsmanager create-secret --name shutter/prod --secret-string file://settings.json && rm settings.json
// or, with --pem, as the bare PEM (for SSM, a Kubernetes secret or JWT_PRIVATE_KEY in an .env file).
import { exportPKCS8, generateKeyPair } from "jose";

const { privateKey } = await generateKeyPair("ES256", { extractable: true });
const pem = await exportPKCS8(privateKey);
process.stdout.write(process.argv.includes("--pem") ? pem : `${JSON.stringify({ JWT_PRIVATE_KEY: pem })}\n`);
