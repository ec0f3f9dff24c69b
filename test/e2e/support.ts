import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { exampleSpec, prepareExample, type PreparedExample } from '../../examples/linear/prepare';
import { INSTANCE_MARKER } from '../../local/compute';
import { findProcessesByEnv } from '../../local/process-tree';
import { startLocalBackend, type LocalBackend, type LocalBackendOptions } from '../../local/runtime';
import { readMetrics, type MetricLine } from '../../local/summary';
import type { RunRecord } from '../../shared/domain/run-record';

/** A local backend on a fresh temporary root, with the linear example uploaded. */
export interface E2eWorld {
  root: string;
  backend: LocalBackend;
  example: PreparedExample;
  /** Starts the control plane again on the same root (after `backend.stop()`). */
  restart(): Promise<LocalBackend>;
  close(): Promise<void>;
}

export async function startWorld(options: LocalBackendOptions = {}): Promise<E2eWorld> {
  const root = await mkdtemp(join(tmpdir(), 'runctl-e2e-'));
  let backend = await startLocalBackend({ ...options, root, persist: true });
  const example = await prepareExample(backend.s3, backend.services.bucket, { dataset: { rows: 2000 }, preferTorch: false });
  const world: E2eWorld = {
    root,
    get backend() {
      return backend;
    },
    example,
    async restart() {
      backend = await startLocalBackend({ ...options, root, persist: true });
      return backend;
    },
    async close() {
      await backend.stop({ terminateInstances: true });
      await rm(root, { recursive: true, force: true });
    },
  };
  return world;
}

/** Submits the example with small, paced epochs (so a test can act mid-training). */
export function submitExample(
  world: E2eWorld,
  hyperparameters: Record<string, string | number | boolean>,
  overrides: { maxRestartsOnError?: number } = {},
): Promise<RunRecord> {
  return world.backend.submit({ spec: exampleSpec(world.example, { hidden: 8, ...hyperparameters }, overrides) });
}

/** Polls `probe` until it returns a value (not undefined) or `timeoutMs` passes. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 180_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Resolves once the run has a complete checkpoint in S3 and is still training. */
export function waitForCheckpoint(world: E2eWorld, runId: string, timeoutMs?: number): Promise<RunRecord> {
  return waitFor(
    `a checkpoint of ${runId}`,
    async () => {
      const record = await world.backend.store.get(runId);
      if (record?.status !== 'TRAINING') return undefined;
      return (await world.backend.artifacts.latestCheckpoint(runId)) === undefined ? undefined : record;
    },
    timeoutMs,
  );
}

/** Every key under `runs/<runId>/`. */
export async function runKeys(world: E2eWorld, runId: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await world.backend.s3.send(
      new ListObjectsV2Command({ Bucket: world.backend.services.bucket, Prefix: `runs/${runId}/`, ContinuationToken: token }),
    );
    for (const object of page.Contents ?? []) if (object.Key !== undefined) keys.push(object.Key.slice(`runs/${runId}/`.length));
    token = page.NextContinuationToken;
  } while (token !== undefined);
  return keys.sort();
}

export function metricsOf(world: E2eWorld, runId: string): Promise<MetricLine[]> {
  return readMetrics(world.backend.s3, world.backend.services.bucket, runId);
}

/** Live processes of the run's instances, found by the marker every local instance process carries. */
export async function processesOf(record: RunRecord): Promise<number[]> {
  // Every node of a multi-node attempt too, released or not.
  const ids = [...new Set(record.attempts.flatMap((a) => [...(a.instanceId === undefined ? [] : [a.instanceId]), ...(a.nodes ?? []).map((n) => n.instanceId)]))];
  const found = await Promise.all(ids.map((id) => findProcessesByEnv(INSTANCE_MARKER, id)));
  return found.flat();
}

/** The text of an object in the local runs bucket. */
export async function objectText(world: E2eWorld, key: string): Promise<string> {
  const object = await world.backend.s3.send(new GetObjectCommand({ Bucket: world.backend.services.bucket, Key: key }));
  return (await object.Body?.transformToString('utf8')) ?? '';
}
