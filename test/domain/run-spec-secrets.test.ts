import { describe, expect, it } from 'vitest';
import { RunInvalidError } from '../../shared/errors';
import { ownerSecretsPath } from '../../shared/domain/run-access';
import { parseRunSpec, type RunSpecInput, type SpecContext } from '../../shared/domain/run-spec';
import { parseSecretRef } from '../../shared/domain/secret-refs';
import { SPEC_LIMITS } from '../../shared/domain/spec-limits';

const PREFIX = '/runctl/dev/secrets';
const ALICE = 'arn:aws:iam::123456789012:user/alice';
const BOB = 'arn:aws:iam::123456789012:user/bob';
const ALICE_PATH = ownerSecretsPath(PREFIX, ALICE);
const CONTEXT: SpecContext = { runsBucket: 'runctl-runs', secrets: { prefix: PREFIX, owner: ALICE } };
const ARN = (name: string) => `arn:aws:secretsmanager:us-east-1:123456789012:secret:${name}`;

const minimal: RunSpecInput = {
  name: 'tracked',
  code: { bundle: 's3://datasets/code.tar.gz', entrypoint: 'train.py' },
  instance: { types: ['g5.xlarge'] },
};

function rejection(input: unknown, context: SpecContext | undefined = CONTEXT): RunInvalidError {
  try {
    parseRunSpec(input, context);
  } catch (error) {
    if (error instanceof RunInvalidError) return error;
    throw error;
  }
  throw new Error('expected the spec to be rejected');
}

describe('secret references', () => {
  it.each([
    ['ssm:/runctl/dev/secrets/abc/wandb-key', { service: 'ssm', name: '/runctl/dev/secrets/abc/wandb-key' }],
    [ARN('/runctl/dev/secrets/abc/mlflow-AbCdEf'), { service: 'secretsmanager', region: 'us-east-1', accountId: '123456789012', name: '/runctl/dev/secrets/abc/mlflow-AbCdEf' }],
    ['arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:x', { service: 'secretsmanager', region: 'cn-north-1', name: 'x' }],
  ])('parses %s', (text, parts) => {
    expect(parseSecretRef(text)).toMatchObject(parts);
  });

  it.each([
    'ssm:relative/name',
    'ssm:/has space',
    '/runctl/dev/secrets/abc/wandb-key',
    'arn:aws:ssm:us-east-1:123456789012:parameter/x',
    'arn:aws:secretsmanager:us-east-1:1234:secret:x',
    'arn:aws:secretsmanager:us-east-1:123456789012:secret:',
    'ssm:/x\n',
  ])('refuses %j', (text) => {
    expect(parseSecretRef(text)).toBeUndefined();
  });
});

describe('spec.secrets', () => {
  it('keeps references only, under the owner path, in Parameter Store and Secrets Manager', () => {
    const secrets = { WANDB_API_KEY: `ssm:${ALICE_PATH}wandb-key`, MLFLOW_TRACKING_PASSWORD: ARN(`${ALICE_PATH}mlflow-AbCdEf`) };
    const spec = parseRunSpec({ ...minimal, secrets }, CONTEXT);

    expect(spec.secrets).toEqual(secrets);
  });

  it('is absent when not given, so specs without secrets keep their hash', () => {
    expect(parseRunSpec(minimal, CONTEXT)).not.toHaveProperty('secrets');
  });

  /** [label, secrets, env, field path, words the message must contain] */
  const invalid: [string, Record<string, unknown>, Record<string, string>, string, string][] = [
    ['a name that is not an env name', { 'WANDB-KEY': `ssm:${ALICE_PATH}k` }, {}, 'secrets.WANDB-KEY', 'environment variable name'],
    ['a reserved RUNCTL_ name', { RUNCTL_TOKEN: `ssm:${ALICE_PATH}k` }, {}, 'secrets.RUNCTL_TOKEN', 'reserved'],
    ['a reserved AWS_ name', { AWS_SECRET_ACCESS_KEY: `ssm:${ALICE_PATH}k` }, {}, 'secrets.AWS_SECRET_ACCESS_KEY', 'reserved'],
    ['a plain value instead of a reference', { WANDB_API_KEY: 'abc123' }, {}, 'secrets.WANDB_API_KEY', 'Parameter Store reference'],
    ['a parameter ARN', { K: `arn:aws:ssm:us-east-1:123456789012:parameter${ALICE_PATH}k` }, {}, 'secrets.K', 'Secrets Manager ARN'],
    ['a number', { K: 42 }, {}, 'secrets.K', 'expected string'],
    ['a name also set in env', { WANDB_API_KEY: `ssm:${ALICE_PATH}k` }, { WANDB_API_KEY: 'x' }, 'secrets.WANDB_API_KEY', 'also set in env'],
    ["another owner's parameter", { K: `ssm:${ownerSecretsPath(PREFIX, BOB)}wandb-key` }, {}, 'secrets.K', `ssm:${ALICE_PATH}<name>`],
    ['a parameter outside the prefix', { K: 'ssm:/prod/db-password' }, {}, 'secrets.K', 'under your secrets path'],
    ['the owner path itself', { K: `ssm:${ALICE_PATH}` }, {}, 'secrets.K', 'under your secrets path'],
    ['a parameter beside the owner path', { K: `ssm:${ALICE_PATH.slice(0, -1)}x/k` }, {}, 'secrets.K', 'under your secrets path'],
    ["another owner's secret", { K: ARN(`${ownerSecretsPath(PREFIX, BOB)}k-AbCdEf`) }, {}, 'secrets.K', `secret:${ALICE_PATH}<name>`],
    ['a secret outside the prefix', { K: ARN('prod/db-AbCdEf') }, {}, 'secrets.K', 'under your secrets path'],
  ];

  it.each(invalid)('refuses %s, naming the field', (_label, secrets, env, path, words) => {
    const error = rejection({ ...minimal, secrets, env });

    expect(error.issues.map((i) => i.path)).toContain(path);
    expect(error.issues.find((i) => i.path === path)?.message).toContain(words);
    expect(error.message).toContain(path);
  });

  it(`refuses more than ${SPEC_LIMITS.secrets} secrets`, () => {
    const secrets = Object.fromEntries(Array.from({ length: SPEC_LIMITS.secrets + 1 }, (_, i) => [`S${i}`, `ssm:${ALICE_PATH}s${i}`]));
    expect(rejection({ ...minimal, secrets }).issues.map((i) => i.path)).toEqual(['secrets']);
  });

  it('refuses any secret where the stack has no secrets prefix', () => {
    const error = rejection({ ...minimal, secrets: { K: `ssm:${ALICE_PATH}k` } }, { runsBucket: 'runctl-runs' });
    expect(error.issues).toEqual([{ path: 'secrets.K', message: expect.stringContaining('no secrets prefix') }]);
  });

  it('checks only the form without a context (the CLI, before the owner is known)', () => {
    expect(parseRunSpec({ ...minimal, secrets: { K: 'ssm:/anything/at/all' } }).secrets).toEqual({ K: 'ssm:/anything/at/all' });
  });
});
