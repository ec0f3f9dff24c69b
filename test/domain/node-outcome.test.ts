import { describe, expect, it } from 'vitest';
import { nodeVerdict, staleNodes } from '../../shared/domain/node-outcome';
import type { NodeOutcome, NodeState } from '../../shared/domain/run-record';

const AT = '2026-12-01T00:10:00.000Z';

function nodes(...outcomes: (NodeOutcome | undefined)[]): NodeState[] {
  return outcomes.map((outcome, rank) => ({
    rank,
    instanceId: `i-${rank}`,
    instanceType: 'c6i.xlarge',
    availabilityZone: 'us-east-1a',
    spot: true,
    launchedForAttempt: 1,
    launchedAt: AT,
    ...(outcome === undefined ? {} : { outcome }),
  }));
}
const ok = (output = '{}'): NodeOutcome => ({ kind: 'SUCCEEDED', at: AT, output });
const failed = (error: string, cause = '{}'): NodeOutcome => ({ kind: 'FAILED', at: AT, error, cause });

describe('the outcome rule of a multi-node attempt', () => {
  it('waits for rank 0, then for every node, and succeeds with rank 0\'s output', () => {
    expect(nodeVerdict(nodes(undefined, ok()), { interrupted: false })).toMatchObject({ kind: 'wait', reason: 'rank 0 has not reported' });
    expect(nodeVerdict(nodes(ok('{"r":0}'), undefined, ok()), { interrupted: false })).toMatchObject({ kind: 'wait', reason: 'node 1 has not reported' });
    expect(nodeVerdict(nodes(ok('{"r":0}'), ok('{"r":1}')), { interrupted: false })).toEqual({ kind: 'succeed', output: '{"r":0}' });
  });

  it('fails at once on a script failing on any node, with that node\'s cause', () => {
    expect(nodeVerdict(nodes(undefined, failed('Training.Failed', 'c1')), { interrupted: false })).toEqual({ kind: 'fail', error: 'Training.Failed', cause: 'c1' });
  });

  it('does not succeed when rank 0 finished but another node did not', () => {
    expect(nodeVerdict(nodes(ok(), failed('Run.Cancelled', 'c1')), { interrupted: false })).toEqual({ kind: 'fail', error: 'Run.Cancelled', cause: 'c1' });
  });

  it("rank 0's script failing after a node was lost without a warning is that loss, not the user's error", () => {
    const lost = nodes(failed('Training.Failed', 'gloo: connection reset'), undefined).map((n) => (n.rank === 1 ? { ...n, lostAt: AT } : n));
    expect(nodeVerdict(lost, { interrupted: false })).toEqual({
      kind: 'fail',
      error: 'Instance.Lost',
      cause: "node 1 (i-1) lost while training; rank 0's script then failed: gloo: connection reset",
    });
    // A warned node asked every node to save: rank 0's own report stands.
    const warned = nodes(failed('Training.Failed', 'c0'), undefined).map((n) => (n.rank === 1 ? { ...n, warnedAt: AT } : n));
    expect(nodeVerdict(warned, { interrupted: true })).toEqual({ kind: 'fail', error: 'Training.Failed', cause: 'c0' });
  });

  it('while interrupted, a failing peer waits for rank 0, whose report decides', () => {
    const peerFailed = nodes(undefined, failed('Training.Failed'));
    expect(nodeVerdict(peerFailed, { interrupted: true }).kind).toBe('wait');
    const warned = peerFailed.map((n) => (n.rank === 1 ? { ...n, warnedAt: AT } : n));
    expect(nodeVerdict(warned, { interrupted: false }).kind).toBe('wait');
    const reported = nodes(failed('Spot.Interrupted', 'ck'), failed('Training.Failed'));
    expect(nodeVerdict(reported, { interrupted: true })).toEqual({ kind: 'fail', error: 'Spot.Interrupted', cause: 'ck' });
  });

  it('finds the nodes still training that have not beaten within the window', () => {
    const list = nodes(undefined, undefined, ok()).map((n) => (n.rank === 0 ? { ...n, lastHeartbeatAt: '2026-12-01T00:09:30.000Z' } : n));
    const at = { now: AT, since: '2026-12-01T00:00:00.000Z', windowSeconds: 60 };
    expect(staleNodes(list, at).map((n) => n.rank)).toEqual([1]);
    expect(staleNodes(list, { ...at, since: '2026-12-01T00:09:45.000Z' })).toEqual([]);
  });
});
