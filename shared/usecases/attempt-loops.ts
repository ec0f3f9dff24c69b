import { maxAttempts, shareAttemptLoops, type AttemptLoops } from '../domain/history-budget';
import type { RunSpec } from '../domain/run-spec';
import type { StepConfig } from './step-deps';

/** The train-run machine's first WaitForInstance pause (StartReadinessChecks sets it). */
export const READINESS_BASE_SECONDS = 15;
/** WaitForVolume's and WaitForPrefetch's first pause. */
export const COMMAND_POLL_BASE_SECONDS = 10;
/** SSM's default command timeout is an hour; big datasets need longer. */
export const PREFETCH_TIMEOUT_SECONDS = 6 * 3600;
/** Most mounts finish in minutes; reading a multi-TiB restored volume once can take hours. */
export const MOUNT_TIMEOUT_SECONDS = 12 * 3600;
/** A poll loop of an SSM command outlasts the command's own timeout, so SSM ends it first. */
const COMMAND_WINDOW_MARGIN_SECONDS = 600;

/**
 * The bounds of one attempt's polling loops for this run: what each loop would want on its own
 * (the configured poll counts, the capacity wait of the spec), shared out of the run's event
 * budget, which depends on how many attempts the spec allows (shared/domain/history-budget.ts).
 */
export function attemptLoops(spec: RunSpec, config: Pick<StepConfig, 'readinessMaxChecks' | 'capacityRetrySeconds' | 'prefetchMaxPolls'>): AttemptLoops {
  const capacityWindow = spec.recovery.maxWaitForCapacity;
  const volumeWindow = MOUNT_TIMEOUT_SECONDS + COMMAND_WINDOW_MARGIN_SECONDS;
  return shareAttemptLoops(
    {
      readiness: {
        baseSeconds: READINESS_BASE_SECONDS,
        windowSeconds: config.readinessMaxChecks * READINESS_BASE_SECONDS,
        maxPolls: config.readinessMaxChecks,
      },
      // One try more than the window holds at the base pause: the last try comes at the limit.
      capacity: {
        baseSeconds: config.capacityRetrySeconds,
        windowSeconds: capacityWindow,
        maxPolls: Math.ceil(capacityWindow / config.capacityRetrySeconds) + 1,
      },
      volume:
        spec.volume === undefined
          ? undefined
          : { baseSeconds: COMMAND_POLL_BASE_SECONDS, windowSeconds: volumeWindow, maxPolls: Math.ceil(volumeWindow / COMMAND_POLL_BASE_SECONDS) },
      prefetch:
        spec.data.length === 0
          ? undefined
          : {
              baseSeconds: COMMAND_POLL_BASE_SECONDS,
              windowSeconds: config.prefetchMaxPolls * COMMAND_POLL_BASE_SECONDS,
              maxPolls: config.prefetchMaxPolls,
            },
    },
    maxAttempts(spec.recovery),
  );
}
