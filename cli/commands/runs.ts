import { interruptionTimelines, overlapLine } from '../../shared/domain/interruption';
import { printJson, type CommandContext } from '../context';
import type { Run } from '../api-types';
import { duration, shortTime, table, usd } from '../render';
import { followRun } from './follow';

/** `runctl ls`: the caller's runs, newest first. */
export async function listRuns(context: CommandContext, options: { status?: string; limit?: number; all: boolean }): Promise<number> {
  const runs = [];
  let nextToken: string | undefined;
  do {
    const page = await context.client.listRuns({ status: options.status, limit: options.limit ?? 25, nextToken });
    runs.push(...page.runs);
    nextToken = options.all ? page.nextToken : undefined;
  } while (nextToken !== undefined);
  if (context.json) {
    printJson(context, { runs });
    return 0;
  }
  if (runs.length === 0) {
    context.err('No runs yet. Start one with: runctl submit ./my-project --entrypoint train.py --instance-type g5.xlarge');
    return 0;
  }
  context.out(
    table(
      ['RUN', 'NAME', 'STATUS', 'ATTEMPTS', 'COST', 'CREATED'],
      runs.map((r) => [r.runId, r.name, r.status, String(r.attempts), usd(r.costUsd), shortTime(r.createdAt)]),
    ),
  );
  return 0;
}

/** The status page of one run. */
export function describeRun(run: Run, newestCheckpoint: string | undefined, now: Date): string {
  const lines = [
    `Run         ${run.runId} (${run.spec.name})`,
    `Status      ${run.status}${run.statusReason === undefined ? '' : ` — ${run.statusReason}`}`,
    `Created     ${shortTime(run.createdAt)} (${duration((now.getTime() - Date.parse(run.createdAt)) / 1000)} ago)`,
    `Cost so far ${usd(run.costUsd)}`,
    `Checkpoint  ${newestCheckpoint ?? (run.status === 'CHECKPOINTING' ? 'none complete yet — the agent is uploading one now' : 'none yet')}`,
  ];
  if (run.attempts.length === 0) return [...lines, 'Attempts    none yet'].join('\n');
  const rows = run.attempts.map((a) => [
    String(a.attempt),
    a.instanceId ?? '-',
    a.instanceType ?? '-',
    a.availabilityZone ?? '-',
    a.spot ? 'spot' : 'on-demand',
    a.pricePerHourUsd === undefined ? '-' : `$${a.pricePerHourUsd.toFixed(4)}`,
    shortTime(a.startedAt),
    shortTime(a.endedAt),
    a.endReason ?? (a.endedAt === undefined ? 'running' : '-'),
  ]);
  const resumes = run.attempts.filter((a) => a.attempt > 1).map((a) => resumeLine(a, run.attempts.find((p) => p.attempt === a.attempt - 1)));
  const overlap = overlapLine(run.attempts, now);
  const timelines = interruptionTimelines(run.attempts);
  const interruptions = timelines.map(
    (t) =>
      `  attempt ${t.attempt}: warned ${shortTime(t.warnedAt)}, checkpoint ${shortTime(t.checkpointCompletedAt)}, ` +
      `replacement ready ${shortTime(t.replacementReadyAt)}, training resumed ${shortTime(t.trainingResumedAt)}` +
      (t.overheadSeconds === undefined ? '' : ` — ${t.overheadSeconds} s from warning to training`),
  );
  return [
    ...lines,
    ...(overlap === undefined ? [] : [`Recovering  ${overlap}`]),
    '',
    table(['#', 'INSTANCE', 'TYPE', 'AZ', 'MARKET', '$/HOUR', 'STARTED', 'ENDED', 'WHY ENDED'], rows),
    ...nodeLines(run.attempts.at(-1)),
    ...(resumes.length > 0 ? ['', ...resumes] : []),
    ...(interruptions.length === 0 ? [] : ['', 'Interruptions', ...interruptions]),
  ].join('\n');
}

type AttemptView = Run['attempts'][number];

/** The newest attempt's nodes of a multi-node run: rank, type, AZ, instance, state, and the attempt each was launched for. */
function nodeLines(attempt: AttemptView | undefined): string[] {
  const nodes = attempt?.nodes;
  if (attempt === undefined || nodes === undefined) return [];
  const rows = nodes.map((n) => [
    String(n.rank),
    n.instanceType,
    n.availabilityZone,
    n.instanceId,
    nodeState(n, attempt.endedAt !== undefined),
    n.launchedForAttempt === attempt.attempt ? String(n.launchedForAttempt) : `${n.launchedForAttempt} (kept)`,
  ]);
  return ['', `Nodes of attempt ${attempt.attempt}`, table(['RANK', 'TYPE', 'AZ', 'INSTANCE', 'STATE', 'LAUNCHED FOR ATTEMPT'], rows)];
}

/** One node's state in words, from its record. */
export function nodeState(node: NonNullable<AttemptView['nodes']>[number], attemptEnded: boolean): string {
  if (node.releasedAt !== undefined) return node.lostAt !== undefined || node.warnedAt !== undefined ? 'replaced' : 'released';
  if (node.lostAt !== undefined) return 'lost';
  if (node.warnedAt !== undefined) return 'warned: checkpointing';
  if (node.outcome !== undefined) return node.outcome.kind === 'SUCCEEDED' ? 'succeeded' : `failed (${node.outcome.error ?? 'error'})`;
  if (attemptEnded) return 'kept for the next attempt';
  if (node.agentCommandId !== undefined) return 'training';
  if (node.copyCommandId !== undefined && node.dataReadyAt === undefined) return 'copying data';
  if (node.readyAt !== undefined) return 'ready';
  return 'starting';
}

/** Which checkpoint an attempt resumed from, and why that one: what became of the attempt before it. */
export function resumeLine(attempt: AttemptView, previous: AttemptView | undefined): string {
  if (attempt.resumeFrom === undefined) return `Attempt ${attempt.attempt} started from scratch: no complete checkpoint existed yet`;
  const id = attempt.resumeFrom.replace(/\/$/, '').split('/').at(-1) ?? attempt.resumeFrom;
  const before = previous === undefined ? 'the attempt before' : `attempt ${previous.attempt}`;
  const why: Record<string, string> = {
    SPOT_INTERRUPTED: `the checkpoint ${before} uploaded and reported on its spot interruption warning`,
    LOST_DURING_CHECKPOINT: `the newest complete one: ${before}'s instance was reclaimed before the checkpoint it started on the spot warning was reported`,
    INSTANCE_LOST: `the newest complete one: ${before}'s instance was lost, so work since that checkpoint is done again`,
    HEARTBEAT_TIMEOUT: `the newest complete one: ${before}'s agent stopped answering, so work since that checkpoint is done again`,
    NOT_READY: `the newest complete one: ${before}'s instance never became ready`,
    TRAINING_FAILED: `the newest complete one: the script failed in ${before} and is restarted (recovery.maxRestartsOnError)`,
  };
  return `Attempt ${attempt.attempt} resumed from ${id}: ${why[previous?.endReason ?? ''] ?? 'the newest complete checkpoint'}`;
}

/** `runctl status RUN [--follow]`. */
export async function showStatus(context: CommandContext, runId: string, options: { follow: boolean }): Promise<number> {
  if (options.follow) {
    const final = await followRun(context, runId);
    if (context.json && final !== undefined) printJson(context, final);
    return final?.status === 'SUCCEEDED' ? 0 : 1;
  }
  const [run, checkpoints] = await Promise.all([context.client.getRun(runId), context.client.checkpoints(runId)]);
  if (context.json) {
    printJson(context, { ...run, checkpoints: checkpoints.checkpoints });
    return 0;
  }
  const newest = checkpoints.checkpoints[0];
  const described =
    newest === undefined
      ? undefined
      : `${newest.id ?? ''} (attempt ${newest.attempt}, ${shortTime(newest.createdAt)})${newest.latest === true ? ' latest' : ''} ${newest.uri}`;
  context.out(describeRun(run, described, new Date()));
  return 0;
}

/** `runctl cancel RUN [--force]`. */
export async function cancelRun(context: CommandContext, runId: string, options: { force: boolean }): Promise<number> {
  const run = await context.client.cancel(runId, options.force);
  if (context.json) printJson(context, run);
  else {
    context.out(
      `${run.runId}: ${run.status}${run.statusReason === undefined ? '' : ` — ${run.statusReason}`}\n` +
        `The run releases its resources and ends CANCELLED; watch it with: runctl status ${run.runId} --follow`,
    );
  }
  return 0;
}
