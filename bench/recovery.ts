import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { packDirectory } from '../cli/pack';
import { LATENCY_PROFILES, latencyModel, scaleBandwidth, type LatencyModel } from '../local/latency';
import { startLocalBackend, type LocalBackend } from '../local/runtime';
import type { RunRecord } from '../shared/domain/run-record';

/**
 * The recovery timeline under the `aws` latency model (docs/performance.md): three runs side by
 * side on one local backend, one on the sequential path (`recovery.provisionOnWarning: false`:
 * checkpoint, release, then launch), one overlapped (the replacement launched on the warning),
 * and one handed over (`recovery.preProvisionOnRebalance` alone: a rebalance recommendation
 * instead of a warning; the replacement is prepared while it trains on), each with a 2 GB
 * checkpoint and a 10 GB dataset. Sizes are scaled 1:SCALE with the bandwidths (20 MB stands for
 * 2 GB at 1/100 of the rate), so the seconds are those of the full sizes. The first two are warned
 * and the third is recommended at the same moment; the figures are seconds after it.
 */

const SCALE = 100;
/**
 * How many times faster than the model the section runs: 1, real time. Launch and SSM online take
 * their modelled seconds and bytes move at the modelled rates, so the control plane's own time
 * (polls, Lambda work, each AWS CLI start on the instance, the agent's start) counts once, as it
 * would on AWS. A faster run (bench/nodes.ts runs 3× faster) multiplies that time back with the
 * rest and overstates it: by about 6 model seconds per recovery here.
 */
export const TIME_SCALE = 1;
/** The issue's checkpoint: 2 GB, a 1B-parameter model with its optimizer state in bf16. */
export const CHECKPOINT_BYTES = 2e9;
const DATASET_BYTES = 10e9;
/** Warning → reclaim, as on EC2. */
const RECLAIM_MS = 120_000;

export const RECOVERY_PATHS = ['sequential', 'overlapped', 'handover'] as const;
export type RecoveryPath = (typeof RECOVERY_PATHS)[number];

export interface RecoveryTimeline {
  path: RecoveryPath;
  runId: string;
  status: string;
  /** Why the run ended (shown when it did not succeed). */
  statusReason?: string;
  /** Seconds after the warning. */
  stopSignal?: number;
  checkpointComplete?: number;
  replacementReady?: number;
  /** The replacement's data copied (prepare-replacement's record). */
  dataReady?: number;
  agentStarted?: number;
  trainingResumed?: number;
  /** Stop signal → training resumed: the seconds the accelerators sat idle. */
  idle?: number;
}

export interface RecoveryFigures {
  model: ReturnType<typeof latencyModel>;
  timelines: RecoveryTimeline[];
  /** max(launch + SSM + data copy, checkpoint upload) + agent start + 5 s, from the model and the measured agent start. */
  target: number;
  /** Sequential / overlapped, warning → training resumed. */
  ratio: number;
  /** Sequential / handover, idle seconds (stop signal → training resumed). */
  handoverRatio: number;
  /**
   * The best ratio overlapping can give under the model: (upload + prepare + agent start) /
   * (max(upload, prepare) + agent start), the agent start (the checkpoint's download and the
   * script's start) measured. It reaches 2 only as the upload equals the preparation and the
   * agent start vanishes.
   */
  idealRatio: number;
}

async function put(backend: LocalBackend, key: string, body: Buffer): Promise<string> {
  await backend.s3.send(new PutObjectCommand({ Bucket: backend.services.bucket, Key: key, Body: body }));
  return `s3://${backend.services.bucket}/${key}`;
}

export async function metricsOf(backend: LocalBackend, runId: string): Promise<Array<Record<string, number>>> {
  let text: string;
  try {
    const object = await backend.s3.send(new GetObjectCommand({ Bucket: backend.services.bucket, Key: `runs/${runId}/metrics.jsonl` }));
    text = (await object.Body?.transformToString()) ?? '';
  } catch (error) {
    // A run that never printed a metric: its timeline has no stop signal or resume to show.
    if (error instanceof Error && error.name === 'NoSuchKey') return [];
    throw error;
  }
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, number>);
}

/**
 * Whether attempt 1's script has printed a metric line: the agent streams them live under `live/`,
 * its first chunk named by offset 0. One HeadObject: a listing of that prefix on the local S3
 * fails while the agent writes under it, which it does several times a second.
 */
export async function printedMetrics(backend: LocalBackend, runId: string): Promise<boolean> {
  try {
    await backend.s3.send(new HeadObjectCommand({ Bucket: backend.services.bucket, Key: `runs/${runId}/live/attempt-1/metrics-${'0'.repeat(12)}` }));
    return true;
  } catch {
    // Not there yet (NotFound), or the local S3 busy: ask again.
    return false;
  }
}

export async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** `model` for a bench moving 1/`sizeScale` of the bytes, run `timeScale` times faster. */
export function scaledModel(model: LatencyModel, sizeScale: number, timeScale: number): LatencyModel {
  return latencyModel(scaleBandwidth(model, sizeScale / timeScale), { launchMs: model.launchMs / timeScale, ssmOnlineMs: model.ssmOnlineMs / timeScale });
}

function secondsAfter(warning: number, at: string | number | undefined): number | undefined {
  if (at === undefined) return undefined;
  const ms = typeof at === 'number' ? at : Date.parse(at);
  return Number.isFinite(ms) ? ((ms - warning) / 1000) * TIME_SCALE : undefined;
}

function timeline(path: RecoveryTimeline['path'], record: RunRecord, metrics: Array<Record<string, number>>, warning: number): RecoveryTimeline {
  const [first, second] = record.attempts;
  const stop = metrics.find((m) => m.attempt === 1 && typeof m.stop_signal_at_ms === 'number')?.stop_signal_at_ms;
  const resumed = metrics.find((m) => m.attempt === 2 && typeof m.resumed_at_ms === 'number')?.resumed_at_ms;
  return {
    path,
    runId: record.runId,
    status: record.status,
    statusReason: record.statusReason,
    // Control-plane time alone (the handler and the agent), not scaled.
    stopSignal: stop === undefined ? undefined : (stop - warning) / 1000,
    checkpointComplete: secondsAfter(warning, first?.checkpointCompletedAt),
    replacementReady: secondsAfter(warning, first?.replacement?.readyAt),
    dataReady: secondsAfter(warning, first?.replacement?.dataReadyAt),
    agentStarted: secondsAfter(warning, second?.trainingStartedAt),
    trainingResumed: secondsAfter(warning, resumed),
    idle: stop === undefined || resumed === undefined ? undefined : ((resumed - stop) / 1000) * TIME_SCALE,
  };
}

/** Runs the three paths side by side under the aws profile and returns their timelines. */
export async function measureRecovery(progress: (line: string) => void = () => undefined, checkpointBytes = CHECKPOINT_BYTES): Promise<RecoveryFigures> {
  const root = await mkdtemp(join(tmpdir(), 'runctl-bench-recovery-'));
  const model = latencyModel('aws');
  let watch: NodeJS.Timeout | undefined;
  const backend = await startLocalBackend({ root, persist: false, heartbeatSeconds: 5, latency: scaledModel(model, SCALE, TIME_SCALE) });
  try {
    const packed = await packDirectory(join(import.meta.dirname, 'recovery-script'));
    const bundle = await put(backend, `bundles/${packed.sha256}.tar.gz`, await readFile(packed.file));
    await rm(join(packed.file, '..'), { recursive: true, force: true });
    const dataset = await put(backend, 'datasets/bench-recovery/data.bin', randomBytes(DATASET_BYTES / SCALE));
    const recovery: Record<RecoveryPath, Record<string, boolean>> = {
      sequential: { provisionOnWarning: false },
      overlapped: { provisionOnWarning: true },
      handover: { preProvisionOnRebalance: true },
    };
    const spec = (path: RecoveryPath) => ({
      name: `recovery-${path}`,
      code: { bundle, entrypoint: 'train.py' },
      hyperparameters: { checkpoint_bytes: checkpointBytes / SCALE, step_seconds: 0.2, steps_after_resume: 2 },
      data: [{ source: dataset.replace(/data\.bin$/, ''), target: '/data' }],
      instance: { types: ['g5.xlarge', 'g6.xlarge'], spot: true },
      // Only the final checkpoint moves: the one the warning (or the handover) asks for.
      checkpoint: { intervalSeconds: 3600, graceSeconds: 30 },
      recovery: recovery[path],
    });
    const runs: RunRecord[] = [];
    for (const path of RECOVERY_PATHS) runs.push(await backend.submit({ spec: spec(path) }));
    // Minutes of booting and copying under the model: say where each run is as it changes.
    const seen = new Map<string, string>();
    watch = setInterval(() => {
      void Promise.all(runs.map((r) => backend.store.get(r.runId))).then((records) => {
        for (const [i, record] of records.entries()) {
          if (record === undefined) continue;
          const line = `${RECOVERY_PATHS[i]} attempt ${record.attempts.length}: ${record.status}${record.statusReason === undefined ? '' : ` (${record.statusReason})`}`;
          if (seen.get(record.runId) !== line) progress(line);
          seen.set(record.runId, line);
        }
      });
    }, 1000);
    // The first attempts boot, come online and copy the dataset under the model: a few minutes.
    // TRAINING means the launch command went out; the agent still fetches the bundle before the
    // script starts. A warning before the script's first step would find nothing to checkpoint,
    // and the next attempt would start from scratch: wait for a step of each.
    await waitUntil(
      'every script training',
      async () => (await Promise.all(runs.map((r) => printedMetrics(backend, r.runId)))).every(Boolean),
      15 * 60_000,
    );
    const [sequential, overlapped, handover] = runs;
    if (sequential === undefined || overlapped === undefined || handover === undefined) throw new Error('bench: a run was not submitted');
    const warning = Date.now();
    const recommended = (await backend.store.get(handover.runId))?.attempts[0]?.instanceId ?? '';
    await Promise.all([
      ...[sequential, overlapped].map((r) => backend.interrupt(r.runId, { graceMs: RECLAIM_MS / TIME_SCALE })),
      backend.router.emitRebalanceRecommendation(recommended),
    ]);
    const finals = await Promise.all(runs.map((r) => backend.waitForRun(r.runId)));
    const timelines = await Promise.all(
      finals.map(async (record, i) => timeline(RECOVERY_PATHS[i] ?? 'sequential', record, await metricsOf(backend, record.runId), warning)),
    );
    const [seq, over, handed] = timelines;
    const agentStart = over?.trainingResumed !== undefined && over.agentStarted !== undefined ? over.trainingResumed - over.agentStarted : 0;
    const prepare = (model.launchMs + model.ssmOnlineMs) / 1000 + DATASET_BYTES / (model.s3DownloadBytesPerSecond ?? Infinity);
    const upload = checkpointBytes / (model.s3UploadBytesPerSecond ?? Infinity);
    const target = Math.max(prepare, upload) + agentStart + 5;
    const ratio = (seq?.trainingResumed ?? NaN) / (over?.trainingResumed ?? NaN);
    const handoverRatio = (seq?.idle ?? NaN) / (handed?.idle ?? NaN);
    return { model, timelines, target, ratio, handoverRatio, idealRatio: (prepare + upload + agentStart) / (Math.max(prepare, upload) + agentStart) };
  } finally {
    clearInterval(watch);
    await backend.stop({ terminateInstances: true });
    await rm(root, { recursive: true, force: true });
  }
}

/** The profile the figures use, for the report. */
export const RECOVERY_PROFILE = LATENCY_PROFILES.aws;
