import { z } from 'zod';
import * as evaluateSweepsHandler from '../functions/events/evaluate-sweeps';
import * as finishSweep from '../functions/steps/finish-sweep';
import * as prepareTrial from '../functions/steps/prepare-trial';
import * as recordTrial from '../functions/steps/record-trial';
import * as startSweep from '../functions/steps/start-sweep';
import type { SweepStepDeps } from '../shared/composition/sweeps';
import type { Artifacts } from '../shared/ports/artifacts';
import type { SweepRecord } from '../shared/ports/sweeps';
import type { SweepControlDeps } from '../shared/usecases/sweep-control';
import type { SubmitSweepDeps } from '../shared/usecases/sweeps';
import { loadAsl, localLambdaArn } from './asl';
import { localLambdaContext } from './event-router';
import { LocalExecutions } from './runtime-adapters';
import { LocalStateMachine, type LocalLambda } from './state-machine-runner';
import type { TaskCallbackHandler } from './task-callback-server';

/**
 * Sweeps on the local backend: `statemachines/sweep.asl.json` in aws-local-stepfunctions with its
 * real step handlers, each trial's RunTrial (`startExecution.sync:2`) starting a real train-run
 * execution of this process and waiting for it, and the evaluate-sweeps schedule as a timer that
 * calls the real handler. Where this differs from AWS is in docs/sweeps.md ("On the local backend").
 */

/** The resource of RunTrial (and of its Distributed Map copy). */
const START_EXECUTION_SYNC = 'arn:aws:states:::states:startExecution.sync:2';
const StartExecutionSchema = z.object({ StateMachineArn: z.string(), Name: z.string().min(1), Input: z.unknown() });

export interface LocalSweepsOptions {
  steps: SweepStepDeps;
  control: SweepControlDeps & { artifacts: Pick<Artifacts, 'readMetrics'> };
  /** The train-run executions of the backend: a trial is one of them. */
  trainRuns: LocalExecutions;
  /** Where task callbacks go (the sweep machine waits on none; the executions port wants one). */
  callbacks: TaskCallbackHandler;
  region: string;
  /** How often the early-stopping rule runs (AWS: `rate(1 minute)`; here every 2 s by default). */
  evaluateEveryMs?: number;
  retryIntervalScale: number;
}

export class LocalSweeps {
  /** Executions of the sweep machine, by sweep id. */
  readonly executions: LocalExecutions;
  private readonly timer: NodeJS.Timeout;
  private evaluating: Promise<unknown> | undefined;

  constructor(private readonly options: LocalSweepsOptions) {
    const machine = new LocalStateMachine({
      definition: loadAsl('sweep', localLambdaArn),
      lambdas: {
        StartSweepLambdaFunction: startSweep.createHandler(options.steps),
        PrepareTrialLambdaFunction: prepareTrial.createHandler(options.steps),
        RecordTrialLambdaFunction: recordTrial.createHandler(options.steps),
        FinishSweepLambdaFunction: finishSweep.createHandler(options.steps),
        [START_EXECUTION_SYNC]: this.runTrial,
      },
      stateMachineName: 'sweep',
      region: options.region,
      retryIntervalScale: options.retryIntervalScale,
    });
    this.executions = new LocalExecutions((sweepId, input) => machine.start(input, sweepId), options.callbacks);
    const evaluate = evaluateSweepsHandler.createHandler(() => options.control);
    // A pass that outlasts the interval is not stacked: the next tick is skipped.
    this.timer = setInterval(() => {
      if (this.evaluating !== undefined) return;
      this.evaluating = Promise.resolve(evaluate({ source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} }, localLambdaContext('evaluate-sweeps', options.region)))
        .catch((error: unknown) => console.error('local backend: evaluate-sweeps failed', error))
        .finally(() => {
          this.evaluating = undefined;
        });
    }, options.evaluateEveryMs ?? 2000);
    this.timer.unref();
  }

  /** What POST /sweeps needs: the sweep machine's executions are this process's. */
  submitDeps(): SubmitSweepDeps {
    return { sweeps: this.options.steps.sweeps, sweepExecutions: this.executions, clock: this.options.steps.clock };
  }

  /** Resolves with the final sweep once its execution has ended. */
  async waitForSweep(sweepId: string): Promise<SweepRecord> {
    const execution = this.executions.execution(sweepId);
    if (execution === undefined) throw new Error(`No execution of sweep ${sweepId} runs in this process`);
    await execution.outcome;
    const sweep = await this.options.steps.sweeps.get(sweepId);
    if (sweep === undefined) throw new Error(`Sweep ${sweepId} is gone`);
    return sweep;
  }

  /**
   * RunTrial: starts the trial's train-run execution (named after its run id, so a second start
   * finds the first) and answers as `startExecution.sync:2` does — the child's description on
   * success, States.TaskFailed with it as the cause otherwise.
   */
  private readonly runTrial: LocalLambda = async (event) => {
    const request = StartExecutionSchema.parse(event);
    await this.options.trainRuns.start(request.Name, request.Input);
    const execution = this.options.trainRuns.execution(request.Name);
    if (execution === undefined) throw new Error(`train-run execution ${request.Name} was not recorded`);
    const outcome = await execution.outcome;
    const description = { ExecutionArn: execution.executionArn, Status: outcome.status === 'SUCCEEDED' ? 'SUCCEEDED' : outcome.status === 'ABORTED' ? 'ABORTED' : 'FAILED' };
    if (outcome.status === 'SUCCEEDED') return { ...description, Output: outcome.output };
    const failure = outcome.status === 'FAILED' ? { Error: outcome.error, Cause: outcome.cause } : { Error: 'States.Aborted', Cause: 'The execution was stopped' };
    throw Object.assign(new Error(JSON.stringify({ ...description, ...failure })), { name: 'States.TaskFailed' });
  };

  /** Stops the schedule and every sweep execution (their trials are the backend's to stop). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    for (const execution of this.executions.all()) execution.abort();
    await this.evaluating;
  }
}
