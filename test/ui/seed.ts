import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { MetricsSummary } from '../../shared/domain/experiment';
import { specHash } from '../../shared/domain/run-identity';
import type { NodeState, RunRecord } from '../../shared/domain/run-record';
import { parseRunSpec } from '../../shared/domain/run-spec';
import type { RunStatus } from '../../shared/domain/run-status';
import type { Executions } from '../../shared/ports/executions';
import { prepareTrial, recordTrial, startSweep, submitSweep } from '../../shared/usecases/sweeps';
import { LOCAL_OWNER } from '../../local/secrets';
import type { RunningDev } from '../../local/dev';
import type { ApiClient } from '../../cli/api-client';

/**
 * Experiments, a sweep and a model for the dashboard's page tests, written through the local
 * backend's own stores and use cases (the sweep through submitSweep, StartSweep, PrepareTrial and
 * RecordTrial; the model through the API's register and promote routes) instead of training:
 * the records are the ones a real sweep and a real run would leave, in seconds.
 */

/** A hyperparameter value and an output file name holding markup: the pages must show them as text. */
export const HOSTILE_VALUE = '<img src=x onerror="window.__xss=\'hp\'">';
export const HOSTILE_FILE = '<img src=x onerror="window.__xss=\'file\'">.txt';

export interface Seeded {
  /** A finished two-node run whose node 1 was replaced after a warning. */
  nodesRun: string;
  sweepId: string;
  /** Trial number → run id. */
  trialRuns: string[];
  compare: { experiment: string; runs: string[] };
  model: { name: string; runId: string; outputs: Array<{ path: string; size: number }> };
}

/** The statuses a run passes through from PENDING to TRAINING. */
const TO_TRAINING: readonly RunStatus[] = ['VALIDATING', 'PROVISIONING', 'STARTING', 'TRAINING'];

const summary = (final: Record<string, number>, min: Record<string, number>, max: Record<string, number>, points = 10): MetricsSummary => ({ final, min, max, points });

export async function seedResearch(dev: RunningDev, client: ApiClient): Promise<Seeded> {
  const { store, services, s3 } = dev.backend;
  const bucket = services.bucket;
  const bundle = `s3://${bucket}/bundles/${'a'.repeat(64)}.tar.gz`;
  const { sweeps } = dev.backend.sweepDeps();
  const clock = () => new Date();
  const started: Executions = {
    start: async (name) => ({ executionArn: `arn:aws:states:us-east-1:000000000000:execution:runctl-local-sweep:${name}`, alreadyStarted: false }),
    running: async () => new Set(),
    status: async () => 'RUNNING',
    failTask: async () => false,
  };

  // A sweep of six trials, two at a time, $1 in all: each trial holds $0.50, so a third trial
  // prepared while two run is skipped by the budget.
  const { sweep } = await submitSweep(
    {
      owner: LOCAL_OWNER,
      body: {
        spec: {
          name: 'lr-search',
          base: { name: 'mlp', code: { bundle, entrypoint: 'train.py' }, instance: { types: ['c7i.large'] }, hyperparameters: { epochs: 5 } },
          search: { grid: { lr: [0.1, 0.01, 0.001], batch_size: [32, 64] } },
          objective: { metric: 'loss', goal: 'minimize' },
          maxParallel: 2,
          maxCostUsd: 1,
          earlyStopping: { rule: 'median', stepKey: 'epoch', minSteps: 2, minTrials: 1 },
        },
      },
    },
    { sweeps, sweepExecutions: started, clock },
  );
  await startSweep({ sweepId: sweep.sweepId }, { sweeps });
  const deps = { sweeps, store, clock };
  const finish = async (runId: string, to: RunStatus, patch: { costUsd: number; metrics: MetricsSummary; statusReason: string }) => {
    await walk(runId, TO_TRAINING);
    // Ended as the train-run machine ends them: through FINALIZING, or a cancel's CANCELLING.
    if (to === 'SUCCEEDED') await walk(runId, ['FINALIZING']);
    if (to === 'STOPPED_EARLY') await walk(runId, ['CANCELLING']);
    if (to !== 'TRAINING') await store.transition(runId, (await store.get(runId))?.status ?? 'TRAINING', to, patch);
  };
  const trialRuns: string[] = [];
  for (const trial of [0, 1, 2]) trialRuns.push((await prepareTrial({ sweepId: sweep.sweepId, trial }, deps)).runId);
  await finish(trialRuns[0] ?? '', 'SUCCEEDED', { costUsd: 0.12, metrics: summary({ loss: 0.31 }, { loss: 0.3 }, { loss: 2.1 }), statusReason: 'Training finished' });
  await finish(trialRuns[1] ?? '', 'STOPPED_EARLY', {
    costUsd: 0.05,
    metrics: summary({ loss: 1.9 }, { loss: 1.8 }, { loss: 2.3 }, 2),
    statusReason: `Stopped early by the median rule of sweep ${sweep.sweepId}: best loss 1.8 by epoch 2, median of 1 other trial(s) 0.9`,
  });
  for (const trial of [0, 1]) await recordTrial({ sweepId: sweep.sweepId, trial }, deps);
  trialRuns.push((await prepareTrial({ sweepId: sweep.sweepId, trial: 3 }, deps)).runId);
  await finish(trialRuns[3] ?? '', 'SUCCEEDED', { costUsd: 0.11, metrics: summary({ loss: 0.09 }, { loss: 0.08 }, { loss: 2.2 }), statusReason: 'Training finished' });
  await recordTrial({ sweepId: sweep.sweepId, trial: 3 }, deps);
  trialRuns.push((await prepareTrial({ sweepId: sweep.sweepId, trial: 4 }, deps)).runId);
  // Trial 4 still trains; trial 5 is not launched yet.
  await finish(trialRuns[4] ?? '', 'TRAINING', { costUsd: 0, metrics: summary({}, {}, {}), statusReason: '' });

  // An experiment of plain runs, compared by accuracy; one hyperparameter value holds markup.
  const compare = 'optimizers';
  const runs: string[] = [];
  const plain = [
    { optimizer: 'adam', lr: '0.001', acc: 0.91, loss: 0.25 },
    { optimizer: HOSTILE_VALUE, lr: '0.01', acc: 0.62, loss: 0.9 },
    { optimizer: 'sgd', lr: '0.1', acc: 0.95, loss: 0.2 },
  ];
  for (const [i, p] of plain.entries()) {
    const runId = `r-seed${String(i).padStart(11, '0')}`;
    await createRun(runId, { name: `opt-${i}`, experiment: compare, hyperparameters: { optimizer: p.optimizer, lr: p.lr } }, 'SUCCEEDED', {
      costUsd: 0.02 * (i + 1),
      metrics: summary({ acc: p.acc, loss: p.loss }, { acc: p.acc - 0.3, loss: p.loss }, { acc: p.acc, loss: p.loss + 1 }),
    });
    runs.push(runId);
  }

  // A finished run with outputs, registered twice as model "mnist": version 1 in production, 2 in staging.
  const modelRun = 'r-seedmodel000001';
  await createRun(modelRun, { name: 'mnist-train', hyperparameters: { epochs: 3 }, data: [{ source: 's3://datasets/mnist/', target: '/data' }] }, 'SUCCEEDED', {
    costUsd: 0.4,
    metrics: summary({ loss: 0.05, acc: 0.99 }, { loss: 0.05, acc: 0.2 }, { loss: 2, acc: 0.99 }),
  });
  const outputs = [
    { path: 'model/weights.bin', body: Buffer.alloc(3 * 1024 * 1024 + 17, 7) },
    { path: HOSTILE_FILE, body: Buffer.from('text, not markup') },
  ];
  const putOutput = (o: { path: string; body: Buffer }) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: `runs/${modelRun}/outputs/${o.path}`, Body: o.body }));
  await putOutput(outputs[0] ?? { path: 'missing', body: Buffer.alloc(0) });
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: `runs/${modelRun}/outputs/_manifest.json`,
      Body: JSON.stringify({ uri: `s3://${bucket}/runs/${modelRun}/outputs/`, attempt: 1, files: outputs.map((o) => ({ key: o.path, bytes: o.body.length })), bytes: outputs.reduce((s, o) => s + o.body.length, 0) }),
    }),
  );
  for (let v = 0; v < 2; v += 1) await expectOk(client.send('POST', '/models/mnist/versions', { body: { runId: modelRun } }));
  await expectOk(client.send('POST', '/models/mnist/promote', { body: { version: 1, stage: 'production' } }));
  await expectOk(client.send('POST', '/models/mnist/promote', { body: { version: 2, stage: 'staging' } }));
  // Written after the versions were registered: s3rver's CopyObject does not decode every
  // character of a copy source, so the file with markup in its name stays out of the model.
  await putOutput(outputs[1] ?? { path: 'missing', body: Buffer.alloc(0) });

  // A two-node run whose node 1 was warned: attempt 2 kept node 0 and replaced node 1.
  const nodesRun = 'r-seednodes000001';
  {
    const spec = parseRunSpec({ name: 'ddp-rings', code: { bundle, entrypoint: 'train.py' }, instance: { types: ['c7i.large'] }, nodes: 2 });
    const at = (minutes: number) => new Date(Date.now() - (30 - minutes) * 60_000).toISOString();
    const node = (rank: number, instanceId: string, launchedForAttempt: number, extra: Partial<NodeState> = {}): NodeState => ({
      rank, instanceId, instanceType: 'c7i.large', availabilityZone: 'local-1a', spot: true, launchedForAttempt, launchedAt: at(0), ...extra,
    });
    const kept = node(0, 'i-local0000aaaa', 1);
    await store.create({
      runId: nodesRun, owner: LOCAL_OWNER, spec, specHash: specHash(spec), status: 'SUCCEEDED', createdAt: at(0), updatedAt: at(20),
      costUsd: 0.1, interruptions: 1, userFailures: 0,
      attempts: [
        { attempt: 1, instanceId: kept.instanceId, instanceType: 'c7i.large', availabilityZone: 'local-1a', spot: true, startedAt: at(0), endedAt: at(10), endReason: 'SPOT_INTERRUPTED',
          nodes: [kept, node(1, 'i-local0000bbbb', 1, { warnedAt: at(9), releasedAt: at(10) })] },
        { attempt: 2, instanceId: kept.instanceId, instanceType: 'c7i.large', availabilityZone: 'local-1a', spot: true, startedAt: at(10), endedAt: at(20), endReason: 'SUCCEEDED',
          nodes: [{ ...kept, outcome: { kind: 'SUCCEEDED', at: at(20) }, releasedAt: at(20) }, node(1, 'i-local0000cccc', 2, { outcome: { kind: 'SUCCEEDED', at: at(20) }, releasedAt: at(20) })] },
      ],
    });
  }

  return {
    nodesRun,
    sweepId: sweep.sweepId,
    trialRuns,
    compare: { experiment: compare, runs },
    model: { name: 'mnist', runId: modelRun, outputs: outputs.map((o) => ({ path: o.path, size: o.body.length })) },
  };

  async function walk(runId: string, through: readonly RunStatus[]) {
    for (const to of through) await store.transition(runId, (await store.get(runId))?.status ?? 'PENDING', to);
  }

  async function createRun(runId: string, input: Record<string, unknown>, status: RunStatus, patch: { costUsd: number; metrics: MetricsSummary }) {
    const spec = parseRunSpec({ code: { bundle, entrypoint: 'train.py' }, instance: { types: ['c7i.large'] }, ...input });
    const now = new Date().toISOString();
    const record: RunRecord = { runId, owner: LOCAL_OWNER, spec, specHash: specHash(spec), status: 'PENDING', createdAt: now, updatedAt: now, attempts: [], costUsd: 0, interruptions: 0, userFailures: 0 };
    await store.create(record);
    await walk(runId, [...TO_TRAINING, 'FINALIZING']);
    await store.transition(runId, 'FINALIZING', status, { ...patch, statusReason: 'Training finished' });
  }
}

async function expectOk(answer: Promise<{ status: number; text: string }>): Promise<void> {
  const { status, text } = await answer;
  if (status >= 300) throw new Error(`Seeding failed: ${status} ${text}`);
}
