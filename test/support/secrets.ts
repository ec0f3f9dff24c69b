import { SignatureV4 } from '@smithy/signature-v4';
import { z } from 'zod';
import { NodeSha256 } from '../../cli/sigv4';

/**
 * Secrets in moto_server for the tests that resolve them. There is no Secrets Manager SDK client
 * among the dependencies, so a secret is created with one signed JSON call, as the agent reads it.
 */

/** The instance environment that points the agent's Parameter Store and Secrets Manager calls at `endpoint`. */
export function secretsEndpoints(endpoint: string): Record<string, string> {
  return { AWS_ENDPOINT_URL_SSM: endpoint, AWS_ENDPOINT_URL_SECRETS_MANAGER: endpoint };
}

/** Creates a Secrets Manager secret holding `value` (a string) in moto; returns its ARN. */
export async function createSecret(endpoint: string, name: string, value: string): Promise<string> {
  const url = new URL(endpoint);
  const body = JSON.stringify({ Name: name, SecretString: value });
  const signer = new SignatureV4({
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    region: 'us-east-1',
    service: 'secretsmanager',
    sha256: NodeSha256,
  });
  const signed = await signer.sign({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    port: Number(url.port),
    path: '/',
    headers: { host: url.host, 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'secretsmanager.CreateSecret' },
    body,
  });
  const response = await fetch(`${endpoint}/`, { method: 'POST', headers: signed.headers, body });
  if (!response.ok) throw new Error(`CreateSecret ${name} failed: ${response.status} ${await response.text()}`);
  return z.object({ ARN: z.string() }).parse(await response.json()).ARN;
}
