import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { z } from 'zod';
import { ApiClient } from '../cli/api-client';
import { gatherComparison } from '../cli/commands/experiments';
import * as finishSweep from '../functions/steps/finish-sweep';
import * as prepareTrial from '../functions/steps/prepare-trial';
import * as recordTrial from '../functions/steps/record-trial';
import * as startSweep from '../functions/steps/start-sweep';
import { loadAsl, localLambdaArn } from '../local/asl';
import { startHttpApi } from '../local/http-api';
import { startLocalServices, type LocalServices } from '../local/services';
import { LocalStateMachine, type LocalLambda } from '../local/state-machine-runner';
import { DynamoExperiments } from '../shared/adapters/dynamo-experiments';
import { DynamoRunStore, runsDocumentClient } from '../shared/adapters/dynamo-run-store';
import { DynamoSweeps } from '../shared/adapters/dynamo-sweeps';
import type { RunRecord } from '../shared/domain/run-record';
import { parseRunSpec } from '../shared/domain/run-spec';
import type { Executions } from '../shared/ports/executions';
import { submitSweep } from '../shared/usecases/sweeps';

/**
 * Sweeps at scale (docs/performance.md): what the control plane spends on a sweep of N trials —
 * the sweep machine's state transitions, its Lambda invocations and child executions, and its
 * DynamoDB requests — with the real sweep ASL and step handlers over dynalite and each trial's
 * train-run a stand-in that ends its run at once (a trial's own train-run costs what the
 * transitions section measures, whatever the sweep). And `runctl compare` over an experiment of
 * N runs: the real API route over dynalite, read by the CLI's own paging, pages and time.
 */

const OWNER = 'arn:aws:iam::123456789012:user/bench';
const RUN_TRIAL = 'arn:aws:states:::states:startExecution.sync:2';
const TrialStartSchema = z.object({ Name: z.string(), Input: z.object({ spec: z.object({ hyperparameters: z.record(z.string(), z.string()) }) }) });

export interface SweepFigure {
  trials: number;
  maxParallel: number;
  map: 'inline' | 'distributed';
  transitions: number;
  lambdaInvocations: number;
  childExecutions: number;
  dynamodb: number;
  byCommand: Record<string, number>;
  ms: number;
}

export interface CompareFigure {
  runs: number;
  pages: number;
  dynamodbQueries: number;
  ms: number;
  /** The best run compare ranked first (a check that all runs were read: the best is the last written). */
  best: string | undefined;
}

/** Counts the requests a client sends, by command (one per logical call; SDK retries are not counted). */
function countedDynamo(services: LocalServices, byCommand: Record<string, number>): DynamoDBClient {
  const client = new DynamoDBClient(services.clientConfig.dynamodb);
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? 'unknown';
      byCommand[name] = (byCommand[name] ?? 0) + 1;
      return next(args);
    },
    { step: 'initialize', name: 'benchCountDynamo' },
  );
  return client;
}

const base = {
  name: 'bench',
  code: { bundle: 's3://runctl-bench/bundles/a.tar.gz', entrypoint: 'train.py' },
  instance: { types: 'g5.xlarge' },
  hyperparameters: { epochs: 3 },
};

/** One sweep of `trials` trials through the real sweep machine; trials end at once. */
async function measureSweep(services: LocalServices, trials: number, maxParallel: number): Promise<SweepFigure> {
  const byCommand: Record<string, number> = {};
  const counted = runsDocumentClient(countedDynamo(services, byCommand));
  const deps = { sweeps: new DynamoSweeps(counted, services.table), store: new DynamoRunStore(counted, services.table), clock: () => new Date() };
  // The stand-in train-run writes with a client of its own: its requests are the trial's, not the sweep's.
  const standInStore = new DynamoRunStore(runsDocumentClient(new DynamoDBClient(services.clientConfig.dynamodb)), services.table);
  let lambdaInvocations = 0;
  let childExecutions = 0;
  const counting = (handler: LocalLambda): LocalLambda => async (event, context) => {
    lambdaInvocations += 1;
    return handler(event, context);
  };
  const standInTrial: LocalLambda = async (event) => {
    childExecutions += 1;
    const { Name, Input } = TrialStartSchema.parse(event);
    const loss = Number(Input.spec.hyperparameters.lr);
    await standInStore.transition(Name, 'PENDING', 'SUCCEEDED', { metrics: { final: { loss }, min: { loss }, max: { loss }, points: 3 } });
    return { ExecutionArn: `arn:aws:states:us-east-1:123456789012:execution:train-run:${Name}`, Status: 'SUCCEEDED', Output: { status: 'SUCCEEDED' } };
  };
  const machine = new LocalStateMachine({
    definition: loadAsl('sweep', localLambdaArn),
    lambdas: {
      StartSweepLambdaFunction: counting(startSweep.createHandler(deps)),
      PrepareTrialLambdaFunction: counting(prepareTrial.createHandler(deps)),
      RecordTrialLambdaFunction: counting(recordTrial.createHandler(deps)),
      FinishSweepLambdaFunction: counting(finishSweep.createHandler(deps)),
      [RUN_TRIAL]: standInTrial,
    },
    fastWaits: true,
    stateMachineName: 'sweep',
  });
  let started: ReturnType<LocalStateMachine['start']> | undefined;
  const sweepExecutions: Executions = {
    start: async (name, input) => {
      started = machine.start(input, name);
      return { executionArn: started.executionArn, alreadyStarted: false };
    },
    status: async () => 'RUNNING',
    failTask: async () => false,
    running: async () => new Set<string>(),
  };
  const begin = performance.now();
  // The POST /sweeps use case counts too: it is the sweep's first control-plane request.
  await submitSweep(
    {
      owner: OWNER,
      body: {
        spec: {
          name: `bench-${trials}-${maxParallel}`,
          base,
          search: { random: { lr: 'loguniform(1e-4,1e-1)' }, trials, seed: 1 },
          objective: { metric: 'loss', goal: 'minimize' },
          maxParallel,
        },
      },
    },
    { sweeps: deps.sweeps, sweepExecutions, clock: () => new Date() },
  );
  if (started === undefined) throw new Error('the sweep execution was not started');
  const outcome = await started.outcome;
  const ms = performance.now() - begin;
  if (outcome.status !== 'SUCCEEDED') throw new Error(`the ${trials}-trial sweep ended ${outcome.status}`);
  return {
    trials,
    maxParallel,
    map: started.statesEntered().includes('RunTrialsDistributed') ? 'distributed' : 'inline',
    transitions: started.transitions(),
    lambdaInvocations,
    childExecutions,
    dynamodb: Object.values(byCommand).reduce((sum, n) => sum + n, 0),
    byCommand,
    ms,
  };
}

/** Writes `runs` finished runs into one experiment (each with hyperparameters and a metrics summary). */
async function seedExperiment(services: LocalServices, name: string, runs: number): Promise<void> {
  const documents = runsDocumentClient(new DynamoDBClient(services.clientConfig.dynamodb));
  const store = new DynamoRunStore(documents, services.table);
  const createdAt = new Date(Date.UTC(2026, 0, 1));
  const spec = parseRunSpec({ ...base, experiment: name });
  const write = async (i: number) => {
    const at = new Date(createdAt.getTime() + i * 1000).toISOString();
    // Loss falls with i: the last run written is the best, so a compare that missed a page ranks another first.
    const loss = 1 / (i + 1);
    const record: RunRecord = {
      runId: `r-${name}-${String(i).padStart(6, '0')}`,
      owner: OWNER,
      spec: { ...spec, hyperparameters: { ...spec.hyperparameters, lr: String(loss) } },
      specHash: 'bench',
      status: 'SUCCEEDED',
      createdAt: at,
      updatedAt: at,
      attempts: [],
      costUsd: 0.01,
      interruptions: 0,
      userFailures: 0,
      metrics: { final: { loss, accuracy: 1 - loss }, min: { loss, accuracy: 0 }, max: { loss: 1, accuracy: 1 - loss }, points: 10 },
    };
    await store.create(record);
  };
  // 25 writes in flight: seeding is not what is measured.
  for (let i = 0; i < runs; i += 25) await Promise.all(Array.from({ length: Math.min(25, runs - i) }, (_, k) => write(i + k)));
}

/** `runctl compare` over an experiment of `runs` runs: the CLI's paging against the real route. */
async function measureCompare(services: LocalServices, runs: number): Promise<CompareFigure> {
  const name = `compare-${runs}`;
  await seedExperiment(services, name, runs);
  const byCommand: Record<string, number> = {};
  const documents = runsDocumentClient(countedDynamo(services, byCommand));
  const api = await startHttpApi({
    port: 0,
    experiments: { store: new DynamoRunStore(documents, services.table), experiments: new DynamoExperiments(documents, services.table) },
    identity: OWNER,
  });
  try {
    const context = { client: new ApiClient({ endpoint: new URL(api.url), local: true }), json: true, out: () => undefined, err: () => undefined, pollMs: 1000 };
    const begin = performance.now();
    const comparison = await gatherComparison(context, name, {});
    const ms = performance.now() - begin;
    if (comparison.runs.length !== runs) throw new Error(`compare read ${comparison.runs.length} of ${runs} runs`);
    return { runs, pages: comparison.pages, dynamodbQueries: byCommand.QueryCommand ?? 0, ms, best: comparison.runs[0]?.runId };
  } finally {
    await api.close();
  }
}

/** Sweeps of each size in `trials` (maxParallel 10, inline Map), one past the inline Map's limits, and compare over each size in `runs`. */
export async function measureSweeps(
  root: string,
  sizes: { trials: number[]; distributed: number; runs: number[] } = { trials: [50, 100, 200], distributed: 200, runs: [1000, 5000, 10_000] },
): Promise<{ sweeps: SweepFigure[]; compare: CompareFigure[] }> {
  const services = await startLocalServices({ root, persist: false });
  try {
    const sweeps: SweepFigure[] = [];
    for (const trials of sizes.trials) sweeps.push(await measureSweep(services, trials, 10));
    sweeps.push(await measureSweep(services, sizes.distributed, 50));
    const compare: CompareFigure[] = [];
    for (const runs of sizes.runs) compare.push(await measureCompare(services, runs));
    return { sweeps, compare };
  } finally {
    await services.close();
  }
}
