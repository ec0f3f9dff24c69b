import type { MetricsSummary } from '../domain/experiment';
import type { Attempt, CheckpointRef, NodeState, RunRecord } from '../domain/run-record';
import type { RunStatus } from '../domain/run-status';

export interface Page<T> {
  items: T[];
  /** Opaque token for the next page; absent on the last page. */
  nextToken?: string;
}

export interface ListOptions {
  limit?: number;
  nextToken?: string;
}

/** Fields a status transition may set alongside the status. */
export interface TransitionPatch {
  statusReason?: string;
  executionArn?: string;
  latestCheckpoint?: CheckpointRef;
  costUsd?: number;
  cancelRequested?: { at: string; force: boolean; earlyStop?: boolean };
  interruptions?: number;
  userFailures?: number;
  metrics?: MetricsSummary;
  network?: RunRecord['network'];
}

/** Persistence of run records. Every status change is conditional on the expected status. */
export interface RunStore {
  /** Creates the record; throws ConflictError when a run with that id already exists. */
  create(record: RunRecord): Promise<void>;
  get(runId: string): Promise<RunRecord | undefined>;
  /** The owner's runs, newest first, optionally only those in one status. */
  listByOwner(owner: string, options?: ListOptions & { status?: RunStatus }): Promise<Page<RunRecord>>;
  /** The owner's runs in one experiment, oldest first (served by an index, never a scan). */
  listByExperiment(owner: string, experiment: string, options?: ListOptions): Promise<Page<RunRecord>>;
  /** All runs in a status, oldest first (for the reconciler). */
  listByStatus(status: RunStatus, options?: ListOptions): Promise<Page<RunRecord>>;
  /**
   * Moves the run from one of `from` to `to`, with `patch`; throws StatusConflictError when the
   * stored status is not in `from` or the transition is illegal. Returns the updated record.
   */
  transition(runId: string, from: RunStatus | readonly RunStatus[], to: RunStatus, patch?: TransitionPatch): Promise<RunRecord>;
  /** Appends an attempt; a retried append of the same attempt number is a no-op. */
  appendAttempt(runId: string, attempt: Attempt): Promise<void>;
  /** Updates the newest attempt (e.g. its end) when its number matches. */
  updateAttempt(runId: string, attemptNumber: number, patch: Partial<Omit<Attempt, 'attempt'>>): Promise<void>;
  /**
   * Updates node `rank` of the newest attempt when its number matches (one node's heartbeat,
   * outcome or copy, written beside the other nodes' own without overwriting them).
   */
  updateNode(runId: string, attemptNumber: number, rank: number, patch: Partial<Omit<NodeState, 'rank'>>): Promise<void>;
  /** Stores the task token of a live wait for `attempt`. */
  setTaskToken(runId: string, attempt: number, token: string): Promise<void>;
  /** Clears the task token if it is still `token` (a stale clear does nothing); true if cleared. */
  clearTaskToken(runId: string, token: string): Promise<boolean>;
  /**
   * Stores the token of the wait for `warnedAttempt`'s replacement `instanceId`, only while that
   * replacement is still being prepared (recorded, neither data-ready nor released) and the
   * attempt is the newest; false otherwise (nothing to wait for).
   */
  awaitReplacement(runId: string, warnedAttempt: number, instanceId: string, token: string): Promise<boolean>;
  /** Clears the replacement wait's token if it is still `token`; true if cleared (so one caller ends the wait). */
  clearReplacementToken(runId: string, token: string): Promise<boolean>;
}
