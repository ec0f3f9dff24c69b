import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_VOLUME_TUNING } from '../../shared/composition/volumes';
import {
  attemptEvents,
  CAPACITY_PASS_EVENTS,
  HISTORY_EVENT_LIMIT,
  maxAttempts,
  POLL_PASS_EVENTS,
  pollWaitSeconds,
  REPLACEMENT_WAIT_EVENTS,
  RETRY_RESERVE_EVENTS,
  TRAIN_RUN_ATTEMPT_EVENTS,
  TRAIN_RUN_FIXED_EVENTS,
  type PollLoop,
} from '../../shared/domain/history-budget';
import { parseRunSpec, RunSpecFieldsSchema } from '../../shared/domain/run-spec';
import { attemptLoops, PREFETCH_TIMEOUT_SECONDS, MOUNT_TIMEOUT_SECONDS } from '../../shared/usecases/attempt-loops';
import { replacementLoops } from '../../shared/usecases/prepare-replacement';
import { DEFAULT_RECONCILE_OPTIONS } from '../../shared/usecases/reconcile';
import { DEFAULT_STEP_TUNING } from '../../shared/usecases/step-deps';
import { FILL_TIMEOUT_SECONDS, fillLoop, SNAPSHOT_WINDOW_SECONDS, snapshotLoop } from '../../shared/usecases/volume-prewarm';

/**
 * No execution can outlive its 25,000-event history: the events of every state are read from
 * the ASL files, the loop bounds from the handlers' budget, the attempt count from the spec
 * schema's maxima, and the worst case is added up.
 */

interface AslState {
  Type: string;
  Resource?: unknown;
  Next?: string;
  Default?: string;
  Choices?: Array<{ Next: string }>;
  Catch?: Array<{ Next: string }>;
  SecondsPath?: string;
  Seconds?: number;
  HeartbeatSeconds?: number;
  TimeoutSeconds?: number;
}

function machine(name: string): Record<string, AslState> {
  const parsed: { States: Record<string, AslState> } = JSON.parse(readFileSync(`statemachines/${name}.asl.json`, 'utf8'));
  return parsed.States;
}

/** History events a state writes once (retries are the reserve's). */
function eventsOf(state: AslState): number {
  if (state.Type === 'Task') {
    // Service integrations (`arn:aws:states:::…`: callbacks, nested executions) add TaskSubmitted.
    return typeof state.Resource === 'string' && state.Resource.startsWith('arn:aws:states:::') ? 6 : 5;
  }
  return 2;
}

function successors(state: AslState): string[] {
  return [state.Next, state.Default, ...(state.Choices ?? []).map((c) => c.Next), ...(state.Catch ?? []).map((c) => c.Next)].filter(
    (n): n is string => n !== undefined,
  );
}

/** Events along `path`, checking that each state leads to the next (and the last to the first, for a loop). */
function pathEvents(states: Record<string, AslState>, path: string[], loop: boolean): number {
  path.forEach((name, i) => {
    const state = states[name];
    expect(state, `state ${name}`).toBeDefined();
    const next = path[i + 1] ?? (loop ? path[0] : undefined);
    if (next !== undefined && state !== undefined) expect(successors(state), `${name} → ${next}`).toContain(next);
  });
  return path.reduce((sum, name) => sum + eventsOf(states[name] ?? { Type: 'Pass' }), 0);
}

/** The pauses of `loop` over its polls add up to at least its window. */
function spanOf(loop: PollLoop): number {
  let total = 0;
  for (let polls = 0; polls < loop.maxPolls; polls += 1) total += pollWaitSeconds(loop, polls);
  return total;
}

const recovery = RunSpecFieldsSchema.shape.recovery.unwrap().shape;
const MAX_INTERRUPTIONS = recovery.maxInterruptions.unwrap().maxValue ?? Number.POSITIVE_INFINITY;
const MAX_RESTARTS = recovery.maxRestartsOnError.unwrap().maxValue ?? Number.POSITIVE_INFINITY;

function spec(options: { maxInterruptions: number; maxRestartsOnError: number; maxWaitForCapacity?: number; data?: boolean; volume?: boolean }) {
  return parseRunSpec({
    name: 'budget',
    code: { bundle: 's3://runctl-runs/bundles/abc.tar.gz', entrypoint: 'train.py' },
    instance: { types: ['g5.xlarge'] },
    data: options.data === false ? [] : ['s3://datasets/imagenet/:/data'],
    volume: options.volume === false ? undefined : { dataset: 's3://datasets/imagenet/' },
    recovery: {
      maxInterruptions: options.maxInterruptions,
      maxRestartsOnError: options.maxRestartsOnError,
      maxWaitForCapacity: options.maxWaitForCapacity ?? 3600,
    },
  });
}

describe('train-run history budget', () => {
  const states = machine('train-run');
  const LOOPS = {
    capacity: ['WaitForCapacity', 'KeepWaitingForCapacity', 'ProvisionInstance', 'IsInstanceLaunched'],
    readiness: ['WaitForInstance', 'CheckInstance', 'IsInstanceReady'],
    volume: ['WaitForVolume', 'CheckVolume', 'IsVolumeMounted'],
    prefetch: ['WaitForPrefetch', 'CheckPrefetch', 'IsPrefetchDone'],
  };
  /** Once per attempt at most: the replacement adopted (or given up) after the wait, never waited for twice. */
  const REPLACEMENT_WAIT = ['IsInstanceLaunched', 'AwaitReplacement', 'AdoptReplacement', 'IsInstanceLaunched'];
  const ATTEMPT = [
    'ProvisionInstance',
    'IsInstanceLaunched',
    'StartReadinessChecks',
    'WaitForInstance',
    'CheckInstance',
    'IsInstanceReady',
    'UsesVolume',
    'AttachVolume',
    'IsVolumeMounted',
    'PrefetchData',
    'IsPrefetchDone',
    'LaunchTraining',
    'DecideRecovery',
    'ReleaseResources',
    'HoldsVolume',
    'ReleaseVolume',
    'ShouldStartNextAttempt',
    'PrepareNextAttempt',
  ];
  const ONCE = ['ValidateRun', 'EnsureImage', 'IsImageMissing', 'BuildImage', 'ExplainBuildFailure', 'FinalizeArtifacts', 'FinishRun', 'IsRunSucceeded', 'RunFailed'];

  it('accounts for every state of the machine', () => {
    const known = new Set([...ATTEMPT, ...ONCE, ...REPLACEMENT_WAIT, ...Object.values(LOOPS).flat(), 'RunSucceeded', 'RecordingOutcomeFailed']);
    expect(Object.keys(states).filter((name) => !known.has(name))).toEqual([]);
  });

  it('one pass of each loop writes the events the budget counts', () => {
    expect(pathEvents(states, LOOPS.capacity, true)).toBe(CAPACITY_PASS_EVENTS);
    expect(pathEvents(states, LOOPS.readiness, true)).toBe(POLL_PASS_EVENTS);
    expect(pathEvents(states, LOOPS.volume, true)).toBe(POLL_PASS_EVENTS);
    expect(pathEvents(states, LOOPS.prefetch, true)).toBe(POLL_PASS_EVENTS);
  });

  it('an attempt outside its loops, and the run around its attempts, write no more than the budget counts', () => {
    // The first readiness pass is on the attempt's path; the loop counts the passes after it.
    const attempt = pathEvents(states, ATTEMPT, false) - POLL_PASS_EVENTS;
    // The wait's detour, its first IsInstanceLaunched being the attempt's own.
    const wait = pathEvents(states, REPLACEMENT_WAIT, false) - eventsOf(states['IsInstanceLaunched'] ?? { Type: 'Pass' });
    expect(wait).toBe(REPLACEMENT_WAIT_EVENTS);
    expect(attempt + wait).toBeLessThanOrEqual(TRAIN_RUN_ATTEMPT_EVENTS);
    const once = ONCE.reduce((sum, name) => sum + eventsOf(states[name] ?? { Type: 'Pass' }), 0) + 2;
    expect(once).toBeLessThanOrEqual(TRAIN_RUN_FIXED_EVENTS);
  });

  it('the loops take their pauses from their handlers, which bound them', () => {
    expect(states['WaitForInstance']?.SecondsPath).toBe('$.readiness.waitSeconds');
    expect(states['WaitForVolume']?.SecondsPath).toBe('$.volume.waitSeconds');
    expect(states['WaitForPrefetch']?.SecondsPath).toBe('$.prefetch.waitSeconds');
    expect(states['WaitForCapacity']?.SecondsPath).toBe('$.provision.retryInSeconds');
  });

  it(`the spec's maxima (${MAX_INTERRUPTIONS} interruptions, ${MAX_RESTARTS} restarts, a year of capacity wait, data and a volume) fit in 25,000 events`, () => {
    expect(Number.isFinite(MAX_INTERRUPTIONS) && Number.isFinite(MAX_RESTARTS)).toBe(true);
    const worst = spec({ maxInterruptions: MAX_INTERRUPTIONS, maxRestartsOnError: MAX_RESTARTS, maxWaitForCapacity: 365 * 86400 });
    const attempts = maxAttempts(worst.recovery);
    const loops = attemptLoops(worst, DEFAULT_STEP_TUNING);
    const total = TRAIN_RUN_FIXED_EVENTS + RETRY_RESERVE_EVENTS + attempts * attemptEvents(loops);

    expect(attempts).toBe(MAX_INTERRUPTIONS + MAX_RESTARTS + 2);
    expect(total).toBeLessThanOrEqual(HISTORY_EVENT_LIMIT);
    // Fewer polls, never a shorter window: a slow boot, copy or mount is not cut short.
    expect(spanOf(loops.readiness)).toBeGreaterThanOrEqual(DEFAULT_STEP_TUNING.readinessMaxChecks * 15);
    expect(spanOf(loops.prefetch ?? { baseSeconds: 1, windowSeconds: 0, maxPolls: 1 })).toBeGreaterThanOrEqual(PREFETCH_TIMEOUT_SECONDS);
    expect(spanOf(loops.volume ?? { baseSeconds: 1, windowSeconds: 0, maxPolls: 1 })).toBeGreaterThanOrEqual(MOUNT_TIMEOUT_SECONDS);
    expect(spanOf(loops.capacity)).toBeGreaterThanOrEqual(365 * 86400);
  });

  it('every combination of the recovery limits fits', () => {
    const over: string[] = [];
    for (let maxInterruptions = 0; maxInterruptions <= MAX_INTERRUPTIONS; maxInterruptions += 1) {
      for (let maxRestartsOnError = 0; maxRestartsOnError <= MAX_RESTARTS; maxRestartsOnError += 5) {
        const run = spec({ maxInterruptions, maxRestartsOnError, maxWaitForCapacity: 30 * 86400 });
        const total = TRAIN_RUN_FIXED_EVENTS + RETRY_RESERVE_EVENTS + maxAttempts(run.recovery) * attemptEvents(attemptLoops(run, DEFAULT_STEP_TUNING));
        if (total > HISTORY_EVENT_LIMIT) over.push(`${maxInterruptions}/${maxRestartsOnError}: ${total}`);
      }
    }
    expect(over).toEqual([]);
  });

  it('a run with the default limits polls as often as ever: 15 s readiness checks, 120 s capacity tries', () => {
    const loops = attemptLoops(spec({ maxInterruptions: 10, maxRestartsOnError: 0, data: true, volume: false }), DEFAULT_STEP_TUNING);
    expect(loops.readiness.maxPolls).toBe(DEFAULT_STEP_TUNING.readinessMaxChecks);
    expect(pollWaitSeconds(loops.readiness, 39)).toBe(15);
    expect(pollWaitSeconds(loops.capacity, 30)).toBe(DEFAULT_STEP_TUNING.capacityRetrySeconds);
    // The copy is seen within 10 s at first; a copy of hours is polled more coarsely.
    expect(pollWaitSeconds(loops.prefetch ?? loops.readiness, 1)).toBeLessThanOrEqual(11);
  });
});

describe('prepare-replacement history budget', () => {
  const states = machine('prepare-replacement');
  const loops = replacementLoops(DEFAULT_STEP_TUNING);

  it('fits: every state once, its readiness checks and its copy polls', () => {
    const readiness = pathEvents(states, ['WaitForReplacement', 'CheckReplacement', 'IsReplacementReady'], true);
    const copy = pathEvents(states, ['WaitForCopy', 'CheckCopy', 'IsCopyDone'], true);
    const once = Object.values(states).reduce((sum, state) => sum + eventsOf(state), 0) + 2;
    const total = once + RETRY_RESERVE_EVENTS + loops.readiness.maxPolls * readiness + loops.copy.maxPolls * copy;

    expect(total).toBeLessThanOrEqual(HISTORY_EVENT_LIMIT);
    expect(states['WaitForReplacement']?.Seconds).toBe(loops.readiness.baseSeconds);
    expect(states['WaitForCopy']?.SecondsPath).toBe('$.copy.waitSeconds');
    // The same windows as the run's own loops: a slow boot or a long copy is not cut short.
    expect(spanOf(loops.readiness)).toBeGreaterThanOrEqual(DEFAULT_STEP_TUNING.readinessMaxChecks * 15);
    expect(spanOf(loops.copy)).toBeGreaterThanOrEqual(PREFETCH_TIMEOUT_SECONDS);
  });

  it("outlasts nothing the run waits on: AwaitReplacement's timeout spans both loops, its heartbeat several of the longest pauses", () => {
    const wait = machine('train-run')['AwaitReplacement'];
    const longestPause = Math.max(pollWaitSeconds(loops.readiness, loops.readiness.maxPolls - 1), pollWaitSeconds(loops.copy, loops.copy.maxPolls - 1));

    expect(wait?.TimeoutSeconds).toBeGreaterThanOrEqual(spanOf(loops.readiness) + spanOf(loops.copy));
    expect(wait?.HeartbeatSeconds).toBeGreaterThanOrEqual(3 * longestPause);
  });
});

describe('prewarm-volume and build-image history budgets', () => {
  it('a prewarm fits: the helper checks, a day of fill polls and a day of snapshot polls', () => {
    const states = machine('prewarm-volume');
    const helper = pathEvents(states, ['WaitForHelper', 'CheckHelper', 'IsHelperReady'], true);
    const fill = pathEvents(states, ['WaitForFill', 'CheckFill', 'IsFillDone'], true);
    const snapshot = pathEvents(states, ['WaitForSnapshot', 'CheckSnapshot', 'IsSnapshotComplete'], true);
    const loops = Object.keys(states).length * 6 + 2;
    const total =
      loops +
      RETRY_RESERVE_EVENTS +
      DEFAULT_VOLUME_TUNING.helperMaxChecks * helper +
      DEFAULT_VOLUME_TUNING.fillMaxPolls * fill +
      DEFAULT_VOLUME_TUNING.snapshotMaxPolls * snapshot;

    expect(total).toBeLessThanOrEqual(HISTORY_EVENT_LIMIT);
    expect(states['WaitForFill']?.SecondsPath).toBe('$.fill.waitSeconds');
    expect(states['WaitForSnapshot']?.SecondsPath).toBe('$.snapshot.waitSeconds');
    // The loop outlasts the fill command, whose own timeout ends it.
    expect(spanOf(fillLoop(DEFAULT_VOLUME_TUNING))).toBeGreaterThanOrEqual(FILL_TIMEOUT_SECONDS);
    expect(spanOf(snapshotLoop(DEFAULT_VOLUME_TUNING))).toBeGreaterThanOrEqual(SNAPSHOT_WINDOW_SECONDS);
  });

  it('the reconciler leaves a helper alone for as long as a fill may run, and then some', () => {
    const helperChecks = DEFAULT_VOLUME_TUNING.helperMaxChecks * 15;
    expect(DEFAULT_RECONCILE_OPTIONS.helperMaxAgeSeconds).toBeGreaterThan(helperChecks + spanOf(fillLoop(DEFAULT_VOLUME_TUNING)));
  });

  it('an image build fits', () => {
    const states = machine('build-image');
    const builder = pathEvents(states, ['WaitForBuilder', 'CheckBuilder', 'IsBuilderReady'], true);
    const build = pathEvents(states, ['WaitForBuild', 'CheckBuild', 'IsBuildDone'], true);
    const total =
      Object.keys(states).length * 6 + 2 + RETRY_RESERVE_EVENTS + DEFAULT_VOLUME_TUNING.helperMaxChecks * builder + DEFAULT_VOLUME_TUNING.buildMaxPolls * build;
    expect(total).toBeLessThanOrEqual(HISTORY_EVENT_LIMIT);
  });
});
