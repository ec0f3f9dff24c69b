import { ddpSpec, prepareDdpExample } from '../examples/ddp/prepare';
import { torchImports } from '../examples/linear/prepare';
import type { NodeState, RunRecord } from '../shared/domain/run-record';
import type { LocalBackend } from './runtime';
import { followRun, readMetrics, renderSummary, summarize, type MetricLine } from './summary';

/**
 * `npm start -- --nodes 2`: examples/ddp (PyTorch DDP over gloo, CPU) trained across N local
 * nodes on loopback by the real train-run machine. Once the held epoch's checkpoint is in S3,
 * node 1 gets a spot interruption warning: every node saves and stops, node 1 alone is replaced,
 * node 0 keeps its instance, and every rank resumes from the checkpoint with a new rendezvous.
 * Prints each node's instance per attempt and the loss by epoch, and exits non-zero unless the
 * run SUCCEEDED with node 0 kept and only the interrupted node replaced.
 */

/** The epoch after which the first attempt waits (checkpointed) for the warning. */
const HOLD_EPOCH = 3;

export async function runNodesDemo(backend: LocalBackend, options: { nodes: number; epochs: number }, started: number): Promise<number> {
  if (!torchImports()) {
    console.error('--nodes trains examples/ddp with PyTorch: `pip install torch` (the CPU wheel is enough), then run again');
    return 1;
  }
  const bundle = await prepareDdpExample(backend.s3, backend.services.bucket);
  const interrupted = Math.min(1, options.nodes - 1);
  console.log(`Code bundle ${bundle}\nScript      train.py through torchrun on ${options.nodes} nodes (DDP, gloo, CPU)`);
  const submitted = await backend.submit({
    spec: ddpSpec(bundle, options.nodes, { epochs: options.epochs, 'min-epoch-seconds': 1, 'hold-after-epoch': HOLD_EPOCH }),
  });
  const runId = submitted.runId;
  console.log(`Submitted run ${runId}\n`);

  let warned = false;
  let lastNodes = '';
  const record = await followRun(backend, runId, started, async (current) => {
    const nodes = nodesLine(current);
    if (nodes !== lastNodes && nodes !== '') console.log(`         nodes: ${nodes}`);
    lastNodes = nodes;
    if (!warned && current.status === 'TRAINING' && ((await backend.artifacts.latestCheckpoint(runId))?.epoch ?? 0) >= HOLD_EPOCH) {
      warned = true;
      const result = await backend.interrupt(runId, { node: interrupted });
      console.log(`  ⚡ spot interruption warning for node ${interrupted} (${result.instanceId}, attempt ${result.attempt}); reclaimed at ${result.reclaimAt}`);
    }
  });
  const metrics = await readMetrics(backend.s3, backend.services.bucket, runId);
  const latest = await backend.artifacts.latestCheckpoint(runId);
  console.log(renderSummary(summarize(record, metrics, Date.now() - started, latest?.uri)));
  console.log(`\n${nodeHistory(record)}\n\nLoss by epoch (rank 0, averaged over every rank)\n${lossByEpoch(metrics)}`);
  const verdict = recoveryVerdict(record, interrupted);
  console.log(`\n${verdict.message}`);
  return record.status === 'SUCCEEDED' && verdict.ok ? 0 : 1;
}

/** `0 i-… training · 1 i-… warned: checkpointing`: the newest attempt's nodes. */
function nodesLine(record: RunRecord): string {
  const attempt = record.attempts.at(-1);
  return (attempt?.nodes ?? []).map((n) => `${n.rank} ${n.instanceId}${n.launchedForAttempt === attempt?.attempt ? '' : ' (kept)'}${n.warnedAt === undefined ? '' : ' warned'}`).join(' · ');
}

/** Each node's instance in every attempt. */
export function nodeHistory(record: RunRecord): string {
  const lines = ['Nodes by attempt'];
  for (const attempt of record.attempts) {
    const nodes = (attempt.nodes ?? []).map((n) => `node ${n.rank} ${n.instanceId}${n.launchedForAttempt === attempt.attempt ? '' : ' (kept)'}`);
    lines.push(`  attempt ${attempt.attempt} (${attempt.endReason ?? 'running'}): ${nodes.join(', ')}`);
  }
  return lines.join('\n');
}

function lossByEpoch(metrics: readonly MetricLine[]): string {
  return metrics
    .filter((m) => typeof m.loss === 'number' && typeof m.epoch === 'number')
    .map((m) => `  attempt ${String(m.attempt)} epoch ${String(m.epoch)}: loss ${(m.loss as number).toFixed(4)}`)
    .join('\n');
}

/** Whether the recovery kept every node but the interrupted one, and replaced that one alone. */
export function recoveryVerdict(record: RunRecord, interrupted: number): { ok: boolean; message: string } {
  const [first, second] = record.attempts;
  const before = first?.nodes ?? [];
  const after = second?.nodes ?? [];
  if (first === undefined || second === undefined) return { ok: false, message: `Expected a second attempt after the warning; the run has ${record.attempts.length}` };
  const same = (a: NodeState | undefined, b: NodeState | undefined) => a !== undefined && b !== undefined && a.instanceId === b.instanceId;
  const kept = before.filter((n) => n.rank !== interrupted).every((n) => same(n, after[n.rank]));
  const replaced = !same(before[interrupted], after[interrupted]) && after[interrupted] !== undefined;
  const ok = kept && replaced && after.length === before.length;
  return {
    ok,
    message: ok
      ? `Recovered by replacing node ${interrupted} alone (${before[interrupted]?.instanceId} → ${after[interrupted]?.instanceId}); ` +
        `${before.length - 1} node${before.length === 2 ? '' : 's'} kept ${before.length === 2 ? 'its' : 'their'} instance${before.length === 2 ? '' : 's'}.`
      : `Expected node ${interrupted} alone to be replaced: attempt 1 ran on ${before.map((n) => n.instanceId).join(', ')}, attempt 2 on ${after.map((n) => n.instanceId).join(', ')}`,
  };
}
