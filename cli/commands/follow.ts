import { overlapLine } from '../../shared/domain/interruption';
import type { MetricPoint, Run } from '../api-types';
import { TERMINAL } from '../api-types';
import { sleep, type CommandContext } from '../context';
import { metricValue, progressBar, shortTime, usd } from '../render';

/** Metric keys that are not metrics. */
const BOOKKEEPING = new Set(['ts', 'attempt', 'step', 'epoch']);

/** One status line: phase, attempt and where it runs. */
export function phaseLine(run: Run): string {
  const attempt = run.attempts.at(-1);
  const where =
    attempt === undefined
      ? ''
      : ` · attempt ${attempt.attempt}${attempt.instanceType === undefined ? '' : ` ${attempt.instanceType}`}` +
        `${attempt.availabilityZone === undefined ? '' : ` ${attempt.availabilityZone}`} ${attempt.spot ? 'spot' : 'on-demand'}` +
        `${attempt.pricePerHourUsd === undefined ? '' : ` $${attempt.pricePerHourUsd.toFixed(4)}/h`}`;
  const overlap = overlapLine(run.attempts, new Date());
  // The overlap line changes as the replacement boots, comes online and copies data.
  const recovering = overlap === undefined ? '' : ` — ${overlap.replace(/ \(\d+ s after the warning\)$/, '')}`;
  return `${run.status}${where}${run.statusReason === undefined ? '' : ` — ${run.statusReason}`}${recovering}`;
}

/** One line for the newest metrics: an epoch bar when the script reports epochs and the spec says how many. */
export function metricsLine(point: MetricPoint, run: Run): string {
  const parts: string[] = [];
  const totalEpochs = Number(run.spec.hyperparameters.epochs);
  const epoch = point.epoch;
  if (typeof epoch === 'number' && Number.isFinite(totalEpochs) && totalEpochs > 0) parts.push(`epoch ${progressBar(epoch, totalEpochs)}`);
  else if (typeof epoch === 'number') parts.push(`epoch ${epoch}`);
  if (typeof point.step === 'number') parts.push(`step ${point.step}`);
  for (const [key, value] of Object.entries(point)) {
    if (!BOOKKEEPING.has(key) && typeof value === 'number') parts.push(`${key}=${metricValue(value)}`);
  }
  return parts.join('  ');
}

/**
 * Follows a run to its end: a line for each change of phase or attempt and for new metrics.
 * Ctrl-C stops following only; the run goes on, and the message says how to come back.
 * Resolves with the final run, or undefined when interrupted.
 */
export async function followRun(context: CommandContext, runId: string): Promise<Run | undefined> {
  let interrupted = false;
  const onInterrupt = () => {
    interrupted = true;
    context.err(
      `\nStopped following. Run ${runId} goes on.\n` +
        `  reattach:  runctl status ${runId} --follow\n  logs:      runctl logs ${runId} -f\n  cancel:    runctl cancel ${runId}`,
    );
    process.exit(130);
  };
  process.once('SIGINT', onInterrupt);
  // With --json the progress goes to stderr; the caller prints the final run as the one document.
  const progress = context.json ? context.err : context.out;
  try {
    let lastPhase = '';
    let lastMetrics = '';
    let token: string | undefined;
    for (;;) {
      const run = await context.client.getRun(runId);
      const phase = phaseLine(run);
      if (phase !== lastPhase) {
        progress(`${shortTime(new Date().toISOString())}  ${phase}`);
        lastPhase = phase;
      }
      const page = await context.client.metrics(runId, { nextToken: token, limit: 5000 });
      token = page.resumeToken;
      const newest = page.metrics.at(-1);
      if (newest !== undefined) {
        const line = metricsLine(newest, run);
        if (line !== '' && line !== lastMetrics) progress(`    ${line}`);
        lastMetrics = line;
      }
      if (TERMINAL.has(run.status)) {
        progress(`Run ${runId} ended ${run.status} · cost ${usd(run.costUsd)}${run.latestCheckpoint === undefined ? '' : ` · last checkpoint ${run.latestCheckpoint.uri}`}`);
        return run;
      }
      if (interrupted) return undefined;
      await sleep(context.pollMs);
    }
  } finally {
    process.removeListener('SIGINT', onInterrupt);
  }
}
