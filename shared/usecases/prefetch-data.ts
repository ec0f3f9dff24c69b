import { z } from 'zod';
import { PREFETCH_EXIT, prefetchCommand } from '../agent/commands';
import type { NodeState, RunRecord } from '../domain/run-record';
import { InstanceLostError, PrecheckFailedError, RunctlError } from '../errors';
import { logger } from '../logger';
import { failIfInstanceGone } from './check-instance';
import { pollWaitSeconds } from '../domain/history-budget';
import { attemptLoops, COMMAND_POLL_BASE_SECONDS, PREFETCH_TIMEOUT_SECONDS } from './attempt-loops';
import { requireControlEndpoint, type StepDeps } from './step-deps';
import { requireRun } from './step-event';
import { RunIdSchema } from './train-run-state';

/** The copy did not finish within the poll budget, or failed for a reason other than the source. */
export class PrefetchFailedError extends RunctlError {
  override name = 'Prefetch.Failed';
}

export const PrefetchDataEventSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('start'), runId: RunIdSchema, attempt: z.number().int().min(1), instanceId: z.string().min(1) }),
  z.object({
    action: z.literal('check'),
    runId: RunIdSchema,
    instanceId: z.string().min(1),
    commandId: z.string().min(1),
    polls: z.number().int().min(0),
  }),
]);
export type PrefetchDataEvent = z.infer<typeof PrefetchDataEventSchema>;

/** `waitSeconds`: WaitForPrefetch's pause before the next poll. */
export type PrefetchResult =
  | { skipped: true; done: true }
  | { skipped: false; done: false; commandId: string; polls: number; waitSeconds: number }
  | { skipped: false; done: true; commandId: string; polls: number; bytes: number; seconds: number };

const PrefetchLineSchema = z.object({ source: z.string(), bytes: z.number(), seconds: z.number() });

/**
 * PrefetchData: starts the SSM command that copies each data source onto the instance (the
 * machine polls it with a Wait loop; no Lambda sleeps), then reads its outcome. A missing or
 * denied source, or a copy that does not match its dataset manifest, is the user's to fix:
 * Run.PrecheckFailed.
 */
export async function prefetchData(event: PrefetchDataEvent, deps: StepDeps): Promise<PrefetchResult> {
  if (event.action === 'start') {
    const record = await requireRun(deps.store, event.runId);
    if (record.spec.data.length === 0) return { skipped: true, done: true };
    const nodes = nodesOf(record, event.instanceId);
    if (nodes !== undefined) return startNodeCopies(record, event.attempt, nodes, deps);
    // The replacement launched on the spot warning copied the data while the old instance checkpointed.
    const replacement = record.attempts.find((a) => a.attempt === event.attempt - 1)?.replacement;
    const adopted = replacement?.instanceId === event.instanceId ? replacement : undefined;
    if (adopted?.dataReadyAt !== undefined) return { skipped: true, done: true };
    await deps.store.transition(event.runId, ['STARTING', 'ATTACHING_VOLUME', 'PREFETCHING'], 'PREFETCHING', {
      statusReason: `Copying ${record.spec.data.length} data source(s) to ${event.instanceId}`,
    });
    // Adopted mid-copy (the checkpoint was done first): wait for that copy rather than start a
    // second one that would share the instance's link with it and take as long again.
    if (adopted?.copyCommandId !== undefined) {
      return { skipped: false, done: false, commandId: adopted.copyCommandId, polls: 0, waitSeconds: COMMAND_POLL_BASE_SECONDS };
    }
    const commandId = await deps.compute.sendCommand(event.instanceId, prefetchCommand(record.spec.data, {
      endpoint: requireControlEndpoint(deps.config),
      region: deps.config.region,
      runId: event.runId,
      attempt: event.attempt,
    }), {
      comment: `runctl prefetch ${event.runId} attempt ${event.attempt}`,
      timeoutSeconds: PREFETCH_TIMEOUT_SECONDS,
    });
    return { skipped: false, done: false, commandId, polls: 0, waitSeconds: COMMAND_POLL_BASE_SECONDS };
  }

  // The poll budget is the run's share of its execution's history (see attempt-loops.ts).
  const record = await requireRun(deps.store, event.runId);
  const loop = attemptLoops(record.spec, deps.config).prefetch;
  const polls = event.polls + 1;
  const nodes = nodesOf(record, event.instanceId);
  if (nodes !== undefined) return checkNodeCopies(record, nodes, event.commandId, polls, loop, deps);
  const base = { skipped: false as const, commandId: event.commandId, polls };
  const copy = await readCopy(deps, event.instanceId, event.commandId, polls, loop);
  if (copy.done) {
    logger.info('prefetch finished', { runId: event.runId, bytes: copy.bytes, seconds: copy.seconds });
    return { ...base, ...copy };
  }
  return { ...base, done: false, waitSeconds: copy.waitSeconds };
}

type PollLoop = ReturnType<typeof attemptLoops>['prefetch'];

/** One look at a copy command: done with its figures, still running, or the error it ended in. */
async function readCopy(
  deps: StepDeps,
  instanceId: string,
  commandId: string,
  polls: number,
  loop: PollLoop,
): Promise<{ done: true; bytes: number; seconds: number } | { done: false; waitSeconds: number }> {
  const result = await deps.compute.commandResult(instanceId, commandId);
  if (result.status === 'Pending' || result.status === 'InProgress' || result.status === 'Delayed') {
    if (loop === undefined || polls >= loop.maxPolls) {
      await failIfInstanceGone(deps, instanceId, 'during the prefetch');
      throw new PrefetchFailedError(`Prefetch command ${commandId} still ${result.status} after ${polls} polls`);
    }
    return { done: false, waitSeconds: pollWaitSeconds(loop, polls) };
  }
  const message = (result.stderr.trim().split('\n').at(-1) ?? '').slice(0, 500);
  if (result.status !== 'Success') {
    // Missing, denied, or not what its manifest says: the data is the user's to fix, not a retry.
    if (result.exitCode === PREFETCH_EXIT.sourceMissing || result.exitCode === PREFETCH_EXIT.accessDenied || result.exitCode === PREFETCH_EXIT.manifestMismatch) {
      throw new PrecheckFailedError(message || `A data source is missing or denied (exit ${result.exitCode})`);
    }
    // A command cut short by its instance's death is an interruption, not a failed prefetch.
    await failIfInstanceGone(deps, instanceId, 'during the prefetch');
    throw new PrefetchFailedError(`Prefetch ${result.status}${result.exitCode === undefined ? '' : ` (exit ${result.exitCode})`}: ${message}`);
  }
  let bytes = 0;
  let seconds = 0;
  for (const line of result.stdout.split('\n')) {
    const parsed = PrefetchLineSchema.safeParse(safeJson(line));
    if (!parsed.success) continue;
    bytes += parsed.data.bytes;
    seconds += parsed.data.seconds;
  }
  return { done: true, bytes, seconds };
}

/** The nodes of a multi-node attempt whose rank 0 is `instanceId`, or undefined for a single-node run. */
function nodesOf(record: RunRecord, instanceId: string): NodeState[] | undefined {
  const attempt = record.attempts.at(-1);
  return attempt?.nodes !== undefined && attempt.instanceId === instanceId ? attempt.nodes : undefined;
}

/**
 * A multi-node attempt copies the run's data onto every node that lacks it, in parallel (a node
 * kept from the previous attempt already holds it). Each command id is kept on its node; the
 * machine carries one of them (any) for its loop.
 */
async function startNodeCopies(record: RunRecord, attempt: number, nodes: readonly NodeState[], deps: StepDeps): Promise<PrefetchResult> {
  const needing = nodes.filter((n) => n.dataReadyAt === undefined);
  if (needing.length === 0) return { skipped: true, done: true };
  await deps.store.transition(record.runId, ['STARTING', 'ATTACHING_VOLUME', 'PREFETCHING'], 'PREFETCHING', {
    statusReason: `Copying ${record.spec.data.length} data source(s) to ${needing.length} of ${nodes.length} nodes`,
  });
  const script = prefetchCommand(record.spec.data, {
    endpoint: requireControlEndpoint(deps.config),
    region: deps.config.region,
    runId: record.runId,
    attempt,
  });
  const commandIds = await Promise.all(
    needing.map(async (node) => {
      const commandId = node.copyCommandId ?? (await deps.compute.sendCommand(node.instanceId, script, {
        comment: `runctl prefetch ${record.runId} attempt ${attempt} node ${node.rank}`,
        timeoutSeconds: PREFETCH_TIMEOUT_SECONDS,
      }));
      if (node.copyCommandId === undefined) await deps.store.updateNode(record.runId, attempt, node.rank, { copyCommandId: commandId });
      return commandId;
    }),
  );
  return { skipped: false, done: false, commandId: commandIds[0] ?? '-', polls: 0, waitSeconds: COMMAND_POLL_BASE_SECONDS };
}

/** One poll of every node's copy: done when all are; a node whose instance went is lost (recovery replaces it). */
async function checkNodeCopies(
  record: RunRecord,
  nodes: readonly NodeState[],
  commandId: string,
  polls: number,
  loop: PollLoop,
  deps: StepDeps,
): Promise<PrefetchResult> {
  const attempt = record.attempts.at(-1)?.attempt ?? 1;
  let bytes = 0;
  let seconds = 0;
  let pending = 0;
  let waitSeconds = COMMAND_POLL_BASE_SECONDS;
  for (const node of nodes) {
    if (node.dataReadyAt !== undefined || node.copyCommandId === undefined) continue;
    let copy;
    try {
      copy = await readCopy(deps, node.instanceId, node.copyCommandId, polls, loop);
    } catch (error) {
      if (error instanceof InstanceLostError) await deps.store.updateNode(record.runId, attempt, node.rank, { lostAt: deps.clock().toISOString() });
      throw error;
    }
    if (!copy.done) {
      pending += 1;
      waitSeconds = copy.waitSeconds;
      continue;
    }
    bytes += copy.bytes;
    seconds = Math.max(seconds, copy.seconds);
    await deps.store.updateNode(record.runId, attempt, node.rank, { dataReadyAt: deps.clock().toISOString() });
  }
  if (pending > 0) return { skipped: false, done: false, commandId, polls, waitSeconds };
  logger.info('prefetch finished on every node', { runId: record.runId, nodes: nodes.length, bytes, seconds });
  return { skipped: false, done: true, commandId, polls, bytes, seconds };
}

function safeJson(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}
