import { exampleSpec } from '../../examples/linear/prepare';
import { afterEach, describe, expect, it } from 'vitest';
import { metricsOf, objectText, processesOf, runKeys, startWorld, submitExample, type E2eWorld } from './support';

let world: E2eWorld | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

describe('local backend: the example run', () => {
  it('succeeds and leaves checkpoints, logs, metrics and an outputs manifest in the local S3', async () => {
    world = await startWorld();
    const submitted = await submitExample(world, { epochs: 4 });

    const record = await world.backend.waitForRun(submitted.runId);

    expect(record.status).toBe('SUCCEEDED');
    expect(record.attempts).toMatchObject([{ attempt: 1, endReason: 'SUCCEEDED' }]);
    const keys = await runKeys(world, submitted.runId);
    expect(keys).toContain('checkpoints/latest.json');
    expect(keys.some((k) => /^checkpoints\/0001-\d{6}\/model\.json$/.test(k))).toBe(true);
    expect(keys.some((k) => /^checkpoints\/0001-\d{6}\/_COMPLETE\.json$/.test(k))).toBe(true);
    expect(keys).toContain('logs/attempt-1.log');
    expect(keys).toContain('metrics.jsonl');
    expect(keys).toContain('outputs/_manifest.json');
    expect(keys).toContain('outputs/model.json');
    const metrics = await metricsOf(world, submitted.runId);
    expect(metrics.filter((m) => typeof m.epoch === 'number').map((m) => m.epoch)).toEqual([1, 2, 3, 4]);
    expect(metrics.every((m) => m.attempt === 1)).toBe(true);
    expect(await processesOf(record)).toEqual([]);
  }, 300_000);

  it('ends a failing script FAILED_USER with its exit code and log tail in the status reason', async () => {
    world = await startWorld();
    const submitted = await submitExample(world, { epochs: 4, fail_at_epoch: 2 });

    const record = await world.backend.waitForRun(submitted.runId);

    expect(record.status).toBe('FAILED_USER');
    expect(record.statusReason).toContain('exit code 1');
    expect(record.statusReason).toContain('ValueError: fail-at-epoch 2');
    expect(record.attempts).toMatchObject([{ attempt: 1, endReason: 'TRAINING_FAILED' }]);
    const log = await objectText(world, `runs/${submitted.runId}/logs/attempt-1.log`);
    expect(log).toContain('ValueError: fail-at-epoch 2');
    expect(await processesOf(record)).toEqual([]);
  }, 300_000);

  it('refuses a dataset volume, which needs EBS, as a precheck failure that says what to use instead', async () => {
    world = await startWorld();
    const spec = { ...exampleSpec(world.example, { epochs: 1 }), volume: { dataset: 's3://datasets/imagenet/' } };

    const submitted = await world.backend.submit({ spec });
    const record = await world.backend.waitForRun(submitted.runId);

    expect(record.status).toBe('FAILED_PRECHECKS');
    expect(record.statusReason).toMatch(/need EBS.*spec\.data instead/);
    expect(await processesOf(record)).toEqual([]);
  }, 300_000);

  it('refuses a docker: auto run when no Docker engine answers, saying what to start', async () => {
    world = await startWorld({ docker: false });
    const spec = { ...exampleSpec(world.example, { epochs: 1 }), docker: 'auto' };

    const submitted = await world.backend.submit({ spec });
    const record = await world.backend.waitForRun(submitted.runId);

    expect(record.status).toBe('FAILED_PRECHECKS');
    expect(record.statusReason).toContain('needs a Docker engine');
    expect(record.statusReason).toContain('scripts/docker-test-env.sh start');
    expect(record.attempts).toEqual([]);
  }, 300_000);
});
