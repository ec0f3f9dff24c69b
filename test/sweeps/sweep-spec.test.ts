import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHandler as createCreateSweep } from '../../functions/api/create-sweep';
import { createHandler as createGetSweep } from '../../functions/api/get-sweep';
import { DynamoSweeps } from '../../shared/adapters/dynamo-sweeps';
import { parseSweepSpec, trialCount, trialHyperparameters } from '../../shared/domain/sweep-spec';
import { ownerSecretsPath } from '../../shared/domain/run-access';
import { RunInvalidError } from '../../shared/errors';
import { submitSweep } from '../../shared/usecases/sweeps';
import { ALICE, ALICE_OWNER, BOB, apiEvent, lambdaContext } from '../support/api-events';
import { createRunsTable, dynamoClient, dynamoDocumentClient } from '../support/aws-clients';
import { startDynalite, type RunningDynalite } from '../support/dynalite';

const base = { name: 'mlp', code: { bundle: 's3://runctl-runs/bundles/abc.tar.gz', entrypoint: 'train.py' }, instance: { types: 'g5.xlarge' } };

function issuesOf(input: unknown): string[] {
  try {
    parseSweepSpec(input);
  } catch (error) {
    if (error instanceof RunInvalidError) return error.issues.map((i) => `${i.path}: ${i.message}`);
    throw error;
  }
  return [];
}

describe('sweep spec', () => {
  it('walks the grid with the last key fastest, capped by maxTrials', () => {
    const { spec } = parseSweepSpec({ name: 's', base, search: { grid: { lr: [0.1, 0.01], batch_size: [32, 64] } }, objective: { metric: 'loss' } });
    expect(trialCount(spec)).toBe(4);
    expect([0, 1, 2, 3].map((i) => trialHyperparameters(spec, i))).toEqual([
      { lr: '0.1', batch_size: '32' },
      { lr: '0.1', batch_size: '64' },
      { lr: '0.01', batch_size: '32' },
      { lr: '0.01', batch_size: '64' },
    ]);
    expect(trialCount({ ...spec, maxTrials: 3 })).toBe(3);
  });

  it('draws random trials reproducibly from the seed, inside their ranges', () => {
    const parse = (seed: number) => parseSweepSpec({ name: 's', base, search: { random: { lr: 'loguniform(1e-4,1e-1)', layers: 'int(1,4)', opt: 'choice(sgd,adam)' }, trials: 40, seed }, objective: { metric: 'loss' } }).spec;
    const draws = Array.from({ length: 40 }, (_, i) => trialHyperparameters(parse(7), i));
    expect(Array.from({ length: 40 }, (_, i) => trialHyperparameters(parse(7), i))).toEqual(draws);
    expect(trialHyperparameters(parse(8), 0)).not.toEqual(draws[0]);
    for (const d of draws) {
      expect(Number(d.lr)).toBeGreaterThanOrEqual(1e-4);
      expect(Number(d.lr)).toBeLessThanOrEqual(1e-1);
      expect(['1', '2', '3', '4']).toContain(d.layers);
      expect(['sgd', 'adam']).toContain(d.opt);
    }
    expect(new Set(draws.map((d) => d.lr)).size).toBeGreaterThan(30);
  });

  it('names the field of every mistake, the base run spec included', () => {
    expect(issuesOf({ name: 's', base, search: { random: { lr: 'loguniform(0,1)' } }, objective: { metric: 'loss' } })).toEqual([
      'search.random.lr: loguniform(low,high) needs low > 0',
      'search.trials: is required with random: how many trials to draw',
    ]);
    expect(issuesOf({ name: 's', base: { ...base, instance: { types: 'G5' } }, search: { grid: { lr: [1] } }, objective: { metric: 'loss', goal: 'down' } })).toEqual([
      'objective.goal: must be "minimize" or "maximize"',
    ]);
    expect(issuesOf({ name: 's', base: { ...base, instance: { types: 'G5' } }, search: { grid: { lr: [1] } }, objective: { metric: 'loss' } })[0]).toMatch(/^base\.instance\.types\.0: must be an EC2 instance type/);
    expect(issuesOf({ name: 's', base, search: { grid: { lr: [1] } }, objective: { metric: 'loss' }, earlyStopping: { rule: 'hyperband' } })[0]).toMatch(/^earlyStopping/);
  });
});

describe('sweeps API', () => {
  let dynalite: RunningDynalite;
  let sweeps: DynamoSweeps;
  const started: string[] = [];
  const deps = () => ({
    sweeps,
    sweepExecutions: {
      start: async (name: string) => {
        started.push(name);
        return { executionArn: `arn:aws:states:us-east-1:123456789012:execution:runctl-test-sweep:${name}`, alreadyStarted: false };
      },
      status: async () => 'RUNNING' as const,
      failTask: async () => false,
      running: async () => new Set<string>(),
    },
    clock: () => new Date(),
  });
  const post = (body: unknown, caller = ALICE) =>
    createCreateSweep(deps)(apiEvent({ method: 'POST', path: '/sweeps', routeKey: 'POST /sweeps', body, caller }), lambdaContext());
  const get = (id: string, caller = ALICE) =>
    createGetSweep(() => ({ sweeps }))(apiEvent({ method: 'GET', path: `/sweeps/${id}`, routeKey: 'GET /sweeps/{id}', caller, pathParameters: { id } }), lambdaContext());

  beforeAll(async () => {
    dynalite = await startDynalite();
    const table = `sweeps-api-${Date.now()}`;
    await createRunsTable(dynamoClient(dynalite.endpoint), table);
    sweeps = new DynamoSweeps(dynamoDocumentClient(dynalite.endpoint), table);
  });

  afterAll(async () => {
    await dynalite.close();
  });

  it('accepts a sweep once per client token and starts its execution named after it', async () => {
    const spec = { name: 'lr-search', base, search: { grid: { lr: [0.1, 0.01] } }, objective: { metric: 'loss' }, maxParallel: 2 };
    const first = await post({ clientToken: 'tok-1', spec });
    expect(first.statusCode).toBe(201);
    const sweep = JSON.parse(first.body ?? '{}');
    expect(sweep).toMatchObject({ status: 'PENDING', trials: 2, experiment: 'lr-search' });
    expect(started).toEqual([sweep.sweepId]);
    expect((await post({ clientToken: 'tok-1', spec })).statusCode).toBe(200);

    expect((await get(sweep.sweepId)).statusCode).toBe(200);
    expect((await get(sweep.sweepId, BOB)).statusCode).toBe(404);
    expect((await get('sw-not-a-sweep')).statusCode).toBe(404);
  });

  it('answers 400 naming the field for a bad spec, before anything is recorded or started', async () => {
    const before = started.length;
    const bad = await post({ spec: { name: 'x', base, search: { grid: { lr: [] } }, objective: { metric: 'loss' } } });
    expect(bad.statusCode).toBe(400);
    expect(JSON.parse(bad.body ?? '{}').issues).toEqual([{ path: 'spec.search.grid.lr', message: 'list at least one value' }]);
    expect(started.length).toBe(before);
  });
});

describe('submitting a sweep whose base spec names secrets', () => {
  /** Ports that fail the test if reached: a refused sweep stores and starts nothing. */
  const untouched = new Proxy({}, { get: (_target, property) => { throw new Error(`${String(property)} was used for a refused sweep`); } });
  const deps = { sweeps: untouched as never, sweepExecutions: untouched as never, clock: () => new Date(), secretsPrefix: '/runctl/test/secrets' };
  const sweep = (secrets: Record<string, string>) => ({ spec: { name: 's', base: { ...base, secrets }, search: { grid: { lr: [0.1] } }, objective: { metric: 'loss' } } });

  it("refuses a secret outside the owner's path at spec.base.secrets, before anything is stored", async () => {
    const refused = submitSweep({ owner: ALICE_OWNER, body: sweep({ WANDB_API_KEY: 'ssm:/prod/wandb-key' }) }, deps);

    await expect(refused).rejects.toBeInstanceOf(RunInvalidError);
    await expect(refused).rejects.toMatchObject({ issues: [{ path: 'spec.base.secrets.WANDB_API_KEY', message: expect.stringContaining(`ssm:${ownerSecretsPath('/runctl/test/secrets', ALICE_OWNER)}<name>`) }] });
  });
});
