import { z } from 'zod';
import { prefetchCommand } from '../agent/commands';
import { nodeCount } from '../domain/multi-node';
import { pollWaitSeconds, type PollLoop } from '../domain/history-budget';
import { countEndReasons, decideRecovery as decide } from '../domain/recovery';
import { nodeOnInstance, type Attempt, type Replacement, type RunRecord } from '../domain/run-record';
import { isTerminal } from '../domain/run-status';
import { CapacityUnavailableError, ConflictError } from '../errors';
import { logger } from '../logger';
import { instanceGone } from '../ports/compute';
import type { AttemptSignals } from '../ports/attempt-signals';
import type { TaskCallbacks } from '../ports/run-credentials';
import { COMMAND_POLL_BASE_SECONDS, READINESS_BASE_SECONDS } from './attempt-loops';
import type { ReplacementWaitOutcome } from './await-replacement';
import { launchRequestFor } from './provision-instance';
import { checkpointInstance } from './checkpoint-request';
import { besideKeptNodes } from './provision-nodes';
import { requireControlEndpoint, type StepConfig, type StepDeps } from './step-deps';
import { RunIdSchema } from './train-run-state';

/**
 * The prepare-replacement machine's step: on a spot interruption warning (or a rebalance
 * recommendation when the spec asks for it), launch the next attempt's instance at once, wait
 * for it to come online and copy the run's data onto it — all while the old instance checkpoints.
 * The train-run machine knows nothing of this until its own ProvisionInstance for that attempt,
 * which adopts the prepared instance (recorded on the warned attempt as `replacement`) instead
 * of launching one. Each action first looks at the run: once the train-run machine has adopted
 * the instance this machine stops; once the instance is no longer wanted (the old attempt
 * finished after all, a cancel, the run ended, a newer attempt) it terminates it. So no path
 * leaves two instances running for one attempt.
 *
 * A multi-node run replaces the warned node alone: its replacement is launched for the warned
 * rank beside the nodes kept (their subnet, type and market, the rank's own client token), as
 * ProvisionInstance would launch it after the checkpoint (provision-nodes.ts), which then takes
 * it over as that rank. One replacement is prepared per attempt; a second node warned at once is
 * launched after the checkpoint.
 *
 * When the old checkpoint is complete before the replacement is ready with its data, the run
 * waits for it in AwaitReplacement (its token on the record as `replacementToken`): every step
 * that goes on heartbeats that wait, and the step that stops (data copied, or the replacement
 * given up) ends it with SendTaskSuccess, so training starts without a poll's delay.
 */

/**
 * The steps' ports: those of the train-run steps, the callbacks that answer the run's
 * AwaitReplacement wait, and the mark of a handover's checkpoint.
 */
export type PrepareReplacementDeps = StepDeps & {
  tasks: Pick<TaskCallbacks, 'succeedTask' | 'heartbeatTask'>;
  signals: Pick<AttemptSignals, 'markHandoverCheckpoint'>;
};

/** SSM gives up delivering the handover's "checkpoint now" after this long. */
const HANDOVER_DELIVERY_SECONDS = 300;

/**
 * This machine's first pause between looks at the replacement, and between polls of its copy:
 * shorter than the run's own loops (15 s and 10 s), because a run may be waiting on the answer and
 * the polls cost this execution's history, not the run's. Each loop spans the run's own window
 * (its readiness checks, its copy timeout); test/infra/history-budget.test.ts adds them up.
 */
export const REPLACEMENT_POLL_BASE_SECONDS = 5;

/** The readiness and copy loops of prepare-replacement under `config` (WaitForReplacement, WaitForCopy). */
export function replacementLoops(config: Pick<StepConfig, 'readinessMaxChecks' | 'prefetchMaxPolls'>): { readiness: PollLoop; copy: PollLoop } {
  const readinessWindow = config.readinessMaxChecks * READINESS_BASE_SECONDS;
  return {
    readiness: {
      baseSeconds: REPLACEMENT_POLL_BASE_SECONDS,
      windowSeconds: readinessWindow,
      maxPolls: Math.ceil(readinessWindow / REPLACEMENT_POLL_BASE_SECONDS),
    },
    // As many polls as the run's prefetch loop, over its window: the pauses grow past the base only for a long copy.
    copy: {
      baseSeconds: REPLACEMENT_POLL_BASE_SECONDS,
      windowSeconds: config.prefetchMaxPolls * COMMAND_POLL_BASE_SECONDS,
      maxPolls: config.prefetchMaxPolls,
    },
  };
}

const WarnedAttempt = { runId: RunIdSchema, attempt: z.number().int().min(1) };
export const PrepareReplacementEventSchema = z.discriminatedUnion('action', [
  z.object({
    action: z.literal('launch'),
    ...WarnedAttempt,
    instanceId: z.string().min(1),
    /** The EventBridge detail-type that triggered it: a warning, or a rebalance recommendation. */
    trigger: z.string(),
  }),
  z.object({ action: z.literal('check'), ...WarnedAttempt, checks: z.number().int().min(0) }),
  z.object({ action: z.literal('copy'), ...WarnedAttempt }),
  z.object({ action: z.literal('copy-check'), ...WarnedAttempt, commandId: z.string().min(1), polls: z.number().int().min(0) }),
  z.object({ action: z.literal('abandon'), ...WarnedAttempt }),
]);
export type PrepareReplacementEvent = z.infer<typeof PrepareReplacementEventSchema>;

/** `stop`: nothing more to do here (adopted by the run, abandoned, or never launched). */
export interface PrepareResult {
  stop: boolean;
  reason?: string;
  ready?: boolean;
  checks?: number;
  done?: boolean;
  commandId?: string;
  polls?: number;
  /** WaitForCopy's pause before the next poll. */
  waitSeconds?: number;
}

const REBALANCE = 'EC2 Instance Rebalance Recommendation';

/** Where the warned attempt's replacement stands, from the run record alone. */
export type ReplacementSituation =
  | { kind: 'preparing'; warned: Attempt; replacement: Replacement | undefined }
  | { kind: 'adopted' }
  | { kind: 'unwanted'; reason: string; replacement: Replacement | undefined };

/** Pure: what the record says about attempt `attempt`'s replacement. */
export function replacementSituation(record: RunRecord, attempt: number): ReplacementSituation {
  const warned = record.attempts.find((a) => a.attempt === attempt);
  const replacement = warned?.replacement;
  const next = record.attempts.find((a) => a.attempt === attempt + 1);
  if (next !== undefined && replacement !== undefined && (next.instanceId === replacement.instanceId || next.nodes?.some((n) => n.instanceId === replacement.instanceId) === true)) {
    return { kind: 'adopted' };
  }
  if (warned === undefined) return { kind: 'unwanted', reason: `attempt ${attempt} is not recorded`, replacement };
  if (isTerminal(record.status)) return { kind: 'unwanted', reason: `the run ended (${record.status})`, replacement };
  if (next !== undefined) return { kind: 'unwanted', reason: `attempt ${attempt + 1} runs on another instance`, replacement };
  if (record.status === 'FINALIZING' || warned.endReason === 'SUCCEEDED') {
    return { kind: 'unwanted', reason: `attempt ${attempt} finished training after the warning`, replacement };
  }
  if (record.status === 'CANCELLING' || record.cancelRequested !== undefined) return { kind: 'unwanted', reason: 'the run is being cancelled', replacement };
  return { kind: 'preparing', warned, replacement };
}

/** One step of the prepare-replacement machine (see the file comment). */
export async function prepareReplacement(event: PrepareReplacementEvent, deps: PrepareReplacementDeps): Promise<PrepareResult> {
  const record = await deps.store.get(event.runId);
  const result = await step(event, record, deps);
  if (result.stop) await endRunWait(event.runId, result, deps);
  else if (record?.replacementToken !== undefined) await heartbeatRunWait(event.runId, record.replacementToken, deps);
  return result;
}

/**
 * Ends the run's AwaitReplacement wait, if it is waiting: the token is read after this step's
 * own write (dataReadyAt, releasedAt), which the token's conditional write checks, so a wait
 * stored meanwhile is never missed. Cleared first, so only one caller answers it. A failed answer
 * is logged, not thrown: the wait then ends at its HeartbeatSeconds and the run polls as before.
 */
async function endRunWait(runId: string, result: PrepareResult, deps: PrepareReplacementDeps): Promise<void> {
  const record = await deps.store.get(runId);
  const token = record?.replacementToken;
  if (token === undefined || !(await deps.store.clearReplacementToken(runId, token))) return;
  const outcome: ReplacementWaitOutcome = { prepared: result.done === true, reason: result.reason ?? 'preparing the replacement stopped' };
  try {
    const answered = await deps.tasks.succeedTask(token, JSON.stringify(outcome));
    logger.info('answered the run waiting for its replacement', { runId, outcome, answered });
  } catch (error) {
    logger.warn('could not answer the run waiting for its replacement; its wait ends at the heartbeat timeout', { runId, error });
  }
}

/** Tells the waiting run this machine is still at work: its HeartbeatSeconds catch a machine that died. */
async function heartbeatRunWait(runId: string, token: string, deps: PrepareReplacementDeps): Promise<void> {
  try {
    await deps.tasks.heartbeatTask(token);
  } catch (error) {
    logger.warn('could not heartbeat the run waiting for its replacement', { runId, error });
  }
}

async function step(event: PrepareReplacementEvent, record: RunRecord | undefined, deps: PrepareReplacementDeps): Promise<PrepareResult> {
  if (record === undefined) return { stop: true, reason: `run ${event.runId} has no record` };
  const situation = replacementSituation(record, event.attempt);
  if (situation.kind === 'adopted') return { stop: true, reason: `attempt ${event.attempt + 1} adopted the replacement` };
  if (situation.kind === 'unwanted') return release(event, situation.replacement, situation.reason, deps);
  if (event.action === 'launch') return launch(event, record, situation.warned, deps);
  const replacement = situation.replacement;
  if (replacement === undefined) return { stop: true, reason: 'no replacement was launched' };
  switch (event.action) {
    case 'abandon':
      return release(event, replacement, 'preparing it failed', deps);
    case 'check':
      return check(event, replacement, deps);
    case 'copy':
      return copy(event, record, replacement, deps);
    case 'copy-check':
      return copyCheck(event, record, replacement, deps);
  }
}

async function launch(
  event: Extract<PrepareReplacementEvent, { action: 'launch' }>,
  record: RunRecord,
  warned: Attempt,
  deps: StepDeps,
): Promise<PrepareResult> {
  const spec = record.spec;
  const wanted = event.trigger === REBALANCE ? spec.recovery.preProvisionOnRebalance : spec.recovery.provisionOnWarning;
  if (!wanted) return { stop: true, reason: `recovery.${event.trigger === REBALANCE ? 'preProvisionOnRebalance' : 'provisionOnWarning'} is off` };
  // A volume attaches to one instance at a time: such a run keeps the sequential path.
  if (spec.volume !== undefined) return { stop: true, reason: 'a run with a dataset volume attaches it after the old instance is released' };
  // A multi-node run replaces the warned node alone, beside the nodes it keeps.
  const node = nodeCount(spec) > 1 ? nodeOnInstance(warned, event.instanceId) : undefined;
  if (node === undefined && warned.instanceId !== event.instanceId) return { stop: true, reason: `attempt ${event.attempt} runs on ${warned.instanceId ?? 'no instance'}` };
  const trigger = event.trigger === REBALANCE ? 'rebalance' : 'warning';
  if (warned.replacement !== undefined) {
    if (warned.replacement.rank === node?.rank) {
      // A retry of this very step (its launch landed, the answer was lost) goes on; the other
      // trigger's execution (a warning during a rebalance's preparation) leaves it to the first.
      if ((warned.replacement.trigger ?? 'warning') === trigger) return { stop: false, reason: 'already launched' };
      return { stop: true, reason: `the replacement launched on the ${warned.replacement.trigger ?? 'warning'} is being prepared by its own execution` };
    }
    // One replacement is prepared per attempt: a second node warned is launched after the checkpoint.
    return { stop: true, reason: `node ${warned.replacement.rank ?? '?'}'s replacement is already prepared; node ${node?.rank ?? '?'}'s is launched after the checkpoint` };
  }

  // The same policy DecideRecovery applies next: the interruption counted, reclaimed capacity last.
  const reasons = record.attempts.map((a) => (a.attempt === event.attempt ? 'SPOT_INTERRUPTED' : a.endReason));
  const { interruptions, userFailures } = countEndReasons(reasons);
  const decision = decide(
    {
      error: 'Spot.Interrupted',
      attempt: event.attempt,
      interruptions,
      userFailures,
      instanceType: warned.instanceType,
      availabilityZone: warned.availabilityZone,
      spot: warned.spot,
    },
    {
      maxInterruptions: spec.recovery.maxInterruptions,
      maxRestartsOnError: spec.recovery.maxRestartsOnError,
      strategy: 'eager-next',
      instanceTypes: spec.instance.types,
      availabilityZones: spec.instance.availabilityZones,
      spot: spec.instance.spot,
      onDemandFallback: spec.instance.onDemandFallback,
    },
  );
  if (decision.action !== 'retry') return { stop: true, reason: `no next attempt: ${decision.reason}` };

  let request = launchRequestFor(record, decision.nextAttempt, decision.placement);
  if (node !== undefined) {
    // Where ProvisionInstance would launch the rank after the checkpoint, with its client token.
    const anchor = warned.nodes?.find((n) => n !== node && n.warnedAt === undefined && n.lostAt === undefined && n.releasedAt === undefined);
    if (anchor === undefined || record.network === undefined) return { stop: true, reason: `no node of attempt ${event.attempt} is kept: a whole fleet is launched after the checkpoint` };
    request = besideKeptNodes(request, anchor, node.rank, record.network);
  }
  let launched;
  try {
    launched = await deps.compute.launch(request);
  } catch (error) {
    // No capacity now: the train-run machine walks the list itself after the checkpoint, as without this.
    if (error instanceof CapacityUnavailableError) return { stop: true, reason: error.message };
    throw error;
  }
  const replacement: Replacement = {
    attempt: decision.nextAttempt,
    instanceId: launched.instanceId,
    instanceType: launched.instanceType,
    availabilityZone: launched.availabilityZone,
    spot: launched.spot,
    launchedAt: launched.launchedAt,
    trigger,
    ...(node === undefined ? {} : { rank: node.rank, subnetId: launched.subnetId, privateIp: launched.privateIp }),
  };
  try {
    await deps.store.updateAttempt(event.runId, event.attempt, { replacement });
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
    // The run moved on while this launched: the same client token gave its ProvisionInstance
    // this very instance (adopted), or the instance is not wanted.
    const latest = await deps.store.get(event.runId);
    const adopted = latest?.attempts.some((a) => a.attempt === replacement.attempt && a.instanceId === replacement.instanceId);
    if (adopted === true) return { stop: true, reason: 'adopted by the run before it was recorded' };
    await deps.compute.terminate(replacement.instanceId);
    return { stop: true, reason: 'the run moved on while the replacement launched; terminated it' };
  }
  logger.info('replacement launched on the warning', { runId: event.runId, warnedAttempt: event.attempt, replacement });
  return { stop: false };
}

async function check(event: { runId: string; attempt: number; checks: number }, replacement: Replacement, deps: StepDeps): Promise<PrepareResult> {
  const readiness = await deps.compute.readiness(replacement.instanceId);
  const checks = event.checks + 1;
  if (instanceGone(readiness.state)) return release(event, replacement, `the replacement is ${readiness.state}`, deps);
  if (readiness.ready) {
    if (replacement.readyAt === undefined) await record(event, { ...replacement, readyAt: deps.clock().toISOString() }, deps);
    return { stop: false, ready: true, checks };
  }
  if (checks >= replacementLoops(deps.config).readiness.maxPolls) return release(event, replacement, `the replacement was not ready after ${checks} checks`, deps);
  return { stop: false, ready: false, checks };
}

async function copy(event: { runId: string; attempt: number }, run: RunRecord, replacement: Replacement, deps: PrepareReplacementDeps): Promise<PrepareResult> {
  if (replacement.dataReadyAt !== undefined) return { stop: true, done: true, reason: 'data already copied' };
  if (run.spec.data.length === 0) return ready(event, run, replacement, 'no data to copy', deps);
  const commandId = await deps.compute.sendCommand(replacement.instanceId, prefetchCommand(run.spec.data, {
    endpoint: requireControlEndpoint(deps.config),
    region: deps.config.region,
    runId: event.runId,
    attempt: replacement.attempt,
  }), {
    comment: `runctl prefetch ${event.runId} attempt ${replacement.attempt} (replacement)`,
    timeoutSeconds: 6 * 3600,
  });
  await record(event, { ...replacement, copyCommandId: commandId }, deps);
  return { stop: false, done: false, commandId, polls: 0, waitSeconds: REPLACEMENT_POLL_BASE_SECONDS };
}

async function copyCheck(
  event: { runId: string; attempt: number; commandId: string; polls: number },
  run: RunRecord,
  replacement: Replacement,
  deps: PrepareReplacementDeps,
): Promise<PrepareResult> {
  const result = await deps.compute.commandResult(replacement.instanceId, event.commandId);
  const polls = event.polls + 1;
  if (result.status === 'Pending' || result.status === 'InProgress' || result.status === 'Delayed') {
    const loop = replacementLoops(deps.config).copy;
    if (polls >= loop.maxPolls) return release(event, replacement, `the data copy was still ${result.status} after ${polls} polls`, deps);
    return { stop: false, done: false, commandId: event.commandId, polls, waitSeconds: pollWaitSeconds(loop, polls) };
  }
  if (result.status !== 'Success') {
    // Not this machine's to report: the run copies again on a fresh instance and says why there.
    return release(event, replacement, `the data copy ended ${result.status}`, deps);
  }
  return ready(event, run, replacement, 'ready for the next attempt', deps);
}

/** Records the replacement ready with the run's data; a handover's then asks the attempt to hand over. */
async function ready(event: { runId: string; attempt: number }, run: RunRecord, replacement: Replacement, reason: string, deps: PrepareReplacementDeps): Promise<PrepareResult> {
  await record(event, { ...replacement, dataReadyAt: deps.clock().toISOString() }, deps);
  const handover = await handOver(event, run, replacement, deps);
  return { stop: true, done: true, reason: handover === undefined ? reason : `${reason}; ${handover}` };
}

/**
 * The end of a rebalance handover: the replacement launched on the recommendation is ready while
 * the attempt still trains (no warning came, training did not end), so the attempt is asked, once,
 * to checkpoint and stop. Its callback (Spot.Interrupted, as for any early checkpoint) takes the
 * run through recovery, whose ProvisionInstance adopts this replacement at once. The mark is
 * conditional on the run still TRAINING: a warning that came meanwhile has its own checkpoint.
 */
async function handOver(event: { runId: string; attempt: number }, run: RunRecord, replacement: Replacement, deps: PrepareReplacementDeps): Promise<string | undefined> {
  if (replacement.trigger !== 'rebalance' || run.spec.recovery.checkpointOnRebalance) return undefined;
  const warned = run.attempts.find((a) => a.attempt === event.attempt);
  if (warned?.instanceId === undefined || warned.nodes !== undefined) return undefined;
  const marked = await deps.signals.markHandoverCheckpoint({
    runId: event.runId,
    attempt: event.attempt,
    instanceId: warned.instanceId,
    at: deps.clock().toISOString(),
    replacementId: replacement.instanceId,
  });
  if (!marked) return undefined;
  const asked = await checkpointInstance(deps.compute, warned.instanceId, {
    runId: event.runId,
    attempt: event.attempt,
    reason: 'handover',
    timeoutSeconds: HANDOVER_DELIVERY_SECONDS,
    comment: `runctl checkpoint ${event.runId} attempt ${event.attempt}: handover to ${replacement.instanceId}`,
  });
  logger.info('handover: asked the attempt for its checkpoint', { runId: event.runId, attempt: event.attempt, replacement: replacement.instanceId, outcome: asked });
  return `asked attempt ${event.attempt} on ${warned.instanceId} for its checkpoint to hand over`;
}

/** Terminates a replacement nobody will adopt and records when (its cost runs until then). */
async function release(
  event: { runId: string; attempt: number },
  replacement: Replacement | undefined,
  reason: string,
  deps: StepDeps,
): Promise<PrepareResult> {
  if (replacement === undefined || replacement.releasedAt !== undefined) return { stop: true, reason };
  await deps.compute.terminate(replacement.instanceId);
  await record(event, { ...replacement, releasedAt: deps.clock().toISOString() }, deps).catch((error: unknown) => {
    // The attempt is no longer the newest: ReleaseResources has ended the run's attempts meanwhile.
    logger.warn('could not record the released replacement', { runId: event.runId, error });
  });
  logger.info('replacement released', { runId: event.runId, instanceId: replacement.instanceId, reason });
  return { stop: true, reason: `${reason}; replacement ${replacement.instanceId} terminated` };
}

async function record(event: { runId: string; attempt: number }, replacement: Replacement, deps: StepDeps): Promise<void> {
  await deps.store.updateAttempt(event.runId, event.attempt, { replacement });
}
