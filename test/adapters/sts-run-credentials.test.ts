import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, inject, it } from 'vitest';
import { RUN_CREDENTIALS_SECONDS, StsRunCredentials } from '../../shared/adapters/sts-run-credentials';
import { runSessionPolicy } from '../../shared/domain/run-access';
import { AwsCallFailedError } from '../../shared/errors';
import { localClientConfig } from '../support/aws-clients';

describe('StsRunCredentials (moto_server)', () => {
  const client = new STSClient(localClientConfig(inject('motoEndpoint')));
  const roleArn = 'arn:aws:iam::123456789012:role/runctl-test-run-access';

  it("assumes the run-access role with the run's session policy, for the one hour role chaining allows", async () => {
    const policy = runSessionPolicy({
      partition: 'aws',
      region: 'us-east-1',
      accountId: '123456789012',
      runsBucket: 'runs-bucket',
      runId: 'r-0123456789abcdef',
      codeBundle: `s3://runs-bucket/bundles/${'a'.repeat(64)}.tar.gz`,
      dataSources: ['s3://datasets-bucket/imagenet/'],
      owner: 'arn:aws:iam::123456789012:user/alice',
      secretsPrefix: '/runctl/test/secrets',
    });
    const before = Date.now();

    const credentials = await new StsRunCredentials(client, roleArn).issue('r-0123456789abcdef-1', policy);

    expect(credentials.accessKeyId).toMatch(/^ASIA/);
    expect(credentials.secretAccessKey.length).toBeGreaterThan(10);
    expect(credentials.sessionToken?.length).toBeGreaterThan(10);
    const lifetime = Date.parse(credentials.expiration) - before;
    expect(lifetime).toBeGreaterThan((RUN_CREDENTIALS_SECONDS - 60) * 1000);
    expect(lifetime).toBeLessThanOrEqual((RUN_CREDENTIALS_SECONDS + 60) * 1000);
  });

});

describe('StsRunCredentials errors', () => {
  it('translates a refused AssumeRole into Aws.CallFailed, keeping the cause', async () => {
    const client = new STSClient({ region: 'us-east-1' });
    const sts = mockClient(client);
    const denied = Object.assign(new Error('User is not authorized to perform: sts:AssumeRole'), {
      name: 'AccessDenied',
      $metadata: { httpStatusCode: 403 },
    });
    sts.on(AssumeRoleCommand).rejects(denied);

    const error = await new StsRunCredentials(client, 'arn:aws:iam::123456789012:role/x').issue('r-1-1', { Version: '2012-10-17', Statement: [] }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(AwsCallFailedError);
    expect(error).toMatchObject({ name: 'Aws.CallFailed', cause: denied });
    expect(sts.commandCalls(AssumeRoleCommand)[0]?.args[0].input).toMatchObject({ RoleSessionName: 'r-1-1', DurationSeconds: 3600 });
  });
});
