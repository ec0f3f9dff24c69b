import { AssumeRoleCommand, type STSClient } from '@aws-sdk/client-sts';
import type { PolicyDocument } from '../domain/run-access';
import { AwsCallFailedError } from '../errors';
import type { RunCredentialSet, RunCredentials } from '../ports/run-credentials';
import { translateAwsError } from './aws-errors';

/**
 * A run's credentials from sts:AssumeRole on the run-access role, narrowed by the run's session
 * policy. The control function's own credentials are a role session, so this is role chaining:
 * AWS caps the result at one hour, and the agent's credential_process asks again before expiry.
 */
export const RUN_CREDENTIALS_SECONDS = 3600;

export class StsRunCredentials implements RunCredentials {
  constructor(
    private readonly client: STSClient,
    private readonly roleArn: string,
  ) {}

  async issue(sessionName: string, policy: PolicyDocument): Promise<RunCredentialSet> {
    try {
      const out = await this.client.send(
        new AssumeRoleCommand({
          RoleArn: this.roleArn,
          // 2-64 of [\w+=,.@-]: run ids and attempt numbers fit.
          RoleSessionName: sessionName.slice(0, 64),
          Policy: JSON.stringify(policy),
          DurationSeconds: RUN_CREDENTIALS_SECONDS,
        }),
      );
      const c = out.Credentials;
      if (c?.AccessKeyId === undefined || c.SecretAccessKey === undefined || c.Expiration === undefined) {
        throw new AwsCallFailedError('AssumeRole returned no credentials');
      }
      return {
        accessKeyId: c.AccessKeyId,
        secretAccessKey: c.SecretAccessKey,
        sessionToken: c.SessionToken,
        expiration: c.Expiration.toISOString(),
      };
    } catch (error) {
      if (error instanceof AwsCallFailedError) throw error;
      throw translateAwsError(error, 'AssumeRole');
    }
  }
}
