import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { describe, expect, it } from 'vitest';
import { ownerSecretsPath } from '../../../shared/domain/run-access';
import { runIdFor } from '../../../shared/domain/run-identity';
import { ALICE, ALICE_OWNER, BOB_OWNER } from '../../support/api-events';
import { RUNS_BUCKET, useCreateRunHarness } from '../../support/create-run-harness';

// POST /runs with spec.secrets: references under the caller's secrets path are stored as given
// (references only, never a value); anything else is a 400 naming the field and the path allowed.

const PREFIX = '/runctl/test/secrets';
const ALICE_PATH = ownerSecretsPath(PREFIX, ALICE_OWNER);
const ARN = (name: string) => `arn:aws:secretsmanager:us-east-1:123456789012:secret:${name}`;

const spec = {
  name: 'tracked',
  code: { bundle: `s3://${RUNS_BUCKET}/bundles/${'e'.repeat(64)}.tar.gz`, entrypoint: 'train.py' },
  instance: { types: ['g5.xlarge'] },
};

describe('POST /runs with secrets', () => {
  const harness = useCreateRunHarness({ name: 'secrets', secretsPrefix: PREFIX });
  const { sfn } = harness;
  let token = 0;

  const post = async (secrets: unknown, env: Record<string, string> = {}) => {
    const clientToken = `secrets-${++token}`;
    const result = await harness.post({ caller: ALICE, body: { spec: { ...spec, env, secrets }, clientToken } });
    return { result, runId: runIdFor(ALICE_OWNER, clientToken) };
  };

  it('stores the references, and hands the execution nothing but them', async () => {
    const secrets = { WANDB_API_KEY: `ssm:${ALICE_PATH}wandb-key`, MLFLOW_TRACKING_PASSWORD: ARN(`${ALICE_PATH}mlflow-AbCdEf`) };
    const { result, runId } = await post(secrets);

    expect(result.statusCode, result.body).toBe(201);
    expect((await harness.deps.store.get(runId))?.spec.secrets).toEqual(secrets);
    const input = JSON.parse(sfn.commandCalls(StartExecutionCommand)[0]?.args[0].input.input ?? '{}') as { spec: { secrets: unknown } };
    expect(input.spec.secrets).toEqual(secrets);
  });

  it.each<[string, unknown, Record<string, string>, string, string]>([
    ["another owner's parameter", { WANDB_API_KEY: `ssm:${ownerSecretsPath(PREFIX, BOB_OWNER)}wandb-key` }, {}, 'spec.secrets.WANDB_API_KEY', `ssm:${ALICE_PATH}<name>`],
    ['a parameter outside the prefix', { WANDB_API_KEY: 'ssm:/prod/db-password' }, {}, 'spec.secrets.WANDB_API_KEY', `ssm:${ALICE_PATH}<name>`],
    ["another owner's Secrets Manager secret", { K: ARN(`${ownerSecretsPath(PREFIX, BOB_OWNER)}k-AbCdEf`) }, {}, 'spec.secrets.K', `secret:${ALICE_PATH}<name>`],
    ['a secret value instead of a reference', { WANDB_API_KEY: 'e3b0c44298fc1c149afbf4c8996fb924' }, {}, 'spec.secrets.WANDB_API_KEY', 'Parameter Store reference'],
    ['a reserved name', { AWS_SECRET_ACCESS_KEY: `ssm:${ALICE_PATH}k` }, {}, 'spec.secrets.AWS_SECRET_ACCESS_KEY', 'reserved'],
    ['a name also in env', { WANDB_API_KEY: `ssm:${ALICE_PATH}k` }, { WANDB_API_KEY: 'x' }, 'spec.secrets.WANDB_API_KEY', 'also set in env'],
    ['a list', [`ssm:${ALICE_PATH}k`], {}, 'spec.secrets', 'expected record'],
  ])('refuses %s with a 400 naming the field; nothing is stored or started', async (_label, secrets, env, path, words) => {
    const { result, runId } = await post(secrets, env);

    expect(result.statusCode, result.body).toBe(400);
    const answer = JSON.parse(result.body ?? '{}') as { message: string; issues: { path: string; message: string }[] };
    expect(answer.issues.find((i) => i.path === path)?.message).toContain(words);
    expect(answer.message).toContain(path);
    expect(await harness.deps.store.get(runId)).toBeUndefined();
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });
});
