import { nodeOnInstance, type Attempt, type NodeState, type RunRecord } from '../domain/run-record';
import { isTerminal } from '../domain/run-status';
import type { InstanceRun } from '../ports/instance-tags';

/** What an EC2 event handler did; returned by the Lambda and logged. */
export type InstanceEventOutcome =
  /** "Checkpoint now" was sent to the attempt's agent (`commandId` null: SSM could not reach it). */
  | { action: 'checkpoint-requested'; instanceId: string; runId: string; attempt: number; commandId: string | null }
  /** A replacement is to be launched while the attempt trains on (a rebalance handover); no command was sent. */
  | { action: 'replacement-requested'; instanceId: string; runId: string; attempt: number }
  /** The live LaunchTraining wait was failed with Instance.Lost. */
  | { action: 'task-failed'; instanceId: string; runId: string; attempt: number; error: 'Instance.Lost' }
  /** Nothing to do, and why: not runctl's instance, a duplicate or late event, a run that does not ask for it. */
  | { action: 'ignored'; instanceId: string; runId?: string; attempt?: number; reason: string };

/**
 * The answers of the spot-warning and rebalance handlers that start prepare-replacement (the
 * EventBridge rule on their Lambda destination events, in serverless.yml and the local backend).
 */
export const REPLACEMENT_TRIGGER_ACTIONS = ['checkpoint-requested', 'replacement-requested'] as const satisfies readonly InstanceEventOutcome['action'][];

/** An `ignored` outcome for an instance, with its run when known. */
export function ignored(instanceId: string, reason: string, run?: InstanceRun): InstanceEventOutcome {
  return { action: 'ignored', instanceId, runId: run?.runId, attempt: run?.attempt, reason };
}

/**
 * Why an event about `instanceId`, tagged as attempt `run.attempt`, no longer concerns a live
 * attempt of the run — or undefined when it does. Live means: the run is not terminal, the
 * attempt is its newest, it runs on that instance and has not ended.
 */
export function staleAttemptReason(record: RunRecord | undefined, run: InstanceRun, instanceId: string): string | undefined {
  if (record === undefined) return `run ${run.runId} has no record`;
  if (isTerminal(record.status)) return `run ${run.runId} already ended (${record.status})`;
  const newest = record.attempts.at(-1);
  if (newest === undefined || newest.attempt < run.attempt) return `attempt ${run.attempt} of run ${run.runId} is not recorded`;
  if (newest.attempt > run.attempt) return `attempt ${run.attempt} of run ${run.runId} was superseded by attempt ${newest.attempt}`;
  if (newest.instanceId !== instanceId && nodeOnInstance(newest, instanceId) === undefined) {
    return `attempt ${run.attempt} of run ${run.runId} runs on ${newest.instanceId ?? 'no instance yet'}, not ${instanceId}`;
  }
  if (newest.endedAt !== undefined) return `attempt ${run.attempt} of run ${run.runId} already ended (${newest.endReason ?? 'no reason'})`;
  return undefined;
}

/** The attempt of a record with a number, if recorded. */
export function attemptOf(record: RunRecord, attempt: number): Attempt | undefined {
  return record.attempts.find((a) => a.attempt === attempt);
}

/** A multi-node run's event for one of its nodes: the live attempt (rank 0's instance is its `instanceId`) and the node. */
export interface LiveNode {
  record: RunRecord;
  attempt: Attempt & { instanceId: string };
  node: NodeState;
}

/** The live attempt's node on `instanceId`, or why an event for it is ignored. */
export function liveNodeOf(record: RunRecord | undefined, run: InstanceRun, instanceId: string): LiveNode | { ignored: string } {
  const stale = staleAttemptReason(record, run, instanceId);
  const attempt = record?.attempts.find((a) => a.attempt === run.attempt);
  const node = nodeOnInstance(attempt, instanceId);
  if (stale !== undefined || record === undefined || attempt?.instanceId === undefined || node === undefined) {
    return { ignored: stale ?? 'not a node of the live attempt' };
  }
  return { record, attempt: { ...attempt, instanceId: attempt.instanceId }, node };
}
