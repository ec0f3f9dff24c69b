import { RUN_STATUSES, TERMINAL_STATUSES } from '../../shared/domain/run-status';

/** The API's answers as the dashboard reads them (docs/cli.md shows the same fields). */

export interface Attempt {
  attempt: number;
  instanceId?: string;
  instanceType?: string;
  availabilityZone?: string;
  spot: boolean;
  pricePerHourUsd?: number;
  startedAt: string;
  endedAt?: string;
  endReason?: string;
  resumeFrom?: string;
  /** A multi-node attempt's nodes, in rank order (docs/multi-node.md). */
  nodes?: AttemptNode[];
}

export interface AttemptNode {
  rank: number;
  instanceId: string;
  instanceType: string;
  availabilityZone: string;
  /** Earlier than the attempt for a node kept from the attempt before. */
  launchedForAttempt: number;
  warnedAt?: string;
  lostAt?: string;
  releasedAt?: string;
  outcome?: { kind: 'SUCCEEDED' | 'FAILED'; error?: string };
}

export interface CheckpointRef {
  uri: string;
  attempt: number;
  createdAt: string;
  step?: number;
  epoch?: number;
}

export interface Run {
  runId: string;
  status: string;
  statusReason?: string;
  createdAt: string;
  updatedAt: string;
  costUsd: number;
  spec: {
    name: string;
    experiment?: string;
    hyperparameters?: Record<string, string | number | boolean>;
    tags?: Record<string, string>;
    instance?: { types?: string[]; spot?: boolean };
    limits?: { maxCostUsd?: number; maxRuntime?: string };
  };
  attempts: Attempt[];
  phases?: Array<{ status: string; at: string }>;
  latestCheckpoint?: CheckpointRef;
  interruptions?: number;
  userFailures?: number;
  cancelRequested?: { at: string; force: boolean };
  sweep?: { sweepId: string; trial: number };
}

export interface RunSummary {
  runId: string;
  name: string;
  status: string;
  statusReason?: string;
  createdAt: string;
  updatedAt?: string;
  costUsd: number;
  attempts: number;
  experiment?: string;
}

export interface RunsPage {
  runs: RunSummary[];
  nextToken?: string;
}

export interface LogChunk {
  attempt: number;
  attempts: number[];
  offset: number;
  nextOffset: number;
  size: number;
  text: string;
}

export type MetricPoint = Record<string, unknown>;

export interface MetricsPage {
  metrics: MetricPoint[];
  nextToken?: string;
  resumeToken: string;
}

export interface Checkpoint extends CheckpointRef {
  id?: string;
  files?: number;
  bytes?: number;
  latest?: boolean;
}

export interface CheckpointList {
  checkpoints: Checkpoint[];
  latest?: string;
}

/** Statuses come from the domain module itself (no imports, so it bundles for the browser as it is). */
export const TERMINAL: ReadonlySet<string> = new Set(TERMINAL_STATUSES);
export const STATUSES: readonly string[] = RUN_STATUSES;

/** Why an attempt ended, in words. */
export const END_REASONS: Record<string, string> = {
  SUCCEEDED: 'finished',
  SPOT_INTERRUPTED: 'spot interruption',
  INSTANCE_LOST: 'instance lost',
  HEARTBEAT_TIMEOUT: 'heartbeat timed out',
  NOT_READY: 'instance never became ready',
  TRAINING_FAILED: 'training script failed',
  CANCELLED: 'cancelled',
  BUDGET: 'budget reached',
  CONTROLLER_ERROR: 'control-plane error',
};

/** End reasons that are interruptions: the run resumes from its checkpoint on a new instance. */
export const INTERRUPTIONS = new Set(['SPOT_INTERRUPTED', 'INSTANCE_LOST', 'HEARTBEAT_TIMEOUT', 'NOT_READY']);
