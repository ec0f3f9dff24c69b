/**
 * Run statuses and the transitions between them. The Step Functions execution is the source
 * of truth for where a run is; the status on the run record is the index that the API, the
 * event handlers and the reconciler read, and every write of it is conditional on the status
 * the writer expects (see the run store), using `canTransition` to decide what is legal.
 */

export const LIVE_STATUSES = [
  /** Accepted by the API or a schedule; the execution is starting. */
  'PENDING',
  /** ValidateRun is checking the spec and the code bundle. */
  'VALIDATING',
  /** A `docker: auto`/`docker.build` run's image is being built (build-image), before any instance. */
  'BUILDING_IMAGE',
  /** ProvisionInstance is asking EC2 for an instance. */
  'PROVISIONING',
  /** Every allowed type/AZ is out of capacity; the run retries later and says when. */
  'WAITING_FOR_CAPACITY',
  /** The instance exists; waiting for EC2 `running` and the SSM agent `Online`. */
  'STARTING',
  /** A dataset volume is being attached and mounted. */
  'ATTACHING_VOLUME',
  /** The data sources are being copied onto the instance. */
  'PREFETCHING',
  /** The training script runs; the agent heartbeats and syncs checkpoints. */
  'TRAINING',
  /** A checkpoint was asked for (spot warning, cancel, budget); the agent is uploading it. */
  'CHECKPOINTING',
  /** The last attempt ended recoverably; the old instance is released and a new attempt starts. */
  'RECOVERING',
  /** Training exited 0; the final checkpoint and outputs are being verified in S3. */
  'FINALIZING',
  /** A cancel was asked for; the run checkpoints (unless forced), then releases everything. */
  'CANCELLING',
] as const;

export const TERMINAL_STATUSES = [
  /** The script exited 0 and its outputs and final checkpoint are in S3. */
  'SUCCEEDED',
  /** The script failed on a healthy instance more often than `recovery.maxRestartsOnError` allows. */
  'FAILED_USER',
  /** The run could not start: malformed spec, missing code bundle, missing or denied data. */
  'FAILED_PRECHECKS',
  /** No capacity within the spec's limits, or interruptions exhausted `recovery.maxInterruptions`. */
  'FAILED_NO_CAPACITY',
  /** runctl itself failed (a bug or an AWS error no retry fixed); resources were released. */
  'FAILED_CONTROLLER',
  /** The owner cancelled the run; everything was released. */
  'CANCELLED',
  /** The run passed `limits.maxRuntime` or `limits.maxCostUsd`; checkpointed and released. */
  'STOPPED_BUDGET',
  /**
   * A sweep's early-stopping rule (docs/sweeps.md) judged the trial unpromising: it was stopped
   * the way a cancel stops a run, so its checkpoint is kept and can be resumed or registered.
   */
  'STOPPED_EARLY',
] as const;

export const RUN_STATUSES = [...LIVE_STATUSES, ...TERMINAL_STATUSES] as const;

export type LiveStatus = (typeof LIVE_STATUSES)[number];
export type TerminalStatus = (typeof TERMINAL_STATUSES)[number];
export type RunStatus = LiveStatus | TerminalStatus;

const terminal: ReadonlySet<string> = new Set(TERMINAL_STATUSES);
const known: ReadonlySet<string> = new Set(RUN_STATUSES);

/** True for a status no run ever leaves. */
export function isTerminal(status: RunStatus): status is TerminalStatus {
  return terminal.has(status);
}

/** Narrows an arbitrary string to a run status. */
export function isRunStatus(value: string): value is RunStatus {
  return known.has(value);
}

/** Statuses reachable through the normal forward path of one attempt. */
const FORWARD: Record<LiveStatus, readonly LiveStatus[]> = {
  PENDING: ['VALIDATING'],
  VALIDATING: ['BUILDING_IMAGE', 'PROVISIONING'],
  BUILDING_IMAGE: ['PROVISIONING'],
  PROVISIONING: ['WAITING_FOR_CAPACITY', 'STARTING'],
  WAITING_FOR_CAPACITY: ['PROVISIONING', 'STARTING'],
  STARTING: ['ATTACHING_VOLUME', 'PREFETCHING', 'TRAINING'],
  ATTACHING_VOLUME: ['PREFETCHING', 'TRAINING'],
  PREFETCHING: ['TRAINING'],
  TRAINING: ['CHECKPOINTING', 'FINALIZING'],
  CHECKPOINTING: ['TRAINING', 'FINALIZING'],
  RECOVERING: ['PROVISIONING'],
  FINALIZING: [],
  CANCELLING: [],
};

/**
 * Whether a run may move from `from` to `to`. Terminal statuses are final. Any live status may
 * go to any terminal status (a Catch can end the run anywhere), to RECOVERING once an instance
 * may exist (an attempt can be lost at any point), and to CANCELLING (the owner can cancel at
 * any time). A status may be rewritten with itself so that a retried step is harmless.
 */
export function canTransition(from: RunStatus, to: RunStatus): boolean {
  if (isTerminal(from)) return false;
  if (from === to) return true;
  if (isTerminal(to)) return true;
  if (to === 'CANCELLING') return true;
  if (from === 'CANCELLING') return false;
  if (to === 'RECOVERING') return from !== 'PENDING' && from !== 'VALIDATING' && from !== 'BUILDING_IMAGE';
  return FORWARD[from].includes(to);
}
