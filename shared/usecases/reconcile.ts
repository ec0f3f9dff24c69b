import { stopCommand } from '../agent/commands';
import {
  budgetVerdict,
  isBudgetStop,
  runCostUsd,
  unadoptedReplacements,
  type AttemptRate,
  type BudgetLimit,
  type PricePoint,
} from '../domain/cost';
import { attemptInstanceIds, type Attempt, type RunRecord } from '../domain/run-record';
import { keptNodes } from './provision-nodes';
import { LIVE_STATUSES, isTerminal } from '../domain/run-status';
import { StatusConflictError } from '../errors';
import type { Compute, NodeNetworks, TaggedInstance } from '../ports/compute';
import type { Executions } from '../ports/executions';
import type { Pricing } from '../ports/pricing';
import type { RunStore } from '../ports/run-store';
import { releaseDeadExecutions, type DeadExecution } from './reconcile-executions';
import { FILL_TIMEOUT_SECONDS } from './volume-prewarm';

/**
 * The reconciler: one bounded pass, every five minutes, over what the event-driven paths may
 * have missed. It terminates instances no live attempt owns, fails the task token of an attempt
 * whose instance is gone, keeps each run's cost so far and stops runs past their limits, and
 * reports storage nothing uses. Two passes may overlap (a slow pass, a redelivered schedule):
 * every write is conditional, so each piece of work is done once; terminating twice is harmless.
 */

/** A volume this stack tagged (`runctl:stack`, shared/ports/stack-tag.ts). */
export interface TaggedVolume {
  volumeId: string;
  state: string;
  availabilityZone: string;
  sizeGiB: number;
  createdAt?: string;
  attachedTo: string[];
  tags: Record<string, string>;
}

export interface TaggedSnapshot {
  snapshotId: string;
  state: string;
  volumeSizeGiB: number;
  createdAt?: string;
  tags: Record<string, string>;
}

/** The storage listing the stray-storage report reads; `complete` is false when a page cap cut it short. */
export interface StorageInventory {
  listTaggedVolumes(): Promise<{ items: TaggedVolume[]; complete: boolean }>;
  listTaggedSnapshots(): Promise<{ items: TaggedSnapshot[]; complete: boolean }>;
}

export interface ReconcileLogger {
  info(message: string, ...extra: Record<string, unknown>[]): void;
  warn(message: string, ...extra: Record<string, unknown>[]): void;
  error(message: string, ...extra: Record<string, unknown>[]): void;
}

export interface ReconcileDeps {
  store: RunStore;
  compute: Compute;
  executions: Executions;
  pricing: Pricing;
  /** Absent: the stray-storage report is skipped. */
  storage?: StorageInventory;
  clock: () => Date;
  logger?: ReconcileLogger;
  /** AWS requests sent so far by the deps' clients (a counter the composition root attaches). */
  awsRequests?: () => number;
  /** Multi-node runs' networks: one left behind by a run that ended is deleted. Absent: not looked at. */
  networks?: NodeNetworks;
}

export interface ReconcileOptions {
  /** An instance younger than this is never terminated: its attempt may not be recorded yet. */
  orphanGraceSeconds: number;
  /**
   * Prewarm and image-build helpers are not training attempts: their own machines terminate
   * them. One still alive after this long has leaked (its execution died) and is terminated:
   * it must exceed the longest step a helper runs (the 24 h fill), or a healthy fill is killed.
   */
  helperMaxAgeSeconds: number;
  /** A CANCELLING run still waiting on its agent after this long has its task failed. */
  stopDeadlineSeconds: number;
  /** An unattached volume younger than this is not reported (a prewarm may be snapshotting it). */
  storageGraceSeconds: number;
  /** Upper bound of the runs read per status, so one pass stays one invocation. */
  maxRunsPerStatus: number;
  /** Distinct (type, AZ) spot histories fetched per pass; beyond it, on-demand prices are used. */
  maxSpotLookups: number;
}

export const DEFAULT_RECONCILE_OPTIONS: ReconcileOptions = {
  orphanGraceSeconds: 15 * 60,
  // Longer than any helper legitimately lives: the prewarm fill's SSM timeout (the longest
  // step of either machine) plus boot, attach, detach and slack.
  helperMaxAgeSeconds: FILL_TIMEOUT_SECONDS + 2 * 3600,
  // Spot's 120 s warning bounds a checkpoint; three times that, plus two passes of slack.
  stopDeadlineSeconds: 15 * 60,
  storageGraceSeconds: 60 * 60,
  maxRunsPerStatus: 1000,
  maxSpotLookups: 50,
};

const RUN_PAGE_SIZE = 100;
/** A new cost is written when it moved by at least a cent: no write per pass for an idle run. */
const COST_WRITE_THRESHOLD_USD = 0.01;

export interface ReconcileReport {
  startedAt: string;
  liveRuns: number;
  instancesSeen: number;
  /** Instances terminated because no live attempt owns them. */
  terminated: { instanceId: string; runId: string; reason: string }[];
  /** Unowned instances still inside the grace period (an attempt being provisioned). */
  spared: { instanceId: string; runId: string }[];
  /** Live runs whose execution had ended (outside every Catch): released and ended FAILED_CONTROLLER. */
  deadExecutions: DeadExecution[];
  /** Live attempts whose instance is gone; `failed` is true when this pass failed the task. */
  lostInstances: { runId: string; attempt: number; instanceId: string; failed: boolean }[];
  costsUpdated: { runId: string; costUsd: number }[];
  /** Runs this pass stopped for their budget, and how the stop reached the run. */
  budgetStops: { runId: string; limit: BudgetLimit; costUsd: number; signal: 'agent' | 'task' | 'next-step' }[];
  /** CANCELLING runs whose agent did not stop in time: their task was failed. */
  overdueStops: string[];
  /** Runs with instance hours that no price was found for (their cost is a lower bound). */
  unpriced: { runId: string; attempts: number[] }[];
  strayVolumes: (TaggedVolume & { reason: string })[];
  straySnapshots: (TaggedSnapshot & { reason: string })[];
  /** A page cap was reached: some runs or storage were not looked at in this pass. */
  truncated: boolean;
  /** One run's failure never stops the pass; it is listed here (and logged). */
  errors: { step: string; runId?: string; message: string }[];
  /** AWS requests this pass sent, when the deps count them. */
  awsRequests?: number;
  /** Networks (placement group, node security group) of ended runs that this pass deleted. */
  releasedNetworks: string[];
}

/** One reconciler pass. */
export async function reconcile(deps: ReconcileDeps, options: ReconcileOptions = DEFAULT_RECONCILE_OPTIONS): Promise<ReconcileReport> {
  const now = deps.clock();
  const requestsBefore = deps.awsRequests?.();
  const report: ReconcileReport = {
    startedAt: now.toISOString(),
    liveRuns: 0,
    instancesSeen: 0,
    terminated: [],
    spared: [],
    deadExecutions: [],
    lostInstances: [],
    costsUpdated: [],
    budgetStops: [],
    overdueStops: [],
    unpriced: [],
    strayVolumes: [],
    straySnapshots: [],
    truncated: false,
    errors: [],
    releasedNetworks: [],
  };
  // Runs first, instances second: an instance launched between the two reads is young, so the
  // grace period covers it; a run that moved on between them is re-read before any termination.
  const runs = await listLiveRuns(deps.store, options, report);
  const instances = await deps.compute.listTaggedInstances();
  report.liveRuns = runs.size;
  report.instancesSeen = instances.length;

  report.deadExecutions = await releaseDeadExecutions(runs, instances, deps, (step, runId, work) => guarded(report, deps, step, runId, work));
  const released = new Set(report.deadExecutions.flatMap((d) => d.terminated));
  const remaining = instances.filter((i) => !released.has(i.instanceId));
  await terminateOrphans(runs, remaining, now, deps, options, report);
  await failLostAttempts(runs, remaining, deps, report);
  await releaseEndedNetworks(runs, deps, report);
  await enforceLimits(runs, now, deps, options, report);
  if (deps.storage !== undefined) await reportStrayStorage(deps.storage, runs, now, options, report);

  if (requestsBefore !== undefined && deps.awsRequests !== undefined) report.awsRequests = deps.awsRequests() - requestsBefore;
  deps.logger?.info('Reconciler pass done', {
    liveRuns: report.liveRuns,
    instancesSeen: report.instancesSeen,
    terminated: report.terminated.length,
    deadExecutions: report.deadExecutions.map((d) => d.runId),
    lostInstances: report.lostInstances.length,
    budgetStops: report.budgetStops.length,
    strayVolumes: report.strayVolumes.map((v) => v.volumeId),
    straySnapshots: report.straySnapshots.map((s) => s.snapshotId),
    errors: report.errors.length,
    awsRequests: report.awsRequests,
  });
  return report;
}

async function listLiveRuns(store: RunStore, options: ReconcileOptions, report: ReconcileReport): Promise<Map<string, RunRecord>> {
  const runs = new Map<string, RunRecord>();
  for (const status of LIVE_STATUSES) {
    let nextToken: string | undefined;
    let read = 0;
    do {
      const page = await store.listByStatus(status, { limit: RUN_PAGE_SIZE, nextToken });
      for (const run of page.items) runs.set(run.runId, run);
      read += page.items.length;
      nextToken = page.nextToken;
    } while (nextToken !== undefined && read < options.maxRunsPerStatus);
    if (nextToken !== undefined) report.truncated = true;
  }
  return runs;
}

function newestAttempt(run: RunRecord): number {
  return run.attempts.reduce((newest, a) => Math.max(newest, a.attempt), 0);
}

/**
 * Whether a live attempt of `run` owns `instance`: the newest attempt's open instance, or an
 * instance tagged with a newer attempt than the record has (ProvisionInstance launches first and
 * appends the attempt after).
 */
export function ownsInstance(run: RunRecord | undefined, instance: TaggedInstance): boolean {
  if (run === undefined || isTerminal(run.status)) return false;
  const newest = newestAttempt(run);
  if (instance.attempt > newest) return true;
  const attempt = run.attempts.find((a) => a.attempt === newest);
  if (attempt === undefined) return false;
  if (attempt.endedAt === undefined) return attemptInstanceIds(attempt).includes(instance.instanceId);
  // Between two attempts of a multi-node run: the healthy nodes ReleaseResources kept for the next one.
  return keptNodes(run, newest + 1).some((n) => n.instanceId === instance.instanceId);
}

async function terminateOrphans(
  runs: Map<string, RunRecord>,
  instances: TaggedInstance[],
  now: Date,
  deps: ReconcileDeps,
  options: ReconcileOptions,
  report: ReconcileReport,
): Promise<void> {
  for (const instance of instances) {
    if (instance.state === 'shutting-down') continue;
    const ageSeconds = (now.getTime() - new Date(instance.launchedAt).getTime()) / 1000;
    if (instance.helper !== undefined) {
      if (ageSeconds < options.helperMaxAgeSeconds) continue;
      await guarded(report, deps, 'terminate-orphan', instance.runId, async () => {
        const reason = `${instance.helper} helper still running after ${Math.round(ageSeconds / 3600)} h`;
        await deps.compute.terminate(instance.instanceId);
        report.terminated.push({ instanceId: instance.instanceId, runId: instance.runId, reason });
        deps.logger?.warn('Terminated a leaked helper instance', { instanceId: instance.instanceId, reason });
      });
      continue;
    }
    if (ownsInstance(runs.get(instance.runId), instance)) continue;
    if (!(ageSeconds >= options.orphanGraceSeconds)) {
      report.spared.push({ instanceId: instance.instanceId, runId: instance.runId });
      continue;
    }
    await guarded(report, deps, 'terminate-orphan', instance.runId, async () => {
      // The listing may be minutes old by now: decide on a strongly consistent read.
      const current = await deps.store.get(instance.runId);
      if (ownsInstance(current, instance)) return;
      const reason =
        current === undefined
          ? `no run ${instance.runId} exists`
          : isTerminal(current.status)
            ? `run ${instance.runId} ended ${current.status}`
            : `attempt ${instance.attempt} is not the live attempt of run ${instance.runId}`;
      await deps.compute.terminate(instance.instanceId);
      report.terminated.push({ instanceId: instance.instanceId, runId: instance.runId, reason });
      deps.logger?.warn('Terminated an orphaned instance', { instanceId: instance.instanceId, runId: instance.runId, reason });
    });
  }
}

async function failLostAttempts(
  runs: Map<string, RunRecord>,
  instances: TaggedInstance[],
  deps: ReconcileDeps,
  report: ReconcileReport,
): Promise<void> {
  const alive = new Set(instances.filter((i) => i.state === 'pending' || i.state === 'running').map((i) => i.instanceId));
  for (const run of runs.values()) {
    const token = run.taskToken;
    const attempt = run.attempts.find((a) => a.attempt === run.taskTokenAttempt);
    if (token === undefined || attempt === undefined) continue;
    // Any node of a multi-node attempt gone fails the attempt: recovery replaces that node.
    const instanceId = attemptInstanceIds(attempt).find((id) => !alive.has(id));
    if (instanceId === undefined) continue;
    await guarded(report, deps, 'fail-lost-attempt', run.runId, async () => {
      // Clearing first, conditionally, elects one writer: an overlapping pass or the
      // instance-state event handler that loses the clear leaves the task alone.
      const cleared = await deps.store.clearTaskToken(run.runId, token);
      const failed =
        cleared &&
        (await deps.executions.failTask(
          token,
          'Instance.Lost',
          JSON.stringify({ instanceId, attempt: attempt.attempt, detectedBy: 'reconciler' }),
        ));
      report.lostInstances.push({ runId: run.runId, attempt: attempt.attempt, instanceId, failed });
      if (failed) deps.logger?.warn('Failed the task of an attempt whose instance is gone', { runId: run.runId, instanceId });
    });
  }
}

/** Spot history key: one lookup per type and AZ per pass. */
function historyKey(instanceType: string, availabilityZone: string): string {
  return `${instanceType}@${availabilityZone}`;
}

async function loadSpotHistories(
  runs: Iterable<RunRecord>,
  now: Date,
  deps: ReconcileDeps,
  options: ReconcileOptions,
  report: ReconcileReport,
): Promise<Map<string, PricePoint[]>> {
  const earliest = new Map<string, { instanceType: string; availabilityZone: string; from: Date }>();
  for (const run of runs) {
    for (const a of [...run.attempts, ...unadoptedReplacements(run.attempts)]) {
      if (!a.spot || a.instanceId === undefined || a.instanceType === undefined || a.availabilityZone === undefined) continue;
      const key = historyKey(a.instanceType, a.availabilityZone);
      const from = new Date(a.startedAt);
      const known = earliest.get(key);
      if (Number.isNaN(from.getTime())) continue;
      if (known === undefined || from < known.from) earliest.set(key, { instanceType: a.instanceType, availabilityZone: a.availabilityZone, from });
    }
  }
  const histories = new Map<string, PricePoint[]>();
  let lookups = 0;
  for (const [key, wanted] of earliest) {
    if (lookups >= options.maxSpotLookups) {
      report.truncated = true;
      break;
    }
    lookups += 1;
    await guarded(report, deps, 'spot-price-history', undefined, async () => {
      histories.set(key, await deps.pricing.spotPriceHistory(wanted.instanceType, wanted.availabilityZone, wanted.from, now));
    });
  }
  return histories;
}

/**
 * How an attempt is priced: on-demand at the recorded or listed price; spot along the spot price
 * history of its type and AZ, or, without one, at the recorded or on-demand price (an upper bound).
 */
export function attemptRate(attempt: Attempt, pricing: Pricing, histories: ReadonlyMap<string, PricePoint[]>): AttemptRate | undefined {
  if (attempt.instanceType === undefined) return undefined;
  const onDemand = pricing.onDemandPerHour(attempt.instanceType);
  if (!attempt.spot) {
    const rate = attempt.pricePerHourUsd ?? onDemand;
    return rate === undefined ? undefined : { kind: 'flat', perHourUsd: rate };
  }
  const points = attempt.availabilityZone === undefined ? undefined : histories.get(historyKey(attempt.instanceType, attempt.availabilityZone));
  const fallback = attempt.pricePerHourUsd ?? onDemand;
  if (points !== undefined && points.length > 0) {
    return { kind: 'history', points, fallbackPerHourUsd: fallback ?? Math.max(...points.map((p) => p.priceUsd)) };
  }
  return fallback === undefined ? undefined : { kind: 'flat', perHourUsd: fallback };
}

async function enforceLimits(
  runs: Map<string, RunRecord>,
  now: Date,
  deps: ReconcileDeps,
  options: ReconcileOptions,
  report: ReconcileReport,
): Promise<void> {
  const histories = await loadSpotHistories(runs.values(), now, deps, options, report);
  for (const run of runs.values()) {
    await guarded(report, deps, 'enforce-limits', run.runId, async () => {
      const cost = runCostUsd(run.attempts, (a) => attemptRate(a, deps.pricing, histories), now);
      if (cost.unpriced.length > 0) report.unpriced.push({ runId: run.runId, attempts: cost.unpriced });
      // Cost never goes down: a price history that came back short must not undo an earlier pass.
      const costUsd = Math.max(cost.usd, run.costUsd);

      if (run.status === 'CANCELLING') {
        await writeCost(run, costUsd, deps, report);
        await endOverdueStop(run, now, deps, options, report);
        return;
      }
      const verdict = budgetVerdict(run, costUsd, now);
      if (!verdict.over) {
        await writeCost(run, costUsd, deps, report);
        return;
      }
      let stopping: RunRecord;
      try {
        // Conditional on the status read: of two overlapping passes, one stops the run.
        stopping = await deps.store.transition(run.runId, run.status, 'CANCELLING', {
          statusReason: verdict.reason,
          cancelRequested: { at: now.toISOString(), force: false },
          costUsd,
        });
      } catch (error) {
        if (error instanceof StatusConflictError) return; // moved on; the next pass looks again
        throw error;
      }
      const signal = await stopLiveAttempt(stopping, deps);
      report.budgetStops.push({ runId: run.runId, limit: verdict.limit, costUsd, signal });
      deps.logger?.warn('Stopping a run over its budget', { runId: run.runId, limit: verdict.limit, costUsd, signal });
    });
  }
}

async function writeCost(run: RunRecord, costUsd: number, deps: ReconcileDeps, report: ReconcileReport): Promise<void> {
  if (Math.abs(costUsd - run.costUsd) < COST_WRITE_THRESHOLD_USD) return;
  try {
    // A same-status transition: the cost lands only if the run is still where it was read.
    await deps.store.transition(run.runId, run.status, run.status, { costUsd, statusReason: run.statusReason });
    report.costsUpdated.push({ runId: run.runId, costUsd });
  } catch (error) {
    if (!(error instanceof StatusConflictError)) throw error;
  }
}

/**
 * Asks the live attempt's agent to checkpoint and stop (it calls back `Run.Cancelled`, and the
 * run then ends through DecideRecovery, ReleaseResources and FinishRun). Without a live agent
 * the next step finds the run CANCELLING and ends it; an agent that cannot be reached has its
 * task failed at once, keeping the newest periodic checkpoint.
 */
async function stopLiveAttempt(run: RunRecord, deps: ReconcileDeps): Promise<'agent' | 'task' | 'next-step'> {
  const token = run.taskToken;
  const attempt = run.attempts.find((a) => a.attempt === run.taskTokenAttempt);
  if (token === undefined || attempt === undefined) return 'next-step';
  const instanceIds = attemptInstanceIds(attempt);
  if (instanceIds.length > 0) {
    try {
      // Every node of a multi-node attempt saves and stops.
      await Promise.all(
        instanceIds.map((instanceId) =>
          deps.compute.sendCommand(instanceId, stopCommand(run.runId, attempt.attempt), {
            timeoutSeconds: 60,
            comment: `runctl budget stop ${run.runId}`,
          }),
        ),
      );
      return 'agent';
    } catch (error) {
      deps.logger?.warn('The agent could not be reached; failing the task instead', { runId: run.runId, error: String(error) });
    }
  }
  const cleared = await deps.store.clearTaskToken(run.runId, token);
  if (cleared) await deps.executions.failTask(token, 'Run.Cancelled', JSON.stringify({ reason: run.statusReason, agentUnreachable: true }));
  return 'task';
}

/** A CANCELLING run whose agent has not called back long after it was asked: end its wait. */
async function endOverdueStop(
  run: RunRecord,
  now: Date,
  deps: ReconcileDeps,
  options: ReconcileOptions,
  report: ReconcileReport,
): Promise<void> {
  const token = run.taskToken;
  const askedAt = run.cancelRequested?.at;
  if (token === undefined || askedAt === undefined) return;
  if ((now.getTime() - new Date(askedAt).getTime()) / 1000 < options.stopDeadlineSeconds) return;
  if (!(await deps.store.clearTaskToken(run.runId, token))) return;
  await deps.executions.failTask(
    token,
    'Run.Cancelled',
    JSON.stringify({ reason: run.statusReason ?? 'cancelled', overdue: true, budget: isBudgetStop(run) }),
  );
  report.overdueStops.push(run.runId);
  deps.logger?.warn('The agent did not stop in time; failed its task', { runId: run.runId });
}

/** `run:<runId>` (the volume tag of a run's volume) or the instance tag → the run id. */
function runOf(tags: Record<string, string>): string | undefined {
  const volumeOwner = /^run:(.+)$/.exec(tags['runctl:volume'] ?? '')?.[1];
  return tags['runctl:run'] ?? volumeOwner;
}

async function reportStrayStorage(
  storage: StorageInventory,
  runs: Map<string, RunRecord>,
  now: Date,
  options: ReconcileOptions,
  report: ReconcileReport,
): Promise<void> {
  const volumes = await storage.listTaggedVolumes();
  const snapshots = await storage.listTaggedSnapshots();
  if (!volumes.complete || !snapshots.complete) report.truncated = true;
  const old = (createdAt: string | undefined) =>
    createdAt === undefined || (now.getTime() - new Date(createdAt).getTime()) / 1000 >= options.storageGraceSeconds;

  for (const volume of volumes.items) {
    if (volume.state !== 'available' || volume.tags['runctl:keep'] === 'true' || !old(volume.createdAt)) continue;
    const runId = runOf(volume.tags);
    if (runId !== undefined && runs.has(runId)) continue;
    const reason =
      runId === undefined
        ? `unattached for over ${Math.round(options.storageGraceSeconds / 60)} min and claimed by no run (${volume.tags['runctl:volume'] ?? 'untagged owner'})`
        : `unattached, and run ${runId} is not live`;
    report.strayVolumes.push({ ...volume, reason });
  }
  for (const snapshot of snapshots.items) {
    // Dataset snapshots (`prewarm:<id>`) belong to the volume catalog; only a run's are judged here.
    const runId = runOf(snapshot.tags);
    if (runId === undefined || runs.has(runId)) continue;
    report.straySnapshots.push({ ...snapshot, reason: `run ${runId} is not live` });
  }
}

/** Runs one piece of the pass; a failure is recorded and logged, and the pass goes on. */
async function guarded(
  report: ReconcileReport,
  deps: ReconcileDeps,
  step: string,
  runId: string | undefined,
  work: () => Promise<void>,
): Promise<void> {
  try {
    await work();
  } catch (error) {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    report.errors.push({ step, runId, message });
    deps.logger?.error('Reconciler step failed', { step, runId, error: message });
  }
}

/**
 * A multi-node run's network outlives it only when its ReleaseResources could not delete it
 * (its instances were still shutting down): deleted here once the run is no longer live.
 */
async function releaseEndedNetworks(runs: Map<string, RunRecord>, deps: ReconcileDeps, report: ReconcileReport): Promise<void> {
  const networks = deps.networks;
  if (networks === undefined) return;
  let runIds: string[] = [];
  await guarded(report, deps, 'list-run-networks', undefined, async () => {
    runIds = await networks.listRunNetworks();
  });
  for (const runId of runIds) {
    if (runs.has(runId)) continue;
    await guarded(report, deps, 'release-run-network', runId, async () => {
      // Re-read: a run that started after the live runs were listed keeps its network.
      const run = await deps.store.get(runId);
      if (run !== undefined && !isTerminal(run.status)) return;
      await networks.release(runId);
      report.releasedNetworks.push(runId);
    });
  }
}
