import { isBudgetStop } from '../domain/cost';
import { summarizeMetrics, type MetricsSummary } from '../domain/experiment';
import { countEndReasons } from '../domain/recovery';
import { isTerminal, type TerminalStatus } from '../domain/run-status';
import { StatusConflictError } from '../errors';
import type { RecordStepDeps } from './step-deps';
import { describeCause } from './step-event';
import { CaughtErrorSchema, type ExecutionState } from './train-run-state';

export interface FinishResult {
  status: TerminalStatus;
  reason: string;
  /** `Run.<STATUS>` for the Fail state; absent on success. */
  error?: string;
  /** False when the run never got a record (a bare spec that did not validate). */
  recorded: boolean;
}

/**
 * Errors the user fixes before the run can start: the spec, the code bundle, the data, or the
 * dataset volume it names (not pre-warmed, only copy in another AZ or in use, snapshot gone).
 */
const PRECHECK_ERRORS: ReadonlySet<string> = new Set([
  'Run.Invalid',
  'Run.PrecheckFailed',
  'Volume.NotCatalogued',
  'Volume.AzMismatch',
  'Volume.InUse',
  'Snapshot.Missing',
]);

const TERMINAL_BY_RECOVERY: ReadonlySet<string> = new Set(['FAILED_USER', 'FAILED_NO_CAPACITY', 'FAILED_CONTROLLER', 'CANCELLED', 'STOPPED_BUDGET']);

/** The terminal status and reason that the execution state ended with. */
export function outcomeOf(state: ExecutionState): { status: TerminalStatus; reason: string } {
  const recovery = state.recovery;
  let outcome: { status: TerminalStatus; reason: string };
  if (recovery?.action === 'stop' && recovery.status !== undefined && TERMINAL_BY_RECOVERY.has(recovery.status)) {
    outcome = { status: toTerminal(recovery.status), reason: recovery.reason ?? recovery.status };
  } else if (state.error !== undefined) {
    const { Error: name } = state.error;
    const cause = describeCause(state.error.Cause) ?? name;
    if (PRECHECK_ERRORS.has(name)) outcome = { status: 'FAILED_PRECHECKS', reason: cause };
    else if (name === 'Capacity.Unavailable') outcome = { status: 'FAILED_NO_CAPACITY', reason: cause };
    else if (name === 'Run.Cancelled') outcome = { status: 'CANCELLED', reason: cause };
    else outcome = { status: 'FAILED_CONTROLLER', reason: `${name}: ${cause}` };
  } else if (state.finalize !== undefined) {
    outcome = { status: 'SUCCEEDED', reason: `Outputs at ${state.finalize.outputsManifest}` };
  } else {
    outcome = { status: 'FAILED_CONTROLLER', reason: 'The execution ended without an outcome' };
  }
  if (state.releaseError !== undefined) {
    const cause = describeCause(state.releaseError.Cause) ?? state.releaseError.Error;
    outcome.reason += `; releasing resources failed (${cause}), the reconciler will terminate what is left`;
  }
  // ReleaseVolume's Catch: the field is not part of the shared state schema, so it is read here.
  const volumeError = CaughtErrorSchema.safeParse(state.volumeReleaseError);
  if (volumeError.success) {
    const cause = describeCause(volumeError.data.Cause) ?? volumeError.data.Error;
    outcome.reason += `; releasing the dataset volume failed (${cause}), the reconciler reports what is left`;
  }
  return outcome;
}

/**
 * The run's metrics in brief, for `compare` and the sweeps. Best effort: a metrics file that
 * cannot be read must not keep the run from its terminal status.
 */
async function metricsOf(runId: string, deps: RecordStepDeps): Promise<MetricsSummary | undefined> {
  try {
    return summarizeMetrics(await deps.artifacts.readMetrics(runId));
  } catch {
    return undefined;
  }
}

function toTerminal(status: string): TerminalStatus {
  switch (status) {
    case 'FAILED_USER':
    case 'FAILED_NO_CAPACITY':
    case 'CANCELLED':
    case 'STOPPED_BUDGET':
      return status;
    default:
      return 'FAILED_CONTROLLER';
  }
}

/**
 * FinishRun: writes the terminal status and its reason, conditional on the status it read, so
 * a retried call or a racing writer can never move a run out of a terminal status.
 */
export async function finishRun(state: ExecutionState & { runId: string }, deps: RecordStepDeps): Promise<FinishResult> {
  const outcome = outcomeOf(state);
  const result = (status: TerminalStatus, reason: string, recorded: boolean): FinishResult => ({
    status,
    reason,
    error: status === 'SUCCEEDED' ? undefined : `Run.${status}`,
    recorded,
  });
  let metrics: MetricsSummary | undefined;
  for (let tries = 0; tries < 3; tries += 1) {
    const record = await deps.store.get(state.runId);
    if (record === undefined) return result(outcome.status, outcome.reason, false);
    if (isTerminal(record.status)) return result(record.status, record.statusReason ?? record.status, true);
    // The reconciler stops a run over its limits the way a cancel does (checkpoint, then
    // release); its reason on the record says it was the budget.
    // An early stop by a sweep travels the cancel path too; the record says who asked.
    const final =
      outcome.status === 'CANCELLED' && isBudgetStop(record)
        ? { status: 'STOPPED_BUDGET' as const, reason: record.statusReason ?? outcome.reason }
        : outcome.status === 'CANCELLED' && record.cancelRequested?.earlyStop === true
          ? { status: 'STOPPED_EARLY' as const, reason: record.statusReason ?? outcome.reason }
          : outcome;
    try {
      // The counters from the attempts as they ended, so they hold on every path: a stop for an
      // exhausted budget, a failure caught before DecideRecovery, a warning that came too late.
      await deps.store.transition(state.runId, record.status, final.status, {
        statusReason: final.reason,
        ...countEndReasons(record.attempts.map((a) => a.endReason)),
        metrics: (metrics ??= await metricsOf(state.runId, deps)),
      });
      return result(final.status, final.reason, true);
    } catch (error) {
      // Another writer (cancel, an event handler) moved the run between the read and the write.
      if (!(error instanceof StatusConflictError)) throw error;
    }
  }
  throw new StatusConflictError(`Run ${state.runId} kept changing status; could not write ${outcome.status}`);
}
