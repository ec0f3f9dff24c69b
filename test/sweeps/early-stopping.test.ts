import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoRunStore } from '../../shared/adapters/dynamo-run-store';
import { DynamoSweeps } from '../../shared/adapters/dynamo-sweeps';
import { S3Artifacts } from '../../shared/adapters/s3-artifacts';
import { medianStoppingDecisions, type TrialProgress } from '../../shared/domain/early-stopping';
import { parseRunSpec } from '../../shared/domain/run-spec';
import { parseSweepSpec } from '../../shared/domain/sweep-spec';
import type { Compute } from '../../shared/ports/compute';
import { finishRun } from '../../shared/usecases/finish-run';
import { DEFAULT_STEP_TUNING } from '../../shared/usecases/step-deps';
import { evaluateSweeps } from '../../shared/usecases/sweep-control';
import { trialRunId } from '../../shared/usecases/sweeps';
import { ALICE } from '../support/api-events';
import { createRunsTable, dynamoClient, dynamoDocumentClient } from '../support/aws-clients';
import { startDynalite, type RunningDynalite } from '../support/dynalite';
import { startS3rver, type S3rverHandle } from '../support/s3rver';

const rule = { rule: 'median' as const, stepKey: 'epoch', minSteps: 2, minTrials: 2 };
const curve = (runId: string, losses: number[], live = true): TrialProgress => ({ runId, live, points: losses.map((value, i) => ({ step: i + 1, value })) });

describe('the median stopping rule', () => {
  it("stops a live trial whose best by step s is worse than the median of the others' running averages up to s", () => {
    const trials = [curve('good-1', [0.8, 0.5, 0.3], false), curve('good-2', [0.7, 0.4, 0.35]), curve('good-3', [0.9, 0.6, 0.4]), curve('bad', [1.0, 0.95, 0.9])];
    const [decision, ...more] = medianStoppingDecisions(trials, rule, 'minimize');
    expect(more).toEqual([]);
    expect(decision).toMatchObject({ runId: 'bad', step: 3, best: 0.9, others: 3 });
    expect(decision?.median).toBeCloseTo(0.5333, 4);
    // Maximising: the low curve is the bad one now.
    const rising = [curve('a', [0.5, 0.7, 0.8]), curve('b', [0.6, 0.7, 0.9]), curve('c', [0.5, 0.8, 0.85]), curve('low', [0.1, 0.2, 0.3])];
    expect(medianStoppingDecisions(rising, rule, 'maximize').map((d) => d.runId)).toEqual(['low']);
  });

  it('gives a trial its grace steps, and needs enough other trials at the same step', () => {
    expect(medianStoppingDecisions([curve('a', [0.2]), curve('b', [0.3]), curve('bad', [0.9])], rule, 'minimize')).toEqual([]);
    // Others that have not reached the trial's step do not count.
    expect(medianStoppingDecisions([curve('a', [0.2, 0.1]), curve('b', [0.3]), curve('bad', [0.9, 0.9])], rule, 'minimize')).toEqual([]);
    // An ended trial is never stopped, a trial with no points neither.
    expect(medianStoppingDecisions([curve('a', [0.2, 0.1]), curve('b', [0.2, 0.1]), curve('bad', [0.9, 0.9], false), curve('none', [])], rule, 'minimize')).toEqual([]);
  });
});

describe('evaluate-sweeps', () => {
  const bucket = 'runctl-early-stop';
  let dynalite: RunningDynalite;
  let s3rver: S3rverHandle;
  let s3: S3Client;
  let store: DynamoRunStore;
  let sweeps: DynamoSweeps;
  let artifacts: S3Artifacts;
  const commands: string[] = [];
  const compute: Compute = {
    launch: async () => { throw new Error('not used'); },
    launchNodes: async () => { throw new Error('not used'); },
    tagAttempt: async () => { throw new Error('not used'); },
    readiness: async () => { throw new Error('not used'); },
    instanceStates: async () => { throw new Error('not used'); },
    terminate: async () => undefined,
    sendCommand: async (instanceId) => {
      commands.push(instanceId);
      return 'c-1';
    },
    commandResult: async () => { throw new Error('not used'); },
    listTaggedInstances: async () => [],
  };

  beforeAll(async () => {
    [dynalite, s3rver] = await Promise.all([startDynalite(), startS3rver([bucket])]);
    const table = `early-${Date.now()}`;
    await createRunsTable(dynamoClient(dynalite.endpoint), table);
    const documents = dynamoDocumentClient(dynalite.endpoint);
    store = new DynamoRunStore(documents, table);
    sweeps = new DynamoSweeps(documents, table);
    s3 = new S3Client({ endpoint: s3rver.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: s3rver.credentials });
    artifacts = new S3Artifacts(s3, bucket);
  });

  afterAll(async () => {
    s3.destroy();
    await Promise.all([dynalite.close(), s3rver.stop()]);
  });

  it('stops the trial the rule condemns through the cancel path, and FinishRun records STOPPED_EARLY', async () => {
    const { spec } = parseSweepSpec({
      name: 'lr-es',
      base: { name: 'mlp', code: { bundle: 's3://runctl-runs/bundles/x.tar.gz', entrypoint: 'train.py' }, instance: { types: 'g5.xlarge' } },
      search: { grid: { lr: [0.1, 0.05, 0.02, 3] } },
      objective: { metric: 'loss' },
      earlyStopping: rule,
    });
    const sweepId = 'sw-00000000000000e5';
    const now = new Date().toISOString();
    await sweeps.create({ sweepId, owner: ALICE, spec, experiment: 'lr-es', status: 'RUNNING', trials: 4, launched: 0, finished: 0, skipped: 0, committedUsd: 0, costUsd: 0, createdAt: now, updatedAt: now });
    const losses = [[0.8, 0.5, 0.3], [0.7, 0.45, 0.3], [0.75, 0.5, 0.35], [1.2, 1.1, 1.05]];
    for (const [trial, curveOf] of losses.entries()) {
      const runId = trialRunId(sweepId, trial);
      await sweeps.reserveTrial({ sweepId, trial, runId, hyperparameters: { lr: String(trial) }, reservedUsd: 0 }, undefined);
      await store.create({
        runId,
        owner: ALICE,
        spec: parseRunSpec({ ...spec.base as object, experiment: 'lr-es' }),
        specHash: runId,
        status: 'PENDING',
        createdAt: now,
        updatedAt: now,
        attempts: [],
        costUsd: 0,
        interruptions: 0,
        userFailures: 0,
        sweep: { sweepId, trial },
      });
      for (const [from, to] of [['PENDING', 'VALIDATING'], ['VALIDATING', 'PROVISIONING'], ['PROVISIONING', 'STARTING'], ['STARTING', 'TRAINING']] as const) {
        await store.transition(runId, from, to);
      }
      await store.appendAttempt(runId, { attempt: 1, spot: true, startedAt: now, instanceId: `i-${trial}` });
      await store.setTaskToken(runId, 1, `token-${trial}`);
      const lines = curveOf.map((loss, i) => JSON.stringify({ ts: now, attempt: 1, epoch: i + 1, loss })).join('\n');
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `runs/${runId}/metrics.jsonl`, Body: `${lines}\n` }));
    }

    const stopped = await evaluateSweeps({
      sweeps,
      store,
      artifacts,
      compute,
      executions: { start: async () => ({ executionArn: '', alreadyStarted: false }), status: async () => 'RUNNING', failTask: async () => true, running: async () => new Set<string>() },
      clock: () => new Date(),
    });
    const bad = trialRunId(sweepId, 3);
    expect(stopped.map((d) => d.runId)).toEqual([bad]);
    const record = await store.get(bad);
    expect(record?.status).toBe('CANCELLING');
    expect(record?.cancelRequested).toMatchObject({ force: false, earlyStop: true });
    expect(record?.statusReason).toMatch(/median rule .* best loss 1\.05 by epoch 3, median of 3 other trial\(s\) 0\.5333/);
    for (const trial of [0, 1, 2]) expect((await store.get(trialRunId(sweepId, trial)))?.status).toBe('TRAINING');
    // The agent of the live attempt is asked to checkpoint and stop, as a cancel asks it.
    expect(commands).toEqual(['i-3']);

    // The agent checkpoints and calls back Run.Cancelled; the machine ends in FinishRun.
    const finished = await finishRun(
      { runId: bad, error: { Error: 'Run.Cancelled', Cause: '{"reason":"cancelled"}' } },
      { store, artifacts, clock: () => new Date(), config: { bucket, table: 'unused', region: 'us-east-1', ...DEFAULT_STEP_TUNING } },
    );
    expect(finished.status).toBe('STOPPED_EARLY');
    const ended = await store.get(bad);
    expect(ended?.status).toBe('STOPPED_EARLY');
    expect(ended?.metrics).toMatchObject({ final: { loss: 1.05 }, min: { loss: 1.05 }, points: 3 });
  });
});
