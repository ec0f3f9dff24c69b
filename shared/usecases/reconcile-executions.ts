import type { RunRecord } from '../domain/run-record';
import { isTerminal } from '../domain/run-status';
import { StatusConflictError } from '../errors';
import type { TaggedInstance } from '../ports/compute';
import type { ExecutionStatus } from '../ports/executions';
import type { ReconcileDeps } from './reconcile';

/** A live run whose execution had ended without finishing it, and what the pass did about it. */
export interface DeadExecution {
  runId: string;
  executionArn: string;
  /** The execution's status; `GONE` when Step Functions no longer knows it. */
  executionStatus: ExecutionStatus | 'GONE';
  terminated: string[];
}

/**
 * The execution is the source of truth for where a run is. One that ended while its record is
 * still live (it outlived its history, was stopped by hand, or hit its own timeout) ran past
 * every Catch: nothing will release the run's instance or write its end. One listing of the
 * running executions per pass; a live run whose execution is not among them is confirmed with
 * DescribeExecution (it may have started after the listing), and a dead one has its instances terminated, its task token
 * cleared and its record ended FAILED_CONTROLLER with the reason. The run is dropped from `runs`,
 * so the rest of the pass treats its instances as nobody's.
 */
export async function releaseDeadExecutions(
  runs: Map<string, RunRecord>,
  instances: readonly TaggedInstance[],
  deps: Pick<ReconcileDeps, 'store' | 'compute' | 'executions' | 'logger'>,
  guarded: (step: string, runId: string | undefined, work: () => Promise<void>) => Promise<void>,
): Promise<DeadExecution[]> {
  const dead: DeadExecution[] = [];
  const withExecution = [...runs.values()].filter((run) => run.executionArn !== undefined);
  if (withExecution.length === 0) return dead;
  let running: Set<string> | undefined;
  await guarded('list-executions', undefined, async () => {
    running = await deps.executions.running();
  });
  // Without the listing, nothing is judged dead this pass.
  if (running === undefined) return dead;
  for (const run of withExecution) {
    const executionArn = run.executionArn;
    if (executionArn === undefined || running.has(executionArn)) continue;
    await guarded('check-execution', run.runId, async () => {
      const status = await deps.executions.status(executionArn);
      if (status === 'RUNNING') return;
      // The listing may be minutes old: a run that FinishRun ended meanwhile is not ours to end.
      const current = await deps.store.get(run.runId);
      if (current === undefined || isTerminal(current.status)) {
        runs.delete(run.runId);
        return;
      }
      const executionStatus = status ?? 'GONE';
      const terminated: string[] = [];
      for (const instance of instances) {
        if (instance.runId !== run.runId || instance.helper !== undefined || instance.state === 'shutting-down') continue;
        await deps.compute.terminate(instance.instanceId);
        terminated.push(instance.instanceId);
      }
      if (current.taskToken !== undefined) await deps.store.clearTaskToken(run.runId, current.taskToken);
      if (current.replacementToken !== undefined) await deps.store.clearReplacementToken(run.runId, current.replacementToken);
      const reason =
        `The run's execution ${executionStatus === 'GONE' ? 'no longer exists' : `ended ${executionStatus}`} while the run was ` +
        `${current.status}; runctl released its instances${terminated.length > 0 ? ` (${terminated.join(', ')})` : ''}`;
      try {
        await deps.store.transition(run.runId, current.status, 'FAILED_CONTROLLER', { statusReason: reason });
      } catch (error) {
        // Moved on since the read (a late step of the same run): the next pass looks again.
        if (!(error instanceof StatusConflictError)) throw error;
      }
      runs.delete(run.runId);
      dead.push({ runId: run.runId, executionArn, executionStatus, terminated });
      deps.logger?.warn('Ended a run whose execution had died', { runId: run.runId, executionArn, executionStatus, terminated });
    });
  }
  return dead;
}
