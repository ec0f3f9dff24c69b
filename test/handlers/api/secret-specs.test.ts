import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHandler as createCreateRun } from '../../../functions/api/create-run';
import { DynamoRunStore } from '../../../shared/adapters/dynamo-run-store';
import { SfnExecutions } from '../../../shared/adapters/sfn-executions';
import { apiLogger, type ApiDeps } from '../../../shared/composition/api';
import { ownerSecretsPath } from '../../../shared/domain/run-access';
import { runIdFor } from '../../../shared/domain/run-identity';
import { ALICE, ALICE_OWNER, apiEvent, BOB_OWNER, lambdaContext } from '../../support/api-events';
import { createRunsTable, dynamoClient, dynamoDocumentClient } from '../../support/aws-clients';
import { startDynalite, type RunningDynalite } from '../../support/dynalite';

// POST /runs with spec.secrets: references under the caller's secrets path are stored as given
// (references only, never a value); anything else is a 400 naming the field and the path allowed.

const STATE_MACHINE = 'arn:aws:states:us-east-1:123456789012:stateMachine:runctl-test-train-run';
const RUNS_BUCKET = 'runctl-runs';
const PREFIX = '/runctl/test/secrets';
const ALICE_PATH = ownerSecretsPath(PREFIX, ALICE_OWNER);
const ARN = (name: string) => `arn:aws:secretsmanager:us-east-1:123456789012:secret:${name}`;

const spec = {
  name: 'tracked',
  code: { bundle: `s3://${RUNS_BUCKET}/bundles/${'e'.repeat(64)}.tar.gz`, entrypoint: 'train.py' },
  instance: { types: ['g5.xlarge'] },
};

describe('POST /runs with secrets', () => {
  let dynalite: RunningDynalite;
  let deps: ApiDeps & { runsBucket: string; secretsPrefix: string };
  const sfnClient = new SFNClient({ region: 'us-east-1' });
  const sfn = mockClient(sfnClient);
  let token = 0;

  const post = async (secrets: unknown, env: Record<string, string> = {}) => {
    const clientToken = `secrets-${++token}`;
    const event = apiEvent({ method: 'POST', path: '/runs', routeKey: 'POST /runs', caller: ALICE, body: { spec: { ...spec, env, secrets }, clientToken } });
    const result = await createCreateRun(() => deps)(event, lambdaContext());
    return { result, runId: runIdFor(ALICE_OWNER, clientToken) };
  };

  beforeAll(async () => {
    dynalite = await startDynalite();
    const table = `secrets-${Date.now()}`;
    await createRunsTable(dynamoClient(dynalite.endpoint), table);
    deps = {
      store: new DynamoRunStore(dynamoDocumentClient(dynalite.endpoint), table),
      executions: new SfnExecutions(sfnClient, STATE_MACHINE),
      clock: () => new Date(),
      logger: apiLogger,
      runsBucket: RUNS_BUCKET,
      secretsPrefix: PREFIX,
    };
  });
  afterAll(async () => dynalite.close());
  beforeEach(() => {
    sfn.reset();
    sfn.on(StartExecutionCommand).callsFake((input: { name?: string }) => ({
      executionArn: `${STATE_MACHINE.replace(':stateMachine:', ':execution:')}:${input.name}`,
      startDate: new Date(),
    }));
  });

  it('stores the references, and hands the execution nothing but them', async () => {
    const secrets = { WANDB_API_KEY: `ssm:${ALICE_PATH}wandb-key`, MLFLOW_TRACKING_PASSWORD: ARN(`${ALICE_PATH}mlflow-AbCdEf`) };
    const { result, runId } = await post(secrets);

    expect(result.statusCode, result.body).toBe(201);
    expect((await deps.store.get(runId))?.spec.secrets).toEqual(secrets);
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
    expect(await deps.store.get(runId)).toBeUndefined();
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });
});
