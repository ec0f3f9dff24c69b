import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exampleSpec, prepareExample } from '../examples/linear/prepare';
import { startLocalBackend, type LocalBackend } from '../local/runtime';

/**
 * Step Functions state transitions from real executions of the train-run ASL on the local
 * backend (states entered plus retries, what Step Functions bills): a run of 1 epoch, a run of
 * 50 epochs, and a run with one spot interruption. Training is one waitForTaskToken wait, so the
 * first two must be equal (DESIGN.md §9). Only the readiness and prefetch polls depend on timing
 * (how long the instance boots and the copy takes), never on training time; they are counted apart.
 */

export interface TransitionFigure {
  run: string;
  epochs: number;
  status: string;
  attempts: number;
  transitions: number;
  /** WaitForInstance/CheckInstance/IsInstanceReady and WaitForPrefetch/CheckPrefetch/IsPrefetchDone entries after the first of each. */
  pollTransitions: number;
  wallSeconds: number;
}

const POLL_STATES = new Set(['WaitForInstance', 'CheckInstance', 'IsInstanceReady', 'WaitForPrefetch', 'CheckPrefetch', 'IsPrefetchDone']);

async function run(backend: LocalBackend, prepared: Awaited<ReturnType<typeof prepareExample>>, name: string, epochs: number, interrupt: boolean): Promise<TransitionFigure> {
  const started = performance.now();
  const spec = exampleSpec(prepared, { hidden: 8, epochs, min_epoch_seconds: interrupt ? 0.5 : 0.05 }, { name });
  const record = await backend.submit({ spec });
  if (interrupt) {
    for (;;) {
      const current = await backend.store.get(record.runId);
      if (current?.status === 'TRAINING' && (await backend.artifacts.latestCheckpoint(record.runId)) !== undefined) break;
      if (current === undefined || ['SUCCEEDED', 'FAILED_USER'].includes(current.status)) throw new Error(`${name} ended before its interruption`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await backend.interrupt(record.runId, { graceMs: 5_000 });
  }
  const final = await backend.waitForRun(record.runId);
  if (interrupt && final.attempts.length < 2) {
    throw new Error(`${name}: the interruption did not lead to a second attempt (${final.attempts.map((a) => a.endReason).join(', ')})`);
  }
  const execution = backend.executions.execution(record.runId);
  if (execution === undefined) throw new Error(`no execution of ${record.runId}`);
  const entered = execution.statesEntered();
  // Each readiness check and prefetch poll beyond the first (Wait → Check → Choice) is timing, not training.
  const polls = entered.filter((s) => POLL_STATES.has(s)).length;
  const firstPasses = 4 * final.attempts.length;
  return {
    run: name,
    epochs,
    status: final.status,
    attempts: final.attempts.length,
    transitions: execution.transitions(),
    pollTransitions: Math.max(0, polls - firstPasses),
    wallSeconds: (performance.now() - started) / 1000,
  };
}

export async function measureTransitions(): Promise<TransitionFigure[]> {
  const root = await mkdtemp(join(tmpdir(), 'runctl-bench-'));
  const backend = await startLocalBackend({ root, persist: false, heartbeatSeconds: 1, interruptGraceMs: 5_000, bootMs: 100 });
  try {
    const prepared = await prepareExample(backend.s3, backend.services.bucket, { dataset: { rows: 2000 }, preferTorch: false });
    const figures: TransitionFigure[] = [];
    figures.push(await run(backend, prepared, 'bench-1-epoch', 1, false));
    figures.push(await run(backend, prepared, 'bench-50-epochs', 50, false));
    figures.push(await run(backend, prepared, 'bench-24-epochs-1-interruption', 24, true));
    return figures;
  } finally {
    await backend.stop({ terminateInstances: true });
    await rm(root, { recursive: true, force: true });
  }
}
