import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalSecretsFile, localSecretsPath, startLocalSecretsEndpoint, type LocalSecretsEndpoint } from '../../local/secrets';
import { ownerSecretsPath } from '../../shared/domain/run-access';
import { localClientConfig } from '../support/aws-clients';

// The local stand-in for Parameter Store and Secrets Manager: the secrets file under the root,
// answered in the AWS JSON protocol (the SDK's own GetParameter here, the agent's in test/agent).

describe('the local secrets endpoint', () => {
  const root = mkdtempSync(join(tmpdir(), 'runctl-secrets-'));
  const file = new LocalSecretsFile(root);
  const name = `${localSecretsPath()}wandb-key`;
  let endpoint: LocalSecretsEndpoint;
  let ssm: SSMClient;

  beforeAll(async () => {
    endpoint = await startLocalSecretsEndpoint(root, 'us-east-1');
    ssm = new SSMClient(localClientConfig(endpoint.url));
  });
  afterAll(async () => {
    ssm.destroy();
    await endpoint.close();
    rmSync(root, { recursive: true, force: true });
  });

  it("keeps the local owner's secrets under the local prefix, in a file only its user can read", async () => {
    await file.set(name, 'v1');

    expect(localSecretsPath()).toBe(ownerSecretsPath('/runctl/local/secrets', 'arn:aws:iam::000000000000:user/local'));
    expect(statSync(file.path).mode & 0o777).toBe(0o600);
    expect(await file.read()).toEqual({ [name]: 'v1' });
  });

  it('answers GetParameter with the value as the file holds it now, and ParameterNotFound for a name it lacks', async () => {
    await file.set(name, 'v2 with spaces');

    const answer = await ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
    expect(answer.Parameter).toMatchObject({ Name: name, Value: 'v2 with spaces', Type: 'SecureString' });
    await expect(ssm.send(new GetParameterCommand({ Name: `${name}-missing` }))).rejects.toMatchObject({ name: 'ParameterNotFound' });
  });

  it('answers GetSecretValue for a Secrets Manager ARN naming the same secret, with or without its suffix', async () => {
    const call = (secretId: string) =>
      fetch(`${endpoint.url}/`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'secretsmanager.GetSecretValue' },
        body: JSON.stringify({ SecretId: secretId }),
      });
    const arn = `arn:aws:secretsmanager:us-east-1:000000000000:secret:${name}`;

    expect(await (await call(arn)).json()).toMatchObject({ SecretString: 'v2 with spaces' });
    expect(await (await call(`${arn}-AbCdEf`)).json()).toMatchObject({ SecretString: 'v2 with spaces' });
    const missing = await call(`${arn}x`);
    expect(missing.status).toBe(400);
    expect(await missing.json()).toMatchObject({ __type: 'ResourceNotFoundException' });
  });

  it('removes a secret', async () => {
    expect(await file.remove(name)).toBe(true);
    expect(await file.remove(name)).toBe(false);
    await expect(ssm.send(new GetParameterCommand({ Name: name }))).rejects.toMatchObject({ name: 'ParameterNotFound' });
  });
});
