import type { NodeState } from './run-record';

/**
 * The outcome rule of a multi-node attempt (docs/multi-node.md, "Outcome"), pure: what the one
 * task of the attempt is completed with, given what each node has reported so far.
 */

export type NodeVerdict =
  /** Not decided yet: other nodes have still to report. */
  | { kind: 'wait'; reason: string }
  | { kind: 'succeed'; output: string }
  | { kind: 'fail'; error: string; cause: string };

/** The agent's error for a script that exited non-zero on its own. */
export const TRAINING_FAILED = 'Training.Failed';
const INSTANCE_LOST = 'Instance.Lost';

/**
 * - A script that failed on any node (Training.Failed) fails the attempt with that node's cause
 *   at once — the user's error, with its traceback — unless the attempt is being interrupted (a
 *   node was warned or lost, or the run is checkpointing): then a failing peer is the
 *   interruption's doing, and rank 0's report decides.
 * - Rank 0 reporting anything else (Spot.Interrupted with its checkpoint, a heartbeat timeout of
 *   its own) fails the attempt with it: rank 0 uploads the run's checkpoint. Rank 0's script
 *   failing after a node was lost (no warning) is that loss: `Instance.Lost`.
 * - Success needs rank 0 to exit 0 and every other node to have succeeded too; until they have,
 *   the attempt waits (a node that never reports stops the heartbeat relay and is caught).
 */
export function nodeVerdict(nodes: readonly NodeState[], run: { interrupted: boolean }): NodeVerdict {
  const interrupted = run.interrupted || nodes.some((n) => n.warnedAt !== undefined || n.lostAt !== undefined);
  const failed = nodes.find((n) => n.outcome?.kind === 'FAILED' && n.outcome.error === TRAINING_FAILED);
  if (failed?.outcome !== undefined && !interrupted) {
    return { kind: 'fail', error: TRAINING_FAILED, cause: failed.outcome.cause ?? '' };
  }
  const first = nodes.find((n) => n.rank === 0);
  const outcome = first?.outcome;
  if (outcome?.kind === 'FAILED') {
    // Rank 0's script failed with a peer lost (no warning, so no checkpoint was asked for): its
    // collectives broke with the peer. An interruption, not the user's error.
    const lost = nodes.filter((n) => n.lostAt !== undefined && n.warnedAt === undefined);
    if (outcome.error === TRAINING_FAILED && lost.length > 0) {
      return { kind: 'fail', error: INSTANCE_LOST, cause: `node ${lost.map((n) => `${n.rank} (${n.instanceId})`).join(', ')} lost while training; rank 0's script then failed: ${outcome.cause ?? ''}` };
    }
    return { kind: 'fail', error: outcome.error ?? 'States.TaskFailed', cause: outcome.cause ?? '' };
  }
  if (outcome?.kind !== 'SUCCEEDED') return { kind: 'wait', reason: 'rank 0 has not reported' };
  const pending = nodes.filter((n) => n.outcome === undefined).map((n) => n.rank);
  if (pending.length > 0) return { kind: 'wait', reason: `node ${pending.join(', ')} has not reported` };
  const other = nodes.find((n) => n.outcome?.kind === 'FAILED');
  if (other?.outcome !== undefined) {
    // Rank 0 finished, another node did not: the run did not train to the end on every node.
    return { kind: 'fail', error: other.outcome.error ?? TRAINING_FAILED, cause: other.outcome.cause ?? '' };
  }
  return { kind: 'succeed', output: outcome.output ?? '{}' };
}

/**
 * The nodes still training whose last heartbeat (or, before their first, the attempt's start)
 * is older than the window: while any is, the attempt's heartbeat is not relayed.
 */
export function staleNodes(nodes: readonly NodeState[], at: { now: string; since: string; windowSeconds: number }): NodeState[] {
  const now = Date.parse(at.now);
  return nodes.filter((n) => {
    if (n.outcome !== undefined) return false;
    const last = Date.parse(n.lastHeartbeatAt ?? at.since);
    return now - last > at.windowSeconds * 1000;
  });
}
