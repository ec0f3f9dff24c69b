import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHandler as createListExperimentRuns } from '../../functions/api/list-experiment-runs';
import { createHandler as createListExperiments } from '../../functions/api/list-experiments';
import { DynamoExperiments } from '../../shared/adapters/dynamo-experiments';
import { DynamoRunStore } from '../../shared/adapters/dynamo-run-store';
import type { RunRecord } from '../../shared/domain/run-record';
import { parseRunSpec } from '../../shared/domain/run-spec';
import type { ExperimentDeps } from '../../shared/usecases/experiments';
import { ALICE, ALICE_OWNER, BOB_OWNER, BOB, apiEvent, lambdaContext } from '../support/api-events';
import { createRunsTable, dynamoClient, dynamoDocumentClient } from '../support/aws-clients';
import { startDynalite, type RunningDynalite } from '../support/dynalite';

function record(runId: string, owner: string, experiment: string | undefined, minute: number, lr: string): RunRecord {
  const createdAt = new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString();
  return {
    runId,
    owner,
    spec: parseRunSpec({
      name: 'mlp',
      experiment,
      code: { bundle: 's3://runctl-runs/bundles/abc.tar.gz', entrypoint: 'train.py' },
      instance: { types: 'g5.xlarge' },
      hyperparameters: { lr },
    }),
    specHash: runId,
    status: 'SUCCEEDED',
    createdAt,
    updatedAt: createdAt,
    attempts: [],
    costUsd: 0.25,
    interruptions: 0,
    userFailures: 0,
    metrics: { final: { loss: Number(lr) }, min: { loss: Number(lr) }, max: { loss: 1 }, points: 3 },
  };
}

interface Body {
  [key: string]: unknown;
}
const body = (result: { body?: string }): Body => JSON.parse(result.body ?? '{}');

describe('experiments API', () => {
  let dynalite: RunningDynalite;
  let deps: ExperimentDeps;
  const listExperiments = (caller: string, query?: Record<string, string>) =>
    createListExperiments(() => deps)(apiEvent({ method: 'GET', path: '/experiments', routeKey: 'GET /experiments', caller, query }), lambdaContext());
  const listRuns = (name: string, caller: string, query?: Record<string, string>) =>
    createListExperimentRuns(() => deps)(
      apiEvent({ method: 'GET', path: `/experiments/${name}/runs`, routeKey: 'GET /experiments/{name}/runs', caller, pathParameters: { name }, query }),
      lambdaContext(),
    );

  beforeAll(async () => {
    dynalite = await startDynalite();
    const table = `experiments-${Date.now()}`;
    await createRunsTable(dynamoClient(dynalite.endpoint), table);
    const documents = dynamoDocumentClient(dynalite.endpoint);
    deps = { store: new DynamoRunStore(documents, table), experiments: new DynamoExperiments(documents, table) };
    await deps.store.create(record('r-a1', ALICE_OWNER, 'lr-search', 1, '0.1'));
    await deps.store.create(record('r-a2', ALICE_OWNER, 'lr-search', 2, '0.01'));
    await deps.store.create(record('r-a3', ALICE_OWNER, 'lr-search', 3, '0.001'));
    await deps.store.create(record('r-a4', ALICE_OWNER, undefined, 4, '0.5'));
    await deps.store.create(record('r-b1', BOB_OWNER, 'lr-search', 5, '0.2'));
  });

  afterAll(async () => {
    await dynalite.close();
  });

  it("lists the caller's experiments by name with their run counts, nobody else's", async () => {
    const alice = await listExperiments(ALICE);
    expect(alice.statusCode).toBe(200);
    expect(body(alice).experiments).toMatchObject([
      { name: 'lr-search', runs: 3 },
      { name: 'mlp', runs: 1 },
    ]);
    expect(body(await listExperiments(BOB)).experiments).toMatchObject([{ name: 'lr-search', runs: 1 }]);
  });

  it('pages the runs of an experiment through the index, oldest first, with their hyperparameters and metrics', async () => {
    const first = body(await listRuns('lr-search', ALICE, { limit: '2' }));
    expect(first.runs).toMatchObject([
      { runId: 'r-a1', hyperparameters: { lr: '0.1' }, metrics: { final: { loss: 0.1 } } },
      { runId: 'r-a2', hyperparameters: { lr: '0.01' } },
    ]);
    expect(typeof first.nextToken).toBe('string');
    const second = body(await listRuns('lr-search', ALICE, { limit: '2', nextToken: String(first.nextToken) }));
    expect(second.runs).toMatchObject([{ runId: 'r-a3' }]);
    expect(second.nextToken).toBeUndefined();
  });

  it("answers 404 for another owner's experiment and one that does not exist, 400 for a bad page", async () => {
    expect((await listRuns('mlp', BOB)).statusCode).toBe(404);
    expect((await listRuns('nothing-here', ALICE)).statusCode).toBe(404);
    expect((await listRuns('a%2Fb', ALICE)).statusCode).toBe(404);
    const bad = await listRuns('lr-search', ALICE, { limit: '0' });
    expect(bad.statusCode).toBe(400);
    expect(body(bad).message).toMatch(/limit/);
    const foreign = await listRuns('lr-search', BOB, { nextToken: String(body(await listRuns('lr-search', ALICE, { limit: '1' })).nextToken) });
    expect(foreign.statusCode).toBe(400);
    expect(body(foreign).message).toMatch(/nextToken/);
  });
});
