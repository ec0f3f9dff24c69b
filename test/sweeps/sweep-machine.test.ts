import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as finishSweep from '../../functions/steps/finish-sweep';
import * as prepareTrial from '../../functions/steps/prepare-trial';
import * as recordTrial from '../../functions/steps/record-trial';
import * as startSweep from '../../functions/steps/start-sweep';
import { loadAsl, localLambdaArn } from '../../local/asl';
import { LocalStateMachine, type LocalLambda } from '../../local/state-machine-runner';
import { DynamoExperiments } from '../../shared/adapters/dynamo-experiments';
import { DynamoRunStore } from '../../shared/adapters/dynamo-run-store';
import { DynamoSweeps } from '../../shared/adapters/dynamo-sweeps';
import type { SweepStepDeps } from '../../shared/composition/sweeps';
import { StatusConflictError } from '../../shared/errors';
import type { Executions } from '../../shared/ports/executions';
import type { Compute } from '../../shared/ports/compute';
import { stopSweep } from '../../shared/usecases/sweep-control';
import { submitSweep } from '../../shared/usecases/sweeps';
import { ALICE } from '../support/api-events';
import { createRunsTable, dynamoClient, dynamoDocumentClient } from '../support/aws-clients';
import { startDynalite, type RunningDynalite } from '../support/dynalite';
import { z } from 'zod';

const RUN_TRIAL = 'arn:aws:states:::states:startExecution.sync:2';

const base = {
  name: 'mlp',
  code: { bundle: 's3://runctl-runs/bundles/abc.tar.gz', entrypoint: 'train.py' },
  instance: { types: 'g5.xlarge' },
  hyperparameters: { epochs: 3 },
};

const TrialInputSchema = z.object({
  Name: z.string(),
  Input: z.object({ runId: z.string(), spec: z.object({ hyperparameters: z.record(z.string(), z.string()), limits: z.object({ maxCostUsd: z.number().optional() }) }) }),
});

/**
 * The sweep machine with its real handlers on dynalite. Each trial's train-run execution is a
 * stand-in (the train-run machine has tests of its own): it ends the trial's run record the way
 * FinishRun would, with a cost and a metrics summary, and fails the task unless it SUCCEEDED.
 */
describe('sweep state machine', () => {
  let dynalite: RunningDynalite;
  let deps: SweepStepDeps;
  let experiments: DynamoExperiments;
  let running = 0;
  let mostAtOnce = 0;
  const launched: Array<{ runId: string; hyperparameters: Record<string, string>; maxCostUsd?: number }> = [];
  /** What each stand-in trial does; by default: succeed with loss = lr and cost $0.30. */
  let trialBehaviour: (runId: string, hyperparameters: Record<string, string>) => Promise<'SUCCEEDED' | 'FAILED_USER' | 'CANCELLED'> = async () => 'SUCCEEDED';

  const standInTrial: LocalLambda = async (event) => {
    const { Name, Input } = TrialInputSchema.parse(event);
    launched.push({ runId: Name, hyperparameters: Input.spec.hyperparameters, maxCostUsd: Input.spec.limits.maxCostUsd });
    running += 1;
    mostAtOnce = Math.max(mostAtOnce, running);
    try {
      await new Promise((resolve) => setTimeout(resolve, 20));
      const status = await trialBehaviour(Name, Input.spec.hyperparameters);
      const loss = Number(Input.spec.hyperparameters.lr);
      const current = await deps.store.get(Name);
      if (current !== undefined && current.status !== status) {
        await deps.store.transition(Name, current.status, status, {
          costUsd: 0.3,
          metrics: { final: { loss }, min: { loss }, max: { loss: 1 }, points: 3 },
        });
      }
      if (status !== 'SUCCEEDED') throw Object.assign(new Error(`Run.${status}`), { name: 'States.TaskFailed' });
      return { ExecutionArn: `arn:aws:states:us-east-1:000000000000:execution:train-run:${Name}`, Output: { finish: { status } }, Status: 'SUCCEEDED' };
    } finally {
      running -= 1;
    }
  };

  const machine = () =>
    new LocalStateMachine({
      definition: loadAsl('sweep', localLambdaArn),
      lambdas: {
        StartSweepLambdaFunction: startSweep.createHandler(deps),
        PrepareTrialLambdaFunction: prepareTrial.createHandler(deps),
        RecordTrialLambdaFunction: recordTrial.createHandler(deps),
        FinishSweepLambdaFunction: finishSweep.createHandler(deps),
        [RUN_TRIAL]: standInTrial,
      },
      fastWaits: true,
      stateMachineName: 'sweep',
    });

  /** Submits through the real use case; the sweep machine's "StartExecution" runs it here. */
  async function runSweep(spec: Record<string, unknown>) {
    const started: Array<ReturnType<LocalStateMachine['start']>> = [];
    const sweepExecutions: Executions = {
      start: async (name, input) => {
        const execution = machine().start(input, name);
        started.push(execution);
        return { executionArn: execution.executionArn, alreadyStarted: false };
      },
      status: async () => 'RUNNING',
      failTask: async () => false,
      running: async () => new Set<string>(),
    };
    const { sweep } = await submitSweep({ owner: ALICE, body: { spec } }, { sweeps: deps.sweeps, sweepExecutions, clock: () => new Date() });
    const [execution] = started;
    if (execution === undefined) throw new Error('the sweep execution was not started');
    const outcome = await execution.outcome;
    const final = await deps.sweeps.get(sweep.sweepId);
    return { sweepId: sweep.sweepId, outcome, execution, final };
  }

  beforeAll(async () => {
    dynalite = await startDynalite();
    const table = `sweeps-${Date.now()}`;
    await createRunsTable(dynamoClient(dynalite.endpoint), table);
    const documents = dynamoDocumentClient(dynalite.endpoint);
    deps = { sweeps: new DynamoSweeps(documents, table), store: new DynamoRunStore(documents, table), clock: () => new Date() };
    experiments = new DynamoExperiments(documents, table);
  });

  afterAll(async () => {
    await dynalite.close();
  });

  it('runs every grid point as a trial, at most maxParallel at once, and totals cost and best', async () => {
    launched.length = 0;
    mostAtOnce = 0;
    trialBehaviour = async (_runId, hp) => (hp.lr === '0.3' && hp.batch_size === '64' ? 'FAILED_USER' : 'SUCCEEDED');
    const { sweepId, outcome, execution, final } = await runSweep({
      name: 'grid-search',
      base,
      search: { grid: { lr: [0.3, 0.1], batch_size: [32, 64] } },
      objective: { metric: 'loss', goal: 'minimize' },
      maxParallel: 2,
    });
    expect(outcome.status).toBe('SUCCEEDED');
    expect(execution.statesEntered()).toContain('RunTrialsInline');
    expect(launched.map((l) => l.hyperparameters).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))).toEqual([
      { epochs: '3', lr: '0.1', batch_size: '32' },
      { epochs: '3', lr: '0.1', batch_size: '64' },
      { epochs: '3', lr: '0.3', batch_size: '32' },
      { epochs: '3', lr: '0.3', batch_size: '64' },
    ]);
    expect(mostAtOnce).toBeLessThanOrEqual(2);
    expect(final).toMatchObject({ status: 'SUCCEEDED', trials: 4, launched: 4, finished: 4, skipped: 0 });
    expect(final?.costUsd).toBeCloseTo(1.2);
    expect(final?.best).toMatchObject({ value: 0.1 });
    // Every trial is an ordinary run, in the sweep's experiment, linked to its sweep.
    const runs = await deps.store.listByExperiment(ALICE, 'grid-search');
    expect(runs.items).toHaveLength(4);
    expect(runs.items.every((r) => r.sweep?.sweepId === sweepId)).toBe(true);
    expect(runs.items.map((r) => r.status).sort()).toEqual(['FAILED_USER', 'SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']);
    expect((await experiments.get(ALICE, 'grid-search'))?.runs).toBe(4);
  });

  it('launches no trial that could take the sweep over its budget, and caps each trial at its hold', async () => {
    launched.length = 0;
    trialBehaviour = async () => 'SUCCEEDED';
    const { outcome, final } = await runSweep({
      name: 'budgeted',
      base: { ...base, limits: { maxCostUsd: 0.4 } },
      search: { random: { lr: 'loguniform(1e-4,1e-1)' }, trials: 4, seed: 7 },
      objective: { metric: 'loss' },
      maxParallel: 1,
      maxCostUsd: 1,
    });
    expect(outcome.status).toBe('SUCCEEDED');
    // Holds of $0.40 settle to $0.30 each: $0.30, $0.60, $0.90 pass; a fourth hold would reach $1.30.
    expect(launched).toHaveLength(3);
    expect(launched.every((l) => l.maxCostUsd === 0.4)).toBe(true);
    expect(final).toMatchObject({ status: 'SUCCEEDED', launched: 3, skipped: 1 });
    expect(final?.costUsd).toBeCloseTo(0.9);
    expect(final?.costUsd).toBeLessThanOrEqual(1);
    expect(final?.statusReason).toMatch(/3 trial\(s\) ran, 1 skipped/);
  });

  it('takes the Distributed Map when maxParallel passes what an inline Map runs at once', async () => {
    launched.length = 0;
    const { outcome, execution, final } = await runSweep({
      name: 'wide',
      base,
      search: { grid: { lr: [0.1, 0.2, 0.3] } },
      objective: { metric: 'loss' },
      maxParallel: 50,
    });
    expect(outcome.status).toBe('SUCCEEDED');
    expect(execution.statesEntered()).toContain('RunTrialsDistributed');
    expect(final).toMatchObject({ status: 'SUCCEEDED', finished: 3 });
  });

  it('stops: running trials are stopped through their runs, no further trial launches, the sweep ends STOPPED', async () => {
    launched.length = 0;
    const noCompute: Compute = {
      launch: async () => { throw new Error('not used'); },
      launchNodes: async () => { throw new Error('not used'); },
      tagAttempt: async () => { throw new Error('not used'); },
      readiness: async () => { throw new Error('not used'); },
      instanceStates: async () => { throw new Error('not used'); },
      terminate: async () => undefined,
      sendCommand: async () => { throw new Error('not used'); },
      commandResult: async () => { throw new Error('not used'); },
      listTaggedInstances: async () => [],
    };
    trialBehaviour = async (runId) => {
      const run = await deps.store.get(runId);
      if (run === undefined || run.sweep === undefined) throw new Error(`no run ${runId}`);
      await deps.store.transition(runId, 'PENDING', 'VALIDATING');
      await stopSweep(
        { owner: ALICE, sweepId: run.sweep.sweepId },
        { ...deps, executions: { start: async () => ({ executionArn: '', alreadyStarted: false }), status: async () => 'RUNNING', failTask: async () => true, running: async () => new Set<string>() }, compute: noCompute },
      );
      expect((await deps.store.get(runId))?.status).toBe('CANCELLING');
      return 'CANCELLED';
    };
    const { outcome, final } = await runSweep({
      name: 'stopped',
      base,
      search: { grid: { lr: [0.1, 0.2, 0.3] } },
      objective: { metric: 'loss' },
      maxParallel: 1,
    });
    expect(outcome.status).toBe('SUCCEEDED');
    expect(launched).toHaveLength(1);
    expect(final).toMatchObject({ status: 'STOPPED', launched: 1, skipped: 2 });
    await expect(deps.sweeps.transition(final?.sweepId ?? '', ['RUNNING'], 'STOPPING')).rejects.toBeInstanceOf(StatusConflictError);
  });
});
