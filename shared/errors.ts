/**
 * Named errors. Where an error can leave a Lambda task, its `name` is the exact string the
 * state machines match in `ErrorEquals`, so the ASL and the code cannot drift apart silently.
 */

export class RunctlError extends Error {
  override name: string = 'RunctlError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The run spec (or another input) is malformed; the message says which field and what to fix. */
export class RunInvalidError extends RunctlError {
  override name = 'Run.Invalid';
  constructor(
    message: string,
    readonly issues: readonly FieldIssue[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface FieldIssue {
  /** Dotted path of the field, e.g. `instance.types.0`. */
  path: string;
  message: string;
}

/** A precondition outside the spec failed: code bundle missing, data source missing or denied. */
export class PrecheckFailedError extends RunctlError {
  override name = 'Run.PrecheckFailed';
}

/** No instance of any allowed type could be had in any allowed subnet. */
export class CapacityUnavailableError extends RunctlError {
  override name = 'Capacity.Unavailable';
}

/** The instance did not become running with its SSM agent online in time. */
export class InstanceNotReadyError extends RunctlError {
  override name = 'Instance.NotReady';
}

/** The instance went away (terminated, stopped) while an attempt was live on it. */
export class InstanceLostError extends RunctlError {
  override name = 'Instance.Lost';
}

/** The agent checkpointed on a spot interruption notice; the run resumes elsewhere. */
export class SpotInterruptedError extends RunctlError {
  override name = 'Spot.Interrupted';
}

/** The training script exited non-zero on a healthy instance. */
export class TrainingFailedError extends RunctlError {
  override name = 'Training.Failed';
}

/** AWS asked us to slow down; retried by the SDK, then by the state machine. */
export class ThrottledError extends RunctlError {
  override name = 'Aws.Throttled';
}

/** An AWS call failed in a way no retry will fix (permissions, bad request). */
export class AwsCallFailedError extends RunctlError {
  override name = 'Aws.CallFailed';
}

/** A conditional write lost: the record was not in the status the caller expected. */
export class StatusConflictError extends RunctlError {
  override name = 'Run.StatusConflict';
  constructor(
    message: string,
    options?: { cause?: unknown; actual?: string },
  ) {
    super(message, options);
    this.actual = options?.actual;
  }
  /** The status the record was found in, when the write was refused for that reason. */
  readonly actual: string | undefined;
}

/** The thing asked for does not exist (or belongs to someone else, which looks the same). */
export class NotFoundError extends RunctlError {
  override name = 'NotFound';
}

/** The caller is signed in but may not do this (e.g. an instance asking for another run). */
export class ForbiddenError extends RunctlError {
  override name = 'Forbidden';
}

/** A request conflicts with what exists, e.g. a client token reused with another spec. */
export class ConflictError extends RunctlError {
  override name = 'Conflict';
}

/** The owner cancelled the run; raised by a step that finds the run CANCELLING. */
export class RunCancelledError extends RunctlError {
  override name = 'Run.Cancelled';
}

/**
 * AwaitReplacement has nothing to wait for: the replacement launched on the warning is already
 * ready with its data, or was given up. The machine goes straight on to adopt it (or launch).
 */
export class ReplacementSettledError extends RunctlError {
  override name = 'Replacement.Settled';
}
