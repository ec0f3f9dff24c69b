import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { packDirectory } from '../cli/pack';
import { startLocalBackend, type LocalBackend } from '../local/runtime';
import { printedMetrics, waitUntil } from './recovery';

/**
 * Where the seconds of a spot warning go on the local backend, for a small model (a 1 MB
 * checkpoint): the warning handler, the stop signal reaching the script, the agent's final upload
 * and report, and the next attempt's start. Instant latency model: these are the control plane's
 * and the agent's own seconds, nothing simulated. Measured on a quiet machine, then beside busy
 * loops on every core (a loaded instance: data loaders saturate its CPUs).
 */

export interface StopPathFigures {
  label: string;
  loadAverage: number;
  /** Seconds after the warning. */
  stopSignal: number;
  checkpointComplete: number;
  outcomeReported: number;
  trainingResumed: number;
  /** Seconds from the script's last line to the run's SUCCEEDED. */
  lastLineToSucceeded: number;
}

async function metrics(backend: LocalBackend, runId: string): Promise<Array<Record<string, number | string>>> {
  try {
    const object = await backend.s3.send(new GetObjectCommand({ Bucket: backend.services.bucket, Key: `runs/${runId}/metrics.jsonl` }));
    const text = (await object.Body?.transformToString()) ?? '';
    return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, number | string>);
  } catch (error) {
    if (error instanceof Error && error.name === 'NoSuchKey') return [];
    throw error;
  }
}

/** Busy loops, one per core asked for, in child processes (ended by `stop`). */
function spin(cores: number): { stop(): void } {
  const children: ChildProcess[] = [];
  for (let i = 0; i < cores; i++) children.push(fork('-e', ['for (;;) {}'], { execArgv: [], stdio: 'ignore' }));
  return { stop: () => children.forEach((c) => c.kill('SIGKILL')) };
}

async function measureOnce(backend: LocalBackend, bundle: string, label: string, busyCores: number): Promise<StopPathFigures> {
  const run = await backend.submit({
    spec: {
      name: `stop-path-${label.replace(/[^a-z0-9]+/g, "-")}`,
      code: { bundle, entrypoint: 'train.py' },
      hyperparameters: { checkpoint_bytes: 1_000_000, step_seconds: 0.2, steps_after_resume: 3 },
      instance: { types: ['c7i.large'], spot: true },
      checkpoint: { intervalSeconds: 3600, graceSeconds: 30 },
    },
  });
  const busy = spin(busyCores);
  try {
    await waitUntil('the script stepping', () => printedMetrics(backend, run.runId), 180_000);
    // The busy loops run 20 s before the warning, so the load average shows them.
    await new Promise((resolve) => setTimeout(resolve, busyCores > 0 ? 20_000 : 1000));
    const loadAverage = loadavg()[0] ?? 0;
    const warning = Date.now();
    await backend.interrupt(run.runId, { graceMs: 60_000 });
    const record = await backend.waitForRun(run.runId);
    if (record.status !== 'SUCCEEDED') throw new Error(`bench: run ${run.runId} ended ${record.status}: ${record.statusReason ?? ''}`);
    const lines = await metrics(backend, run.runId);
    const at = (value: unknown) => (typeof value === 'number' ? value : typeof value === 'string' ? Date.parse(value) : NaN);
    const after = (value: unknown) => (at(value) - warning) / 1000;
    const first = record.attempts[0];
    const last = lines.at(-1);
    return {
      label,
      loadAverage,
      stopSignal: after(lines.find((m) => m.attempt === 1 && m.stop_signal_at_ms !== undefined)?.stop_signal_at_ms),
      checkpointComplete: after(first?.checkpointCompletedAt),
      outcomeReported: after(first?.endedAt),
      trainingResumed: after(lines.find((m) => m.attempt === 2 && m.resumed_at_ms !== undefined)?.resumed_at_ms),
      lastLineToSucceeded: (at(record.phases?.at(-1)?.at) - at(last?.ts)) / 1000,
    };
  } finally {
    busy.stop();
  }
}

export async function measureStopPath(busyCores: number): Promise<StopPathFigures[]> {
  const root = await mkdtemp(join(tmpdir(), 'runctl-bench-stop-'));
  const backend = await startLocalBackend({ root, persist: false, heartbeatSeconds: 5 });
  try {
    const packed = await packDirectory(join(import.meta.dirname, 'recovery-script'));
    const key = `bundles/${packed.sha256}.tar.gz`;
    await backend.s3.send(new PutObjectCommand({ Bucket: backend.services.bucket, Key: key, Body: await readFile(packed.file) }));
    await rm(join(packed.file, '..'), { recursive: true, force: true });
    const bundle = `s3://${backend.services.bucket}/${key}`;
    return [await measureOnce(backend, bundle, 'quiet', 0), await measureOnce(backend, bundle, `${busyCores} busy loops`, busyCores)];
  } finally {
    await backend.stop({ terminateInstances: true });
    await rm(root, { recursive: true, force: true });
  }
}
