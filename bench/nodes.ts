import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { uploadBundle } from '../examples/bundle';
import { latencyModel } from '../local/latency';
import { startLocalBackend, type LocalBackend } from '../local/runtime';
import type { RunRecord } from '../shared/domain/run-record';
import { metricsOf, printedMetrics, scaledModel, waitUntil } from './recovery';

/**
 * Multi-node runs (docs/multi-node.md, docs/performance.md):
 * - the overhead of one interruption of a 4-node run under the `aws` latency model: replacing the
 *   lost node alone with its replacement launched on the warning (runctl's recovery), the same
 *   after the checkpoint (`recovery.provisionOnWarning: false`), and relaunching all four after
 *   the checkpoint (`nodeRecovery: relaunch-all`, how a cluster relaunched on any preemption
 *   recovers), each on its own local backend with the same model: seconds from the warning to
 *   training resumed, instances launched and bytes copied for the recovery. Sizes are scaled as in
 *   bench/recovery.ts; time runs 3× faster.
 * - Step Functions transitions per run against the node count and the training length: a run's
 *   nodes are handled inside the steps, so the count must not grow with either.
 */

const SCALE = 100;
/**
 * Three recoveries of four nodes each: run 3× faster than the model to end in minutes. The
 * control plane's own time is multiplied back with the rest, alike for the three.
 */
export const TIME_SCALE = 3;
const NODES = 4;
const CHECKPOINT_BYTES = 2e9;
const DATASET_BYTES = 10e9;
const RECLAIM_MS = 120_000;
const RECOVERY_SCRIPT = join(import.meta.dirname, 'recovery-script');
const NODE_CONTRACT = fileURLToPath(new URL('../examples/node-contract/', import.meta.url));

/** The recoveries compared: runctl's, the same without the launch on the warning, and a whole-cluster relaunch. */
export const NODE_RECOVERY_MODES = [
  { mode: 'replace-lost, on the warning', nodeRecovery: 'replace-lost', provisionOnWarning: true },
  { mode: 'replace-lost, after', nodeRecovery: 'replace-lost', provisionOnWarning: false },
  { mode: 'relaunch-all, after', nodeRecovery: 'relaunch-all', provisionOnWarning: false },
] as const;
type NodeRecoveryMode = (typeof NODE_RECOVERY_MODES)[number];

export interface NodeRecoveryFigure {
  mode: NodeRecoveryMode['mode'];
  status: string;
  statusReason?: string;
  /** Model seconds from the warning to rank 0's script resumed. */
  resumed?: number;
  /** Instances launched for the second attempt. */
  launched: number;
  /** Bytes of the dataset copied for the second attempt (each launched node copies it). */
  copiedBytes: number;
}

async function measureMode({ mode, nodeRecovery, provisionOnWarning }: NodeRecoveryMode, progress: (line: string) => void): Promise<NodeRecoveryFigure> {
  const root = await mkdtemp(join(tmpdir(), `runctl-bench-nodes-${nodeRecovery}-`));
  const model = latencyModel('aws');
  const backend = await startLocalBackend({ root, persist: false, heartbeatSeconds: 5, latency: scaledModel(model, SCALE, TIME_SCALE), nodeRecovery });
  try {
    const bundle = await uploadBundle(backend.s3, backend.services.bucket, RECOVERY_SCRIPT);
    await backend.s3.send(new PutObjectCommand({ Bucket: backend.services.bucket, Key: 'datasets/bench-nodes/data.bin', Body: randomBytes(DATASET_BYTES / SCALE) }));
    const submitted = await backend.submit({
      spec: {
        name: `nodes-${nodeRecovery}-${provisionOnWarning ? 'on-warning' : 'after'}`,
        code: { bundle, command: ['python3', 'train.py'] },
        hyperparameters: { checkpoint_bytes: CHECKPOINT_BYTES / SCALE, step_seconds: 0.2, steps_after_resume: 2 },
        data: [{ source: `s3://${backend.services.bucket}/datasets/bench-nodes/`, target: '/data' }],
        nodes: NODES,
        instance: { types: ['g5.xlarge'], spot: true },
        checkpoint: { intervalSeconds: 3600, graceSeconds: 30 },
        recovery: { provisionOnWarning },
      },
    });
    const runId = submitted.runId;
    progress(`${mode}: run ${runId} of ${NODES} nodes submitted; booting and copying under the model`);
    await waitUntil(`${mode} training`, () => printedMetrics(backend, runId), 15 * 60_000);
    const warning = Date.now();
    await backend.interrupt(runId, { node: NODES - 1, graceMs: RECLAIM_MS / TIME_SCALE });
    progress(`${mode}: node ${NODES - 1} warned`);
    const record = await backend.waitForRun(runId);
    const metrics = await metricsOf(backend, runId);
    const resumedAt = metrics.find((m) => m.attempt === 2 && typeof m.resumed_at_ms === 'number')?.resumed_at_ms;
    const launched = (record.attempts[1]?.nodes ?? []).filter((n) => n.launchedForAttempt === 2).length;
    return {
      mode,
      status: record.status,
      statusReason: record.statusReason,
      resumed: resumedAt === undefined ? undefined : ((resumedAt - warning) / 1000) * TIME_SCALE,
      launched,
      copiedBytes: launched * DATASET_BYTES,
    };
  } finally {
    await backend.stop({ terminateInstances: true });
    await rm(root, { recursive: true, force: true });
  }
}

/** The recoveries of a 4-node run, one after the other (each on its own backend, same model). */
export async function measureNodeRecovery(progress: (line: string) => void = () => undefined): Promise<NodeRecoveryFigure[]> {
  const figures: NodeRecoveryFigure[] = [];
  for (const mode of NODE_RECOVERY_MODES) figures.push(await measureMode(mode, progress));
  return figures;
}

export interface NodeTransitionFigure {
  nodes: number;
  steps: number;
  status: string;
  transitions: number;
  /** Readiness and copy polls after the first pass of each: timing, not nodes or training. */
  pollTransitions: number;
}

const POLL_STATES = new Set(['WaitForInstance', 'CheckInstance', 'IsInstanceReady', 'WaitForPrefetch', 'CheckPrefetch', 'IsPrefetchDone']);

async function countRun(backend: LocalBackend, bundle: string, nodes: number, steps: number): Promise<NodeTransitionFigure> {
  const submitted = await backend.submit({
    spec: {
      name: `transitions-${nodes}-nodes-${steps}-steps`,
      code: { bundle, command: ['python3', 'train.py'] },
      hyperparameters: { steps, 'step-seconds': 0.05 },
      ...(nodes > 1 ? { nodes } : {}),
      instance: { types: ['c7i.large'], spot: true },
    },
  });
  const record: RunRecord = await backend.waitForRun(submitted.runId);
  const execution = backend.executions.execution(submitted.runId);
  if (execution === undefined) throw new Error(`no execution of ${submitted.runId}`);
  const polls = execution.statesEntered().filter((s) => POLL_STATES.has(s)).length;
  return { nodes, steps, status: record.status, transitions: execution.transitions(), pollTransitions: Math.max(0, polls - 4 * record.attempts.length) };
}

/** Transitions of runs of 1, 2 and 4 nodes, short and long, on the instant model (smaller sizes for the bench's own test). */
export async function measureNodeTransitions(sizes: { nodes: number[]; steps: number[] } = { nodes: [1, 2, 4], steps: [2, 40] }): Promise<NodeTransitionFigure[]> {
  const root = await mkdtemp(join(tmpdir(), 'runctl-bench-node-transitions-'));
  const backend = await startLocalBackend({ root, persist: false, heartbeatSeconds: 1, bootMs: 100 });
  try {
    const bundle = await uploadBundle(backend.s3, backend.services.bucket, NODE_CONTRACT);
    const figures: NodeTransitionFigure[] = [];
    for (const nodes of sizes.nodes) for (const steps of sizes.steps) figures.push(await countRun(backend, bundle, nodes, steps));
    return figures;
  } finally {
    await backend.stop({ terminateInstances: true });
    await rm(root, { recursive: true, force: true });
  }
}
