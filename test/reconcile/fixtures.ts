import { randomUUID } from 'node:crypto';
import type { Attempt, RunRecord } from '../../shared/domain/run-record';
import { parseRunSpec, type RunSpecInput } from '../../shared/domain/run-spec';
import type { RunStatus } from '../../shared/domain/run-status';

export const NOW = new Date('2026-03-01T12:00:00.000Z');

/** An instant `minutes` before NOW. */
export function minutesAgo(minutes: number, now: Date = NOW): string {
  return new Date(now.getTime() - minutes * 60_000).toISOString();
}

export const baseSpec: RunSpecInput = {
  name: 'resnet',
  code: { bundle: 's3://runctl-runs/bundles/abc.tar.gz', entrypoint: 'train.py' },
  instance: { types: ['g5.xlarge'] },
};

/** A run record in `status`, created `createdMinutesAgo` before NOW, with the given attempts. */
export function runRecord(options: {
  status: RunStatus;
  attempts?: Attempt[];
  limits?: { maxRuntime?: number | string; maxCostUsd?: number };
  createdMinutesAgo?: number;
  taskToken?: string;
  costUsd?: number;
  now?: Date;
}): RunRecord {
  const createdAt = minutesAgo(options.createdMinutesAgo ?? 60, options.now);
  const attempts = options.attempts ?? [];
  return {
    runId: `r-${randomUUID().replaceAll('-', '').slice(0, 16)}`,
    owner: 'arn:aws:sts::123456789012:assumed-role/ml-engineer/alice',
    spec: parseRunSpec({ ...baseSpec, limits: options.limits }),
    specHash: 'hash',
    status: options.status,
    createdAt,
    updatedAt: createdAt,
    attempts,
    taskToken: options.taskToken,
    taskTokenAttempt: options.taskToken === undefined ? undefined : attempts.at(-1)?.attempt,
    latestCheckpoint: { uri: 's3://runctl-runs/runs/x/checkpoints/0001-000003/', attempt: 1, createdAt },
    costUsd: options.costUsd ?? 0,
    interruptions: 0,
    userFailures: 0,
  };
}

export function attemptOn(instanceId: string, startedMinutesAgo: number, overrides: Partial<Attempt> = {}, now: Date = NOW): Attempt {
  return {
    attempt: 1,
    instanceId,
    instanceType: 'g5.xlarge',
    availabilityZone: 'us-east-1a',
    spot: false,
    startedAt: minutesAgo(startedMinutesAgo, now),
    ...overrides,
  };
}
