import type { RunSpec } from './run-spec';
import type { RunStatus } from './run-status';

/** Why an attempt ended. */
export type AttemptEndReason =
  | 'SUCCEEDED'
  | 'SPOT_INTERRUPTED'
  | 'INSTANCE_LOST'
  | 'HEARTBEAT_TIMEOUT'
  | 'NOT_READY'
  | 'TRAINING_FAILED'
  | 'CANCELLED'
  | 'BUDGET'
  | 'CONTROLLER_ERROR';

/** One attempt: one instance, from launch to release. */
export interface Attempt {
  /** 1-based attempt number; also the suffix of the RunInstances ClientToken. */
  attempt: number;
  instanceId?: string;
  instanceType?: string;
  availabilityZone?: string;
  spot: boolean;
  /** USD per hour the attempt is billed at (spot price or on-demand price). */
  pricePerHourUsd?: number;
  startedAt: string;
  endedAt?: string;
  endReason?: AttemptEndReason;
  /** S3 URI of the checkpoint this attempt resumed from. */
  resumeFrom?: string;
}

/** Pointer to a complete checkpoint in S3. */
export interface CheckpointRef {
  uri: string;
  attempt: number;
  createdAt: string;
  step?: number;
  epoch?: number;
}

/** The run record: the index of a run that the API, event handlers and reconciler read. */
export interface RunRecord {
  runId: string;
  /** IAM identity (ARN) of the submitter; only it can see the run. */
  owner: string;
  spec: RunSpec;
  /** sha256 of the normalised spec, to detect a client token reused with another spec. */
  specHash: string;
  clientToken?: string;
  status: RunStatus;
  /** Why the run is in its status, in words a user can act on. */
  statusReason?: string;
  createdAt: string;
  updatedAt: string;
  executionArn?: string;
  attempts: Attempt[];
  /** Step Functions task token of the live LaunchTraining wait, with the attempt it belongs to. */
  taskToken?: string;
  taskTokenAttempt?: number;
  latestCheckpoint?: CheckpointRef;
  costUsd: number;
  /** Interruptions and user failures counted against the spec's recovery budgets. */
  interruptions: number;
  userFailures: number;
  /** Schedule that started the run, if any. */
  scheduleId?: string;
  /** A cancel was asked for; `force` skips the checkpoint. */
  cancelRequested?: { at: string; force: boolean };
}

/** The fields `GET /runs` returns for each run. */
export type RunSummary = Pick<
  RunRecord,
  'runId' | 'owner' | 'status' | 'statusReason' | 'createdAt' | 'updatedAt' | 'costUsd'
> & { name: string; attempts: number };

/** Projects a record onto its summary. */
export function summarize(record: RunRecord): RunSummary {
  return {
    runId: record.runId,
    owner: record.owner,
    name: record.spec.name,
    status: record.status,
    statusReason: record.statusReason,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    costUsd: record.costUsd,
    attempts: record.attempts.length,
  };
}
