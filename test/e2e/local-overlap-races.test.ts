import { afterEach, describe, expect, it } from 'vitest';
import { INSTANCE_MARKER } from '../../local/compute';
import { findProcessesByEnv } from '../../local/process-tree';
import type { TaskTokens } from '../../local/task-tokens';
import type { RunRecord } from '../../shared/domain/run-record';
import { processesOf, startWorld, submitExample, waitFor, waitForCheckpoint, type E2eWorld } from './support';

/**
 * The races of provision on warning on the local backend (docs/recovery.md, "Every race, one
 * outcome"): a cancel during the overlap, and the script finishing as the warning arrives. Each
 * race is made deterministic by holding the old agent's callback at the task-token registry (the
 * control plane's side of SendTaskSuccess / SendTaskFailure) until the test has acted.
 */
let world: E2eWorld | undefined;

const CHECKPOINT_WAIT_MS = 180_000;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

/** A callback the agent has sent and the control plane has not yet received. */
interface HeldCallback {
  kind: 'success' | 'failure';
  error?: string;
  deliver(): void;
}

/** Holds the next task callback that `matches`; resolves with it once the agent has sent it. */
function holdNextCallback(tokens: TaskTokens, matches: (held: Omit<HeldCallback, 'deliver'>) => boolean): Promise<HeldCallback> {
  const success = tokens.success.bind(tokens);
  const failure = tokens.failure.bind(tokens);
  const restore = () => {
    tokens.success = success;
    tokens.failure = failure;
  };
  return new Promise((resolve) => {
    tokens.success = (token, output) => {
      if (!matches({ kind: 'success' })) return success(token, output);
      restore();
      resolve({ kind: 'success', deliver: () => success(token, output) });
    };
    tokens.failure = (token, error, cause) => {
      if (!matches({ kind: 'failure', error })) return failure(token, error, cause);
      restore();
      resolve({ kind: 'failure', error, deliver: () => failure(token, error, cause) });
    };
  });
}

async function replacementOf(world: E2eWorld, runId: string) {
  return waitFor('the replacement launched on the warning', async () => (await world.backend.store.get(runId))?.attempts[0]?.replacement);
}

/** Processes of every instance the run ever had, its replacement included. */
async function everyProcessOf(record: RunRecord): Promise<number[]> {
  const replacements = record.attempts.flatMap((a) => (a.replacement === undefined ? [] : [a.replacement.instanceId]));
  const found = await Promise.all(replacements.map((id) => findProcessesByEnv(INSTANCE_MARKER, id)));
  return [...(await processesOf(record)), ...found.flat()];
}

describe('local backend: races of the replacement started on the warning', () => {
  it('a cancel during the overlap releases both instances and ends CANCELLED, nothing left running', async () => {
    world = await startWorld();
    const submitted = await submitExample(world, { epochs: 12, min_epoch_seconds: 0.7, hold_after_epoch: 2 });
    await waitForCheckpoint(world, submitted.runId, CHECKPOINT_WAIT_MS);
    // The overlap stays open until the test has cancelled: the old agent's Spot.Interrupted is held.
    const checkpointed = holdNextCallback(world.backend.tokens, (c) => c.error === 'Spot.Interrupted');

    const interruption = await world.backend.interrupt(submitted.runId, { graceMs: 90_000 });
    const replacement = await replacementOf(world, submitted.runId);
    const held = await checkpointed;
    const cancelling = await world.backend.cancel(submitted.runId);
    held.deliver();
    const record = await world.backend.waitForRun(submitted.runId);

    expect(cancelling.status).toBe('CANCELLING');
    expect(record.status).toBe('CANCELLED');
    // The run never adopted the replacement: one attempt, its replacement released.
    expect(record.attempts).toHaveLength(1);
    expect(record.attempts[0]).toMatchObject({ attempt: 1, instanceId: interruption.instanceId });
    expect(record.attempts[0]?.replacement).toMatchObject({ attempt: 2, instanceId: replacement.instanceId });
    expect(record.attempts[0]?.replacement?.releasedAt).toBeDefined();
    for (const instanceId of [interruption.instanceId, replacement.instanceId]) {
      expect((await world.backend.compute.describe(instanceId))?.state).toBe('terminated');
    }
    expect(await world.backend.compute.listTaggedInstances()).toEqual([]);
    expect(await everyProcessOf(record)).toEqual([]);
  }, 400_000);

  it('the script finishing as the warning arrives ends SUCCEEDED: the replacement released, no interruption counted', async () => {
    world = await startWorld();
    const submitted = await submitExample(world, { epochs: 3, min_epoch_seconds: 0.3 });
    // The last epoch is done and the agent reports success; the control plane hears of it only
    // after the warning has marked the attempt and the replacement has launched.
    const finished = holdNextCallback(world.backend.tokens, (c) => c.kind === 'success');
    const training = await waitFor('the run to train', async () => {
      const record = await world?.backend.store.get(submitted.runId);
      return record?.status === 'TRAINING' ? record : undefined;
    }, CHECKPOINT_WAIT_MS);
    const held = await finished;
    const instanceId = training.attempts[0]?.instanceId ?? '';

    await world.backend.router.emitSpotInterruptionWarning(instanceId);
    const replacement = await replacementOf(world, submitted.runId);
    held.deliver();
    const record = await world.backend.waitForRun(submitted.runId);

    expect(record.status).toBe('SUCCEEDED');
    expect(record.interruptions).toBe(0);
    expect(record.attempts).toHaveLength(1);
    expect(record.attempts[0]).toMatchObject({ attempt: 1, instanceId, endReason: 'SUCCEEDED' });
    expect(record.attempts[0]?.warnedAt).toBeDefined();
    expect(record.attempts[0]?.replacement).toMatchObject({ attempt: 2, instanceId: replacement.instanceId });
    expect(record.attempts[0]?.replacement?.releasedAt).toBeDefined();
    expect((await world.backend.compute.describe(replacement.instanceId))?.state).toBe('terminated');
    expect(await world.backend.compute.listTaggedInstances()).toEqual([]);
    expect(await everyProcessOf(record)).toEqual([]);
  }, 400_000);

  it('a control-plane restart during the overlap: the resumed run still adopts the replacement, one instance per attempt', async () => {
    world = await startWorld();
    const submitted = await submitExample(world, { epochs: 12, min_epoch_seconds: 0.7, hold_after_epoch: 2 });
    await waitForCheckpoint(world, submitted.runId, CHECKPOINT_WAIT_MS);

    const interruption = await world.backend.interrupt(submitted.runId, { graceMs: 90_000 });
    const replacement = await replacementOf(world, submitted.runId);
    // prepare-replacement lived in the stopped process; the instances and the record did not.
    await world.backend.stop();
    const restarted = await world.restart();
    expect(restarted.resumed).toEqual([submitted.runId]);
    const record = await restarted.waitForRun(submitted.runId);

    expect(record.status).toBe('SUCCEEDED');
    expect(record.interruptions).toBe(1);
    expect(record.attempts).toMatchObject([
      { attempt: 1, instanceId: interruption.instanceId, endReason: 'SPOT_INTERRUPTED' },
      { attempt: 2, instanceId: replacement.instanceId, endReason: 'SUCCEEDED' },
    ]);
    expect(record.attempts[0]?.replacement?.releasedAt).toBeUndefined();
    expect(new Set(record.attempts.map((a) => a.instanceId)).size).toBe(2);
    expect(await restarted.compute.listTaggedInstances()).toEqual([]);
    expect(await everyProcessOf(record)).toEqual([]);
  }, 400_000);
});
