import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { expect } from 'vitest';
import { z } from 'zod';
import { INSTANCE_MARKER } from '../../local/compute';
import { findProcessesByEnv } from '../../local/process-tree';
import type { ExecutionOutcome } from '../../local/state-machine-runner';
import type { RunRecord } from '../../shared/domain/run-record';
import { countEndReasons } from '../../shared/domain/recovery';
import { isTerminal } from '../../shared/domain/run-status';
import { AwsCallFailedError, ThrottledError } from '../../shared/errors';
import type { LaunchRequest } from '../../shared/ports/compute';
import { exampleSpec } from '../../examples/linear/prepare';
import { metricsOf, startWorld, waitFor, type E2eWorld } from '../e2e/support';

/**
 * Chaos on the local backend: the real ASL, step and event handlers and agent, with faults
 * injected where AWS would fail. `startLocalBackend` takes no deps, but it hands out the very
 * adapter objects its handlers call (`backend.compute`, `backend.artifacts`), so a fault is a
 * wrapper installed on one of their methods: it runs a hook before (or after) the real call,
 * and the hook may throw the error the AWS adapter would raise (`Aws.Throttled` for a
 * transient failure, `Aws.CallFailed` for a fatal one) or kill the instance.
 */

/**
 * Short everything: a fault test must not wait minutes for a heartbeat timeout. The agent sends
 * no heartbeat while it uploads the final checkpoint and outputs, which takes several seconds of
 * AWS CLI calls on two loaded cores: the timeout leaves room for that. The warning-to-reclaim
 * grace (120 s on EC2) is 30 s: room for the stop, the final upload and the report on a loaded
 * machine; the run does not wait for it, as the control plane releases the old instance itself.
 */
export const CHAOS_OPTIONS = { heartbeatSeconds: 1, heartbeatTimeoutMs: 20_000, interruptGraceMs: 30_000, bootMs: 100 } as const;

/** Where a fault can be injected. `detail` says which call it is (run id, instance id, command comment). */
export type FaultPoint = 'launch' | 'launched' | 'readiness' | 'sendCommand' | 'commandSent' | 'terminate' | 'latestCheckpoint';

type Hook = (detail: string) => void | Promise<void>;

export class Faults {
  private readonly hooks: Array<{ point: FaultPoint; match: (detail: string) => boolean; run: Hook; fired: boolean }> = [];
  /** Every fault that fired, as `point detail`. */
  readonly fired: string[] = [];
  /** Every call through a fault point, fault or not, as `point detail`. */
  readonly calls: string[] = [];

  constructor(private readonly world: E2eWorld) {
    const compute = world.backend.compute;
    const artifacts = world.backend.artifacts;
    const launch = compute.launch.bind(compute);
    compute.launch = async (request: LaunchRequest) => {
      await this.fire('launch', request.runId);
      const launched = await launch(request);
      await this.fire('launched', launched.instanceId);
      return launched;
    };
    const readiness = compute.readiness.bind(compute);
    compute.readiness = async (instanceId: string) => {
      await this.fire('readiness', instanceId);
      return readiness(instanceId);
    };
    const sendCommand = compute.sendCommand.bind(compute);
    compute.sendCommand = async (instanceId, script, options) => {
      await this.fire('sendCommand', options?.comment ?? '');
      const commandId = await sendCommand(instanceId, script, options);
      await this.fire('commandSent', options?.comment ?? '');
      return commandId;
    };
    const terminate = compute.terminate.bind(compute);
    compute.terminate = async (instanceId: string) => {
      await this.fire('terminate', instanceId);
      return terminate(instanceId);
    };
    const latestCheckpoint = artifacts.latestCheckpoint.bind(artifacts);
    artifacts.latestCheckpoint = async (runId: string) => {
      await this.fire('latestCheckpoint', runId);
      return latestCheckpoint(runId);
    };
  }

  /** Runs `hook` on the next call at `point` whose detail matches (once). */
  next(point: FaultPoint, hook: Hook, match: (detail: string) => boolean = () => true): void {
    this.hooks.push({ point, match, run: hook, fired: false });
  }

  /** Whether every hook installed has fired. */
  allFired(): boolean {
    return this.hooks.every((h) => h.fired);
  }

  /** Kills (SIGKILL, no grace) the instance a run is on now, as a reclaim or a host failure does. */
  async killCurrentInstance(runId: string): Promise<string> {
    const record = await this.world.backend.store.get(runId);
    const instanceId = record?.attempts.at(-1)?.instanceId;
    if (instanceId === undefined) throw new Error(`run ${runId} has no instance to kill`);
    await this.world.backend.compute.kill(instanceId);
    return instanceId;
  }

  private async fire(point: FaultPoint, detail: string): Promise<void> {
    this.calls.push(`${point} ${detail}`);
    const hook = this.hooks.find((h) => !h.fired && h.point === point && h.match(detail));
    if (hook === undefined) return;
    hook.fired = true;
    this.fired.push(`${point} ${detail}`);
    await hook.run(detail);
  }
}

/** What the EC2 adapter raises for a throttled call, after the SDK's own retries. */
export function throttled(operation: string): ThrottledError {
  return new ThrottledError(`${operation}: Request limit exceeded (RequestLimitExceeded)`);
}

/** What the EC2 adapter raises for a call no retry fixes. */
export function denied(operation: string): AwsCallFailedError {
  return new AwsCallFailedError(`${operation}: You are not authorized to perform this operation (UnauthorizedOperation)`);
}

export interface ChaosWorld {
  world: E2eWorld;
  faults: Faults;
  close(): Promise<void>;
}

export async function startChaosWorld(): Promise<ChaosWorld> {
  const world = await startWorld(CHAOS_OPTIONS);
  return { world, faults: new Faults(world), close: () => world.close() };
}

/**
 * The example with paced epochs: `epochs × epochSeconds` of training, checkpointed every 5 s by
 * the agent. With `holdAfterEpoch` the first attempt to reach that epoch waits there, checkpointed,
 * for its stop signal, so an interruption or a kill lands mid-training however slow the machine is.
 */
export function submitPaced(world: E2eWorld, epochs: number, epochSeconds = 0.5, options: { holdAfterEpoch?: number } = {}) {
  const hold: Record<string, number> = options.holdAfterEpoch === undefined ? {} : { hold_after_epoch: options.holdAfterEpoch };
  const spec = exampleSpec(world.example, { hidden: 8, epochs, min_epoch_seconds: epochSeconds, ...hold });
  return world.backend.submit({ spec: { ...spec, recovery: { maxRestartsOnError: 0 } } });
}

/** The epoch of the newest complete checkpoint in S3 (0 when there is none). */
export async function checkpointedEpoch(world: E2eWorld, runId: string): Promise<number> {
  const latest = await world.backend.artifacts.latestCheckpoint(runId);
  if (latest === undefined) return 0;
  return epochAt(world, latest.uri);
}

async function epochAt(world: E2eWorld, uri: string): Promise<number> {
  const key = `${uri.replace(/^s3:\/\/[^/]+\//, '')}progress.json`;
  const text = await objectText(world, key);
  return z.object({ epoch: z.number().int() }).parse(JSON.parse(text)).epoch;
}

async function objectText(world: E2eWorld, key: string): Promise<string> {
  const object = await world.backend.s3.send(new GetObjectCommand({ Bucket: world.backend.services.bucket, Key: key }));
  return (await object.Body?.transformToString('utf8')) ?? '';
}

/** Waits until the run trains and has a complete checkpoint of at least `epoch` in S3; returns that epoch. */
export function waitForCheckpointEpoch(world: E2eWorld, runId: string, epoch = 1): Promise<number> {
  // Generous: boot, the data copy and the first upload run many AWS CLI processes on two cores.
  return waitFor(
    `a checkpoint of epoch ${epoch} of ${runId}`,
    async () => {
      const record = await world.backend.store.get(runId);
      if (record?.status !== 'TRAINING') return undefined;
      const done = await checkpointedEpoch(world, runId);
      return done >= epoch ? done : undefined;
    },
    180_000,
  );
}

/** The states that were retried in the run's execution, in order. */
export function retriedStates(world: E2eWorld, runId: string): string[] {
  const history = world.backend.executions.execution(runId)?.history ?? [];
  return history.flatMap((e) => (e.type === 'StateRetried' ? [e.state.name] : []));
}

/** Waits until the run's newest attempt is `attempt` and it trains. */
export function waitForTrainingAttempt(world: E2eWorld, runId: string, attempt: number): Promise<RunRecord> {
  return waitFor(`attempt ${attempt} of ${runId} to train`, async () => {
    const record = await world.backend.store.get(runId);
    return record?.status === 'TRAINING' && record.attempts.at(-1)?.attempt === attempt ? record : undefined;
  });
}

export function waitForStatus(world: E2eWorld, runId: string, status: string): Promise<RunRecord> {
  return waitFor(`${runId} to be ${status}`, async () => {
    const record = await world.backend.store.get(runId);
    return record?.status === status ? record : undefined;
  });
}

const CompleteSchema = z.object({ uri: z.string(), files: z.number().int(), bytes: z.number() });
const LatestSchema = z.object({ uri: z.string() });

/**
 * Every checkpoint prefix with a `_COMPLETE.json` holds exactly the files and bytes it names,
 * and `latest.json` (when there is one) points at such a prefix. Returns the complete prefixes.
 */
export async function expectCheckpointsIntact(world: E2eWorld, runId: string): Promise<string[]> {
  const prefix = `runs/${runId}/checkpoints/`;
  const objects: Array<{ key: string; size: number }> = [];
  let token: string | undefined;
  do {
    const page = await world.backend.s3.send(
      new ListObjectsV2Command({ Bucket: world.backend.services.bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? []) objects.push({ key: (o.Key ?? '').slice(prefix.length), size: o.Size ?? 0 });
    token = page.NextContinuationToken;
  } while (token !== undefined);
  const complete = objects.filter((o) => o.key.endsWith('/_COMPLETE.json')).map((o) => o.key.split('/')[0] ?? '');
  for (const id of complete) {
    const marker = CompleteSchema.parse(JSON.parse(await objectText(world, `${prefix}${id}/_COMPLETE.json`)));
    const files = objects.filter((o) => o.key.startsWith(`${id}/`) && o.key !== `${id}/_COMPLETE.json`);
    expect({ id, files: files.length, bytes: files.reduce((sum, f) => sum + f.size, 0) }).toEqual({
      id,
      files: marker.files,
      bytes: marker.bytes,
    });
  }
  if (objects.some((o) => o.key === 'latest.json')) {
    const latest = LatestSchema.parse(JSON.parse(await objectText(world, `${prefix}latest.json`)));
    const id = latest.uri.replace(/\/$/, '').split('/').at(-1) ?? '';
    expect(complete).toContain(id);
  }
  return complete;
}

export interface Verdict {
  record: RunRecord;
  outcome: ExecutionOutcome;
}

/**
 * Waits for the run's execution to end and checks what must hold whatever failed: the record is
 * terminal and agrees with the execution, every attempt ended, no task token, no instance of the
 * run still up, no process carrying an instance marker, and no checkpoint lost.
 */
export async function finish(world: E2eWorld, runId: string): Promise<Verdict> {
  const record = await world.backend.waitForRun(runId);
  const execution = world.backend.executions.execution(runId);
  if (execution === undefined) throw new Error(`no execution of ${runId}`);
  const outcome = await execution.outcome;

  expect(isTerminal(record.status)).toBe(true);
  expect(outcome.status === 'SUCCEEDED').toBe(record.status === 'SUCCEEDED');
  if (record.status !== 'SUCCEEDED') {
    expect(record.statusReason ?? '').not.toBe('');
    expect(outcome.status).toBe('FAILED');
  }
  expect(record.taskToken).toBeUndefined();
  expect(record.attempts.filter((a) => a.endedAt === undefined)).toEqual([]);
  // The counters agree with the attempts: each interruption counted once, whatever the path.
  expect({ interruptions: record.interruptions, userFailures: record.userFailures }).toEqual(
    countEndReasons(record.attempts.map((a) => a.endReason)),
  );

  const live = (await world.backend.compute.listTaggedInstances()).filter((i) => i.runId === runId);
  expect(live).toEqual([]);
  const instanceIds = record.attempts.flatMap((a) => (a.instanceId === undefined ? [] : [a.instanceId]));
  // Every instance ever launched for the run, recorded on an attempt or not.
  for (const instanceId of instanceIds) expect(await findProcessesByEnv(INSTANCE_MARKER, instanceId)).toEqual([]);

  await expectCheckpointsIntact(world, runId);
  return { record, outcome };
}

/**
 * For a run that ended SUCCEEDED after a fault: the attempt after the fault resumed from a
 * checkpoint at least as new as the newest one in S3 when the fault struck, trained the epochs
 * after it up to the last, and the script said so.
 */
export async function expectResumedAfter(world: E2eWorld, record: RunRecord, epochBeforeFault: number, epochs: number): Promise<number> {
  expect(record.status).toBe('SUCCEEDED');
  const last = record.attempts.at(-1);
  expect(record.attempts.length).toBeGreaterThanOrEqual(2);
  const metrics = await metricsOf(world, record.runId);
  const lastAttempt = last?.attempt ?? 0;
  const resumed = metrics.find((m) => m.attempt === lastAttempt && typeof m.resumed_from_epoch === 'number')?.resumed_from_epoch;
  if (epochBeforeFault === 0 && last?.resumeFrom === undefined) {
    expect(resumed).toBeUndefined();
  } else {
    expect(last?.resumeFrom).toBeDefined();
    expect(resumed).toBe(await epochAt(world, last?.resumeFrom ?? ''));
    expect(Number(resumed)).toBeGreaterThanOrEqual(epochBeforeFault);
  }
  const trained = metrics.filter((m) => m.attempt === lastAttempt && typeof m.epoch === 'number').map((m) => m.epoch);
  expect(trained.at(-1)).toBe(epochs);
  expect(trained[0]).toBe(Number(resumed ?? 0) + 1);
  return Number(resumed ?? 0);
}
