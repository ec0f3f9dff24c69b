import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import { loadAsl, localLambdaArn } from '../../local/asl';
import { LocalStateMachine, type LocalLambda } from '../../local/state-machine-runner';
import type { TaskTokens } from '../../local/task-tokens';
import * as runVolume from '../../functions/volumes/run-volume';
import type { RunSpecInput } from '../../shared/domain/run-spec';
import { parseRunSpec } from '../../shared/domain/run-spec';
import type { RunStatus } from '../../shared/domain/run-status';
import type { StepDeps } from '../../shared/usecases/step-deps';
import { PREFETCH_EXIT } from '../../shared/agent/commands';
import { startSimulatedAccount, trainRunLambdas, type AgentBehaviour, type RunningAccount, type SimulatedAccount } from './train-run-world';

const BUCKET = 'runctl-train-run-tests';
/** The owner runScenario submits as (the API's `{runId, owner, spec}`). */
const ALICE = 'arn:aws:iam::123456789012:user/alice';
const BOB = 'arn:aws:iam::123456789012:role/bob';
const TABLE = 'runs';

let account: RunningAccount | undefined;
let world: SimulatedAccount;
let tokens: TaskTokens;
let sequence = 0;

beforeAll(async () => {
  account = await startSimulatedAccount({ motoEndpoint: inject('motoEndpoint'), bucket: BUCKET, table: TABLE });
  ({ world, tokens } = account);
});
afterAll(async () => {
  await account?.close();
});

/** What BuildImage hands the nested execution: the build-image machine, its name and its input. */
const NestedBuildSchema = z.object({
  StateMachineArn: z.string(),
  Name: z.string(),
  Input: z.object({ owner: z.string(), request: z.object({ bundle: z.string(), bundleSha: z.string(), dockerfile: z.string().optional() }).loose() }),
});

/**
 * Stands in for `startExecution.sync:2` of build-image: records the catalog entry as RecordImage
 * does and answers as Step Functions does (the execution's description, its output as JSON).
 */
function successfulBuild(calls: Array<z.infer<typeof NestedBuildSchema>> = []): LocalLambda {
  return async (event) => {
    const request = NestedBuildSchema.parse(event);
    calls.push(request);
    const { owner, request: build } = request.Input;
    const digest = `sha256:${build.bundleSha}`;
    const image = {
      owner,
      bundleSha: build.bundleSha,
      repository: 'runctl/training',
      imageUri: `123456789012.dkr.ecr.us-east-1.amazonaws.com/runctl/training@${digest}`,
      digest,
      tag: `bundle-${build.bundleSha}-${request.Name}`,
      buildId: request.Name,
      dockerfile: build.dockerfile ?? 'Dockerfile',
      createdAt: new Date().toISOString(),
    };
    // As PrepareBuild and RecordImage do: the owner's entry the build started from is the one it replaces.
    await world.catalog.putImage(image, { replaces: (await world.catalog.getImage(owner, build.bundleSha))?.buildId });
    return { ExecutionArn: `arn:aws:states:us-east-1:000000000000:execution:build-image:${request.Name}`, Status: 'SUCCEEDED', Output: image };
  };
}

function lambdas(deps: StepDeps): Record<string, LocalLambda> {
  return trainRunLambdas(world, deps, successfulBuild());
}

function spec(overrides: Partial<RunSpecInput> = {}): RunSpecInput {
  return {
    name: 'mnist',
    code: { bundle: `s3://${BUCKET}/bundles/${'a'.repeat(64)}.tar.gz`, entrypoint: 'train.py' },
    hyperparameters: { epochs: 2 },
    instance: { types: ['g5.xlarge', 'g6.xlarge'], ami: 'ami-0abc1234' },
    ...overrides,
  };
}

interface Scenario {
  spec?: RunSpecInput;
  agent?: AgentBehaviour[];
  stateOverrides?: Record<string, LocalLambda>;
  clock?: () => Date;
  heartbeatMs?: number;
  /** Submit as the API does (a PENDING record and `{runId, owner, spec}`), else a bare spec. */
  viaApi?: boolean;
}

/** Runs the real ASL with the real handlers over the simulated account. */
async function runScenario(scenario: Scenario = {}) {
  sequence += 1;
  const runId = `r-test-${sequence}-${Date.now().toString(36)}`;
  world.agent = scenario.agent ?? [{ kind: 'succeed' }];
  await world.put(`bundles/${'a'.repeat(64)}.tar.gz`, 'tarball');
  const deps = world.deps(scenario.clock);
  const statuses: RunStatus[] = [];
  const store = deps.store;
  const recordingStore = Object.assign(Object.create(Object.getPrototypeOf(store)), store);
  recordingStore.transition = async (...args: Parameters<typeof store.transition>) => {
    const updated = await store.transition(...args);
    statuses.push(args[2]);
    return updated;
  };
  // ProvisionInstance reads the catalog and EC2 volumes to start next to a free dataset volume.
  const runDeps = { ...deps, store: recordingStore, catalog: world.catalog, volumes: world.volumeDeps().volumes };
  const rawSpec = scenario.spec ?? spec();
  let input: unknown = rawSpec;
  if (scenario.viaApi !== false) {
    const parsed = parseRunSpec(rawSpec);
    const now = new Date().toISOString();
    await store.create({
      runId, owner: ALICE, spec: parsed, specHash: 'h', status: 'PENDING',
      createdAt: now, updatedAt: now, attempts: [], costUsd: 0, interruptions: 0, userFailures: 0,
    });
    input = { runId, owner: ALICE, spec: rawSpec };
  }
  const machine = new LocalStateMachine({
    definition: loadAsl('train-run', localLambdaArn),
    lambdas: lambdas(runDeps),
    stateOverrides: scenario.stateOverrides,
    tokens,
    fastWaits: true,
    heartbeatOverridesMs: scenario.heartbeatMs === undefined ? undefined : { LaunchTraining: scenario.heartbeatMs },
  });
  const terminatedBefore = world.terminated.length;
  const execution = machine.start(input, runId);
  const outcome = await execution.outcome;
  const record = await store.get(runId);
  const launched = [...world.instances.values()].filter((i) => i.tags['runctl:run'] === runId);
  return { runId, outcome, record, statuses, execution, launched, terminated: world.terminated.slice(terminatedBefore) };
}

describe('train-run state machine', () => {
  it('carries a run to SUCCEEDED, terminates its instance and clears the task token', async () => {
    const { outcome, record, statuses, launched, terminated, runId } = await runScenario();
    expect(outcome).toMatchObject({ status: 'SUCCEEDED', output: { status: 'SUCCEEDED' } });
    expect(record?.status).toBe('SUCCEEDED');
    expect(record?.statusReason).toContain(`runs/${runId}/outputs/_manifest.json`);
    expect(statuses).toEqual(['VALIDATING', 'PROVISIONING', 'STARTING', 'TRAINING', 'FINALIZING', 'SUCCEEDED']);
    expect(launched).toHaveLength(1);
    expect(terminated).toEqual([launched[0]?.id]);
    expect(record?.taskToken).toBeUndefined();
    expect(record?.attempts).toMatchObject([{ attempt: 1, instanceId: launched[0]?.id, endReason: 'SUCCEEDED' }]);
    expect(record?.attempts[0]?.endedAt).toBeDefined();
  });

  it('keeps the task token out of the SSM command text', async () => {
    const seen: string[] = [];
    tokens.onIssued((token) => seen.push(token));
    const before = world.launchScripts.length;
    await runScenario();
    const scripts = world.launchScripts.slice(before);
    expect(scripts).toHaveLength(1);
    expect(seen.length).toBeGreaterThan(0);
    for (const token of seen) for (const { script } of scripts) expect(script).not.toContain(token);
  });

  it('runs a bare spec pasted in the console under the execution name, owned by "console"', async () => {
    const { outcome, record, runId } = await runScenario({ viaApi: false });
    expect(outcome.status).toBe('SUCCEEDED');
    expect(record).toMatchObject({ runId, owner: 'console', status: 'SUCCEEDED' });
  });

  it('costs the same state transitions however long training runs (callbacks, not polling)', async () => {
    const short = await runScenario();
    const long = await runScenario({ agent: [{ kind: 'succeed' }] });
    expect(long.execution.transitions()).toBe(short.execution.transitions());
    expect(short.execution.transitions()).toBeLessThan(30);
  });

  it('walks the instance-type list on capacity errors', async () => {
    world.noCapacity = new Set(['g5.xlarge']);
    try {
      const { outcome, record, launched, terminated } = await runScenario();
      expect(outcome.status).toBe('SUCCEEDED');
      expect(launched.map((i) => i.type)).toEqual(['g6.xlarge']);
      expect(record?.attempts[0]?.instanceType).toBe('g6.xlarge');
      expect(terminated).toEqual([launched[0]?.id]);
    } finally {
      world.noCapacity = new Set();
    }
  });

  it('says WAITING_FOR_CAPACITY while nothing has capacity, then gives up with FAILED_NO_CAPACITY', async () => {
    world.noCapacity = new Set(['g5.xlarge', 'g6.xlarge']);
    let now = Date.parse('2025-03-01T00:00:00Z');
    const clock = () => new Date((now += 50_000));
    try {
      const { outcome, record, statuses, launched } = await runScenario({
        spec: spec({ recovery: { maxWaitForCapacity: '150s' } }),
        clock,
      });
      expect(outcome).toMatchObject({ status: 'FAILED', error: 'Run.FAILED_NO_CAPACITY' });
      expect(statuses.filter((s) => s === 'WAITING_FOR_CAPACITY').length).toBeGreaterThanOrEqual(2);
      expect(record?.status).toBe('FAILED_NO_CAPACITY');
      expect(record?.statusReason).toContain('maxWaitForCapacity');
      expect(launched).toEqual([]);
    } finally {
      world.noCapacity = new Set();
    }
  });

  it('treats an instance whose SSM agent never comes online as not ready, and terminates it', async () => {
    world.ssmOnline = false;
    try {
      const { outcome, record, launched, terminated } = await runScenario({ spec: spec({ recovery: { maxInterruptions: 1 } }) });
      expect(outcome).toMatchObject({ status: 'FAILED', error: 'Run.FAILED_NO_CAPACITY' });
      expect(launched).toHaveLength(2);
      expect(new Set(terminated)).toEqual(new Set(launched.map((i) => i.id)));
      expect(record?.attempts.map((a) => a.endReason)).toEqual(['NOT_READY', 'NOT_READY']);
      // Both counted, though the second ended the run instead of starting another attempt.
      expect(record?.interruptions).toBe(2);
      expect(world.live().filter((i) => i.tags['runctl:run'] === record?.runId)).toEqual([]);
    } finally {
      world.ssmOnline = true;
    }
  });

  it('fails the prechecks when a data source is missing, and terminates the instance', async () => {
    world.prefetch = { status: 'Failed', exitCode: 20, stderr: 'runctl prefetch: data source s3://datasets/gone/ is missing (nothing under it)\n' };
    try {
      const { outcome, record, launched, terminated, statuses } = await runScenario({
        spec: spec({ data: ['s3://datasets/gone/:/data'] }),
      });
      expect(outcome).toMatchObject({ status: 'FAILED', error: 'Run.FAILED_PRECHECKS' });
      expect(record?.status).toBe('FAILED_PRECHECKS');
      expect(record?.statusReason).toContain('s3://datasets/gone/ is missing');
      expect(statuses).toContain('PREFETCHING');
      expect(terminated).toEqual(launched.map((i) => i.id));
    } finally {
      world.prefetch = { status: 'Success', exitCode: 0, stderr: '' };
    }
  });

  it('fails the prechecks naming the file when the copy does not match its dataset manifest', async () => {
    world.prefetch = {
      status: 'Failed',
      exitCode: PREFETCH_EXIT.manifestMismatch,
      stderr: 'runctl prefetch: s3://datasets/mnist/ does not match its manifest: train/b.bin is sha256 00ff…, the manifest says 3e7a…\n',
    };
    try {
      const { outcome, record, launched, terminated } = await runScenario({ spec: spec({ data: ['s3://datasets/mnist/:/data'] }) });
      expect(outcome).toMatchObject({ status: 'FAILED', error: 'Run.FAILED_PRECHECKS' });
      expect(record?.status).toBe('FAILED_PRECHECKS');
      expect(record?.statusReason).toContain('does not match its manifest: train/b.bin');
      expect(terminated).toEqual(launched.map((i) => i.id));
    } finally {
      world.prefetch = { status: 'Success', exitCode: 0, stderr: '' };
    }
  });

  it('copies the data before training when the run has data', async () => {
    const { outcome, statuses, execution } = await runScenario({ spec: spec({ data: ['s3://datasets/mnist/:/data'] }) });
    expect(outcome.status).toBe('SUCCEEDED');
    expect(statuses.slice(0, 5)).toEqual(['VALIDATING', 'PROVISIONING', 'STARTING', 'PREFETCHING', 'TRAINING']);
    expect(execution.statesEntered()).toContain('CheckPrefetch');
  });

  it('fails with FAILED_PRECHECKS when the code bundle is missing', async () => {
    const { outcome, record, launched } = await runScenario({
      spec: spec({ code: { bundle: `s3://${BUCKET}/bundles/${'b'.repeat(64)}.tar.gz`, entrypoint: 'train.py' } }),
    });
    expect(outcome).toMatchObject({ status: 'FAILED', error: 'Run.FAILED_PRECHECKS' });
    expect(record?.statusReason).toContain(`${'b'.repeat(64)}.tar.gz does not exist`);
    expect(launched).toEqual([]);
  });

  it.each([
    ['a code bundle under another run', { code: { bundle: `s3://${BUCKET}/runs/r-victim/outputs/model.tar.gz`, entrypoint: 'train.py' } }, 'code.bundle'],
    ['a data source under another run', { data: [`s3://${BUCKET}/runs/r-victim/:/data`] }, 'data.0.source'],
    ['a lone surrogate in an env value', { env: { MSG: '\ud800' } }, 'env.MSG'],
    ['an argument the kernel would refuse', { args: ['x'.repeat(200_000)] }, 'args.0'],
  ])('ValidateRun refuses %s started from the console: FAILED_PRECHECKS, nothing launched', async (_label, change, path) => {
    const { outcome, launched } = await runScenario({ spec: { ...spec(), ...change }, viaApi: false });

    expect(outcome).toMatchObject({ status: 'FAILED', error: 'Run.FAILED_PRECHECKS', cause: expect.stringContaining(path) });
    expect(launched).toEqual([]);
  });

  it('ends as FAILED_USER when the training script exits non-zero', async () => {
    const { outcome, record, launched, terminated } = await runScenario({ agent: [{ kind: 'fail', exitCode: 3 }] });
    expect(outcome).toMatchObject({ status: 'FAILED', error: 'Run.FAILED_USER' });
    expect(record?.status).toBe('FAILED_USER');
    expect(record?.statusReason).toContain('exit code 3');
    expect(terminated).toEqual(launched.map((i) => i.id));
    expect(record?.taskToken).toBeUndefined();
  });

  it('restarts a failed script when recovery.maxRestartsOnError allows it', async () => {
    const { outcome, record } = await runScenario({
      spec: spec({ recovery: { maxRestartsOnError: 1 } }),
      agent: [{ kind: 'fail', exitCode: 1 }, { kind: 'succeed' }],
    });
    expect(outcome.status).toBe('SUCCEEDED');
    expect(record?.attempts.map((a) => a.endReason)).toEqual(['TRAINING_FAILED', 'SUCCEEDED']);
  });

  it('retries a throttled step and then succeeds', async () => {
    // Three throttles exhaust the adapter's own retries; the state machine's Retry gets the fourth through.
    world.throttleRunInstances = 3;
    const { outcome, launched, execution } = await runScenario();
    expect(outcome.status).toBe('SUCCEEDED');
    expect(launched).toHaveLength(1);
    const retried = execution.history.filter((e) => e.type === 'StateRetried').map((e) => ('state' in e ? e.state.name : ''));
    expect(retried).toEqual(['ProvisionInstance']);
  });

  it('resumes a spot-interrupted run on a new instance from the newest checkpoint', async () => {
    const { outcome, record, launched, terminated, runId, statuses } = await runScenario({
      agent: [{ kind: 'interrupt' }, { kind: 'succeed' }],
    });
    expect(outcome.status).toBe('SUCCEEDED');
    expect(launched).toHaveLength(2);
    expect(terminated).toEqual(launched.map((i) => i.id));
    const checkpoint = `s3://${BUCKET}/runs/${runId}/checkpoints/0001-000003/`;
    expect(record?.attempts).toMatchObject([
      { attempt: 1, endReason: 'SPOT_INTERRUPTED' },
      { attempt: 2, resumeFrom: checkpoint, endReason: 'SUCCEEDED' },
    ]);
    expect(record?.interruptions).toBe(1);
    expect(statuses).toContain('RECOVERING');
    // The second attempt's agent was started with the checkpoint to resume from.
    const second = world.launchScripts.find((s) => s.comment === `runctl train ${runId} attempt 2`);
    expect(second).toBeDefined();
  });

  it('counts an interruption that used up recovery.maxInterruptions on the record it ends', async () => {
    const { outcome, record } = await runScenario({ spec: spec({ recovery: { maxInterruptions: 0 } }), agent: [{ kind: 'interrupt' }] });
    expect(outcome).toMatchObject({ status: 'FAILED', error: 'Run.FAILED_NO_CAPACITY' });
    expect(record?.attempts.map((a) => a.endReason)).toEqual(['SPOT_INTERRUPTED']);
    expect(record).toMatchObject({ status: 'FAILED_NO_CAPACITY', interruptions: 1, userFailures: 0 });
  });

  it('treats a silent agent as lost after HeartbeatSeconds and recovers', async () => {
    const { outcome, record, launched, terminated } = await runScenario({
      agent: [{ kind: 'silent' }, { kind: 'succeed' }],
      heartbeatMs: 1500,
    });
    expect(outcome.status).toBe('SUCCEEDED');
    expect(record?.attempts.map((a) => a.endReason)).toEqual(['HEARTBEAT_TIMEOUT', 'SUCCEEDED']);
    expect(terminated).toEqual(launched.map((i) => i.id));
  });

  const everyTask = [
    'ValidateRun',
    'ProvisionInstance',
    'CheckInstance',
    'PrefetchData',
    'CheckPrefetch',
    'LaunchTraining',
    'DecideRecovery',
    'FinalizeArtifacts',
    'ReleaseResources',
    'FinishRun',
  ];

  it.each(everyTask)('a failure in %s still releases every instance and ends in a terminal status', async (stateName) => {
    let injected = false;
    const realDeps = world.deps();
    const real = lambdas(realDeps);
    const handlerOf: Record<string, string> = { CheckPrefetch: 'PrefetchData' };
    const realHandler = real[`${handlerOf[stateName] ?? stateName}LambdaFunction`];
    if (realHandler === undefined) throw new Error(`no handler for ${stateName}`);
    const failing: LocalLambda = async (event, context) => {
      if (!injected) {
        injected = true;
        throw Object.assign(new Error(`injected failure in ${stateName}`), { name: 'Injected.Failure' });
      }
      return realHandler(event, context);
    };
    const { outcome, record, launched, terminated, runId } = await runScenario({
      spec: spec({ data: ['s3://datasets/mnist/:/data'] }),
      agent: [{ kind: 'interrupt' }, { kind: 'succeed' }],
      stateOverrides: { [stateName]: failing },
    });
    expect(injected).toBe(true);
    expect(record?.status).toBeDefined();
    const retriedByMachine = stateName === 'ReleaseResources' || stateName === 'FinishRun';
    if (retriedByMachine) {
      expect(outcome.status).toBe('SUCCEEDED');
      expect(record?.status).toBe('SUCCEEDED');
    } else {
      expect(outcome).toMatchObject({ status: 'FAILED', error: 'Run.FAILED_CONTROLLER' });
      expect(record?.status).toBe('FAILED_CONTROLLER');
      expect(record?.statusReason).toContain('Injected.Failure');
    }
    expect(new Set(terminated)).toEqual(new Set(launched.map((i) => i.id)));
    expect(world.live().filter((i) => i.tags['runctl:run'] === runId)).toEqual([]);
    expect(record?.taskToken).toBeUndefined();
  });

  /** Runs `stateName`'s real handler after moving the run to CANCELLING, as a cancel or the reconciler would. */
  function cancelledBefore(stateName: string, statusReason: string): Record<string, LocalLambda> {
    const real = lambdas(world.deps())[`${stateName}LambdaFunction`];
    if (real === undefined) throw new Error(`no handler for ${stateName}`);
    const override: LocalLambda = async (event, context) => {
      const runId = typeof event === 'object' && event !== null && 'runId' in event ? String(event.runId) : '';
      const record = await world.store.get(runId);
      if (record !== undefined && record.status !== 'CANCELLING') {
        await world.store.transition(runId, record.status, 'CANCELLING', { statusReason, cancelRequested: { at: new Date().toISOString(), force: false } });
      }
      return real(event, context);
    };
    return { [stateName]: override };
  }

  it('a cancel before training ends the run CANCELLED with its instance released', async () => {
    const { outcome, record, launched, terminated } = await runScenario({
      stateOverrides: cancelledBefore('LaunchTraining', 'Cancel requested: checkpointing, then releasing'),
    });

    expect(outcome).toMatchObject({ status: 'FAILED', error: 'Run.CANCELLED' });
    expect(record?.status).toBe('CANCELLED');
    expect(launched).toHaveLength(1);
    expect(terminated).toEqual(launched.map((i) => i.id));
  });

  it('a cancel between "status TRAINING" and "token stored" still stops the run: no agent is started', async () => {
    // The cancel lands after LaunchTraining's TRAINING write and before its token write, so the
    // cancel handler found no token to signal; LaunchTraining must see it.
    const deps = world.deps();
    const racing: typeof deps.store = Object.assign(Object.create(Object.getPrototypeOf(deps.store)), deps.store);
    racing.setTaskToken = async (runId, attempt, token) => {
      await deps.store.transition(runId, 'TRAINING', 'CANCELLING', {
        statusReason: 'Cancel requested: checkpointing, then releasing',
        cancelRequested: { at: new Date().toISOString(), force: false },
      });
      return deps.store.setTaskToken(runId, attempt, token);
    };
    const real = lambdas({ ...deps, store: racing })['LaunchTrainingLambdaFunction'];
    if (real === undefined) throw new Error('no LaunchTraining handler');

    const { outcome, record, launched, terminated } = await runScenario({ stateOverrides: { LaunchTraining: real } });

    expect(outcome).toMatchObject({ status: 'FAILED', error: 'Run.CANCELLED' });
    expect(record?.status).toBe('CANCELLED');
    expect(record?.taskToken).toBeUndefined();
    expect(terminated).toEqual(launched.map((i) => i.id));
    expect(world.launchScripts.filter((l) => launched.some((i) => i.id === l.instanceId))).toEqual([]);
  });

  it('a run the reconciler stopped over its budget ends STOPPED_BUDGET, not CANCELLED', async () => {
    const { record, launched, terminated } = await runScenario({
      stateOverrides: cancelledBefore('LaunchTraining', 'Budget exceeded: cost $21.40 is over limits.maxCostUsd $20'),
    });

    expect(record?.status).toBe('STOPPED_BUDGET');
    expect(record?.statusReason).toMatch(/^Budget exceeded: cost \$21.40/);
    expect(terminated).toEqual(launched.map((i) => i.id));
  });

  describe('with a dataset volume', () => {
    let datasets = 0;
    /** A dataset URI of its own per test: the catalog lives in the shared table. */
    const dataset = () => `s3://datasets-bucket/imagenet-${++datasets}-${Date.now().toString(36)}/`;
    const volumeSpec = (uri: string) => spec({ volume: { dataset: uri, mountPath: '/mnt/dataset' }, data: ['s3://datasets/mnist/:/data'] });
    const restoredFor = (runId: string) => [...world.volumes.values()].filter((v) => v.tags['runctl:run'] === runId);

    it('launches in the free volume\'s AZ, attaches and mounts it before prefetch and training, and releases it at the end', async () => {
      const uri = dataset();
      const volume = await world.catalogue(uri, 'us-east-1b');

      const { outcome, launched, terminated, execution, statuses, runId } = await runScenario({ spec: volumeSpec(uri) });

      expect(outcome.status).toBe('SUCCEEDED');
      expect(launched.map((i) => i.az)).toEqual(['us-east-1b']);
      const states = execution.statesEntered();
      const at = (name: string) => states.indexOf(name);
      expect(at('AttachVolume')).toBeGreaterThan(at('IsInstanceReady'));
      expect(at('PrefetchData')).toBeGreaterThan(at('AttachVolume'));
      expect(at('LaunchTraining')).toBeGreaterThan(at('PrefetchData'));
      expect(at('ReleaseVolume')).toBeGreaterThan(at('ReleaseResources'));
      expect(at('FinishRun')).toBeGreaterThan(at('ReleaseVolume'));
      expect(statuses.slice(0, 6)).toEqual(['VALIDATING', 'PROVISIONING', 'STARTING', 'ATTACHING_VOLUME', 'PREFETCHING', 'TRAINING']);
      expect(volume.history).toEqual([launched[0]?.id]);
      expect(volume.attachment).toBeUndefined();
      expect(volume.deleted).toBe(false);
      expect(world.mountScripts.filter((m) => m.instanceId === launched[0]?.id)).toHaveLength(1);
      expect((await world.catalog.getVolume(ALICE, uri))?.claimedBy).toBeUndefined();
      expect(restoredFor(runId)).toEqual([]);
      expect(terminated).toEqual(launched.map((i) => i.id));
    });

    it('restores a copy when the catalogued volume is taken, and deletes the copy when the script fails', async () => {
      const uri = dataset();
      const volume = await world.catalogue(uri, 'us-east-1a');
      expect(await world.catalog.claimVolume(ALICE, uri, volume.id, 'another-run')).toBe(true);

      const { outcome, record, launched, runId, terminated } = await runScenario({ spec: volumeSpec(uri), agent: [{ kind: 'fail', exitCode: 3 }] });

      expect(outcome).toMatchObject({ status: 'FAILED', error: 'Run.FAILED_USER' });
      expect(record?.status).toBe('FAILED_USER');
      const copies = restoredFor(runId);
      expect(copies).toHaveLength(1);
      expect(copies[0]).toMatchObject({ az: launched[0]?.az, history: [launched[0]?.id], deleted: true });
      expect(volume.history).toEqual([]);
      expect((await world.catalog.getVolume(ALICE, uri))?.claimedBy).toBe('another-run');
      expect(terminated).toEqual(launched.map((i) => i.id));
    });

    it('releases the interrupted attempt\'s volume before the next attempt attaches it again', async () => {
      const uri = dataset();
      const volume = await world.catalogue(uri, 'us-east-1b');

      const { outcome, launched, execution, terminated } = await runScenario({ spec: volumeSpec(uri), agent: [{ kind: 'interrupt' }, { kind: 'succeed' }] });

      expect(outcome.status).toBe('SUCCEEDED');
      expect(launched).toHaveLength(2);
      // Released in between, so the second attempt could start next to it and claim it again.
      expect(launched.map((i) => i.az)).toEqual(['us-east-1b', 'us-east-1b']);
      expect(volume.history).toEqual(launched.map((i) => i.id));
      const states = execution.statesEntered();
      const attaches = states.flatMap((name, i) => (name === 'AttachVolume' ? [i] : []));
      const releases = states.flatMap((name, i) => (name === 'ReleaseVolume' ? [i] : []));
      expect(attaches).toHaveLength(2);
      expect(releases).toHaveLength(2);
      expect(releases[0]).toBeGreaterThan(attaches[0] ?? Infinity);
      expect(releases[0]).toBeLessThan(attaches[1] ?? -1);
      expect(volume.attachment).toBeUndefined();
      expect((await world.catalog.getVolume(ALICE, uri))?.claimedBy).toBeUndefined();
      expect(terminated).toEqual(launched.map((i) => i.id));
    });

    it('ends FAILED_PRECHECKS when the dataset was never pre-warmed, and releases the instance', async () => {
      const { outcome, record, launched, terminated, execution } = await runScenario({ spec: volumeSpec(dataset()) });

      expect(outcome).toMatchObject({ status: 'FAILED', error: 'Run.FAILED_PRECHECKS' });
      expect(record?.status).toBe('FAILED_PRECHECKS');
      expect(record?.statusReason).toContain('POST /volumes');
      expect(execution.statesEntered()).toContain('ReleaseVolume');
      expect(execution.statesEntered()).not.toContain('LaunchTraining');
      expect(launched).toHaveLength(1);
      expect(terminated).toEqual(launched.map((i) => i.id));
    });

    it.each(['AttachVolume', 'CheckVolume'])('a failure in %s still releases the instance and the volume', async (stateName) => {
      const uri = dataset();
      const volume = await world.catalogue(uri, 'us-east-1a');
      const failing: LocalLambda = async () => {
        throw Object.assign(new Error(`injected failure in ${stateName}`), { name: 'Injected.Failure' });
      };
      const overrides: Record<string, LocalLambda> = { [stateName]: failing };
      if (stateName === 'CheckVolume') {
        // The attach happened; the check fails.
        const real = runVolume.createHandler(world.volumeDeps());
        overrides.AttachVolume = real;
      }

      const { outcome, record, launched, terminated, runId } = await runScenario({ spec: volumeSpec(uri), stateOverrides: overrides });

      expect(outcome).toMatchObject({ status: 'FAILED', error: 'Run.FAILED_CONTROLLER' });
      expect(record?.statusReason).toContain('Injected.Failure');
      expect(terminated).toEqual(launched.map((i) => i.id));
      expect(volume.attachment).toBeUndefined();
      expect((await world.catalog.getVolume(ALICE, uri))?.claimedBy).toBeUndefined();
      expect(restoredFor(runId).filter((v) => !v.deleted)).toEqual([]);
      if (stateName === 'CheckVolume') expect(volume.history).toEqual(launched.map((i) => i.id));
    });
  });

  describe('with a docker image', () => {
    const sha = 'ab'.repeat(32);
    const bundle = `s3://${BUCKET}/bundles/${sha}.tar.gz`;
    const IMAGE = `123456789012.dkr.ecr.us-east-1.amazonaws.com/runctl/training@sha256:${'5e'.repeat(32)}`;

    /** A catalogued image of `owner` for the bundle `bundleSha`. */
    const imageOf = (owner: string, bundleSha: string) => ({
      owner, bundleSha, repository: 'runctl/training', imageUri: IMAGE, digest: `sha256:${'5e'.repeat(32)}`,
      tag: `bundle-${bundleSha}-build-earlier`, buildId: 'build-earlier', dockerfile: 'Dockerfile', createdAt: new Date().toISOString(),
    });

    /** The agent config shipped in the launch command of the run's first attempt. */
    function agentConfig(runId: string): unknown {
      const launch = world.launchScripts.find((l) => l.comment === `runctl train ${runId} attempt 1`);
      const encoded = /printf '%s' '([A-Za-z0-9+/=]+)' \| base64 -d > "\$dir\/config.json"/.exec(launch?.script ?? '')?.[1];
      return JSON.parse(Buffer.from(encoded ?? '', 'base64').toString('utf8'));
    }

    it('builds the image of a docker: auto run whose bundle has none yet, then trains in it', async () => {
      const built = 'cd'.repeat(32);
      await world.put(`bundles/${built}.tar.gz`, 'tarball');
      const calls: Array<z.infer<typeof NestedBuildSchema>> = [];

      const { outcome, runId, execution, record, statuses } = await runScenario({
        spec: spec({ code: { bundle: `s3://${BUCKET}/bundles/${built}.tar.gz`, entrypoint: 'train.py' }, docker: 'auto' }),
        stateOverrides: { BuildImage: successfulBuild(calls) },
      });

      expect(outcome.status).toBe('SUCCEEDED');
      // The record says the image is being built, between validation and provisioning.
      expect(statuses.slice(0, 3)).toEqual(['VALIDATING', 'BUILDING_IMAGE', 'PROVISIONING']);
      expect(calls).toEqual([
        {
          StateMachineArn: localLambdaArn('BuildImageStateMachine'),
          Name: expect.stringMatching(/^build-[0-9a-f]{16}$/),
          Input: { owner: ALICE, request: { bundle: `s3://${BUCKET}/bundles/${built}.tar.gz`, bundleSha: built, repository: 'training', rebuild: false } },
        },
      ]);
      const states = execution.statesEntered();
      expect(states.slice(0, 5)).toEqual(['ValidateRun', 'EnsureImage', 'IsImageMissing', 'BuildImage', 'ProvisionInstance']);
      expect(agentConfig(runId)).toMatchObject({
        docker: { image: `123456789012.dkr.ecr.us-east-1.amazonaws.com/runctl/training@sha256:${built}` },
      });
      expect(record?.statusReason).toContain(`runs/${runId}/outputs/_manifest.json`);
    });

    it("never trains in another owner's image of the bundle: the run builds one of its own", async () => {
      const shared = 'c5'.repeat(32);
      await world.put(`bundles/${shared}.tar.gz`, 'tarball');
      await world.catalog.putImage(imageOf(BOB, shared));
      const calls: Array<z.infer<typeof NestedBuildSchema>> = [];

      const { outcome, runId } = await runScenario({
        spec: spec({ code: { bundle: `s3://${BUCKET}/bundles/${shared}.tar.gz`, entrypoint: 'train.py' }, docker: 'auto' }),
        stateOverrides: { BuildImage: successfulBuild(calls) },
      });

      expect(outcome.status).toBe('SUCCEEDED');
      expect(calls.map((c) => c.Input)).toEqual([{ owner: ALICE, request: expect.objectContaining({ bundleSha: shared, rebuild: false }) }]);
      expect(agentConfig(runId)).toMatchObject({ docker: { image: `123456789012.dkr.ecr.us-east-1.amazonaws.com/runctl/training@sha256:${shared}` } });
      expect(await world.catalog.getImage(BOB, shared)).toMatchObject({ imageUri: IMAGE, buildId: 'build-earlier' });
    });

    it('builds again when the catalogued image of the bundle came from another Dockerfile', async () => {
      const other = 'ce'.repeat(32);
      await world.put(`bundles/${other}.tar.gz`, 'tarball');
      await world.catalog.putImage(imageOf(ALICE, other));
      const calls: Array<z.infer<typeof NestedBuildSchema>> = [];

      const { outcome, runId } = await runScenario({
        spec: spec({ code: { bundle: `s3://${BUCKET}/bundles/${other}.tar.gz`, entrypoint: 'train.py' }, docker: { build: { dockerfile: 'docker/Dockerfile.gpu' } } }),
        stateOverrides: { BuildImage: successfulBuild(calls) },
      });

      expect(outcome.status).toBe('SUCCEEDED');
      expect(calls.map((c) => c.Input)).toEqual([
        { owner: ALICE, request: { bundle: `s3://${BUCKET}/bundles/${other}.tar.gz`, bundleSha: other, dockerfile: 'docker/Dockerfile.gpu', repository: 'training', rebuild: true } },
      ]);
      expect(agentConfig(runId)).toMatchObject({ docker: { image: `123456789012.dkr.ecr.us-east-1.amazonaws.com/runctl/training@sha256:${other}` } });
    });

    it('ends FAILED_PRECHECKS with the build\'s error when the image build fails, and launches nothing', async () => {
      const broken = 'ef'.repeat(32);
      await world.put(`bundles/${broken}.tar.gz`, 'tarball');
      // As Step Functions fails a .sync task: States.TaskFailed, the nested execution's description as the cause.
      const failedBuild: LocalLambda = async (event) => {
        const request = NestedBuildSchema.parse(event);
        const description = {
          ExecutionArn: `arn:aws:states:us-east-1:000000000000:execution:build-image:${request.Name}`,
          Status: 'FAILED',
          Error: 'Image.BuildFailed',
          Cause: JSON.stringify({ errorType: 'Image.BuildFailed', errorMessage: 'Image build Failed (exit 1): ERROR: failed to solve: pip install torch' }),
        };
        throw Object.assign(new Error(JSON.stringify(description)), { name: 'States.TaskFailed' });
      };

      const { outcome, record, launched, execution, runId } = await runScenario({
        spec: spec({ code: { bundle: `s3://${BUCKET}/bundles/${broken}.tar.gz`, entrypoint: 'train.py' }, docker: 'auto' }),
        stateOverrides: { BuildImage: failedBuild },
      });

      expect(outcome).toMatchObject({ status: 'FAILED', error: 'Run.FAILED_PRECHECKS' });
      expect(record?.status).toBe('FAILED_PRECHECKS');
      expect(record?.statusReason).toContain('Image.BuildFailed');
      expect(record?.statusReason).toContain('failed to solve: pip install torch');
      expect(launched).toEqual([]);
      expect(execution.statesEntered()).not.toContain('ProvisionInstance');
      expect(world.launchScripts.filter((l) => l.comment?.includes(runId))).toEqual([]);
      expect(await world.catalog.getImage(ALICE, broken)).toBeUndefined();
    });

    it('trains a docker: auto run in the image built for its bundle, with the data and volume mounts', async () => {
      await world.put(`bundles/${sha}.tar.gz`, 'tarball');
      await world.catalog.putImage(imageOf(ALICE, sha));
      const uri = `s3://datasets-bucket/docker-${Date.now().toString(36)}/`;
      await world.catalogue(uri, 'us-east-1a');

      const calls: Array<z.infer<typeof NestedBuildSchema>> = [];

      const { outcome, runId, execution, statuses } = await runScenario({
        spec: spec({ code: { bundle, entrypoint: 'train.py' }, docker: 'auto', data: ['s3://datasets/mnist/:/data'], volume: { dataset: uri, mountPath: '/mnt/dataset' } }),
        stateOverrides: { BuildImage: successfulBuild(calls) },
      });

      expect(outcome.status).toBe('SUCCEEDED');
      expect(statuses).not.toContain('BUILDING_IMAGE');
      // The image of the bundle is catalogued: no nested build.
      expect(execution.statesEntered()).toContain('EnsureImage');
      expect(execution.statesEntered()).not.toContain('BuildImage');
      expect(calls).toEqual([]);
      expect(agentConfig(runId)).toMatchObject({
        docker: {
          image: IMAGE,
          registry: '123456789012.dkr.ecr.us-east-1.amazonaws.com',
          region: 'us-east-1',
          // The agent passes --gpus only where nvidia-smi lists a GPU.
          gpus: 'auto',
          mounts: [{ path: '/data', readOnly: false }, { path: '/mnt/dataset', readOnly: true }],
        },
      });
    });
  });
});
