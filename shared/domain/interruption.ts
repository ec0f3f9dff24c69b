import type { Attempt, Replacement } from './run-record';

/**
 * The timeline of each spot interruption of a run, from the attempts on its record: when the
 * warning came, when the old attempt's checkpoint was complete, when the replacement launched on
 * the warning was online, and when training started again on the next attempt. Pure, so the
 * API, the CLI and the docs report the same figures.
 */
export interface InterruptionTimeline {
  /** The interrupted attempt. */
  attempt: number;
  warnedAt: string;
  checkpointCompletedAt?: string;
  /** The replacement launched on the warning, when there was one. */
  replacementInstanceId?: string;
  replacementReadyAt?: string;
  /** When the next attempt's agent was started; undefined while it has not been. */
  trainingResumedAt?: string;
  /** Warning → training resumed, in seconds: what the interruption cost the run in wall time. */
  overheadSeconds?: number;
}

/** The attempt fields the timeline reads (so the CLI can pass what the API returned). */
export type TimelineAttempt = Pick<
  Attempt,
  'attempt' | 'instanceId' | 'endedAt' | 'warnedAt' | 'checkpointCompletedAt' | 'checkpointUpload' | 'trainingStartedAt'
> & {
  replacement?: Pick<Replacement, 'instanceId' | 'readyAt' | 'dataReadyAt' | 'releasedAt' | 'rank' | 'trigger'>;
};

const seconds = (from: string, to: string) => Math.round((Date.parse(to) - Date.parse(from)) / 100) / 10;

/** One entry per attempt that got a spot warning, oldest first. */
export function interruptionTimelines(attempts: readonly TimelineAttempt[]): InterruptionTimeline[] {
  return attempts.flatMap((a) => {
    if (a.warnedAt === undefined) return [];
    const next = attempts.find((n) => n.attempt === a.attempt + 1);
    const resumed = next?.trainingStartedAt;
    return [
      {
        attempt: a.attempt,
        warnedAt: a.warnedAt,
        checkpointCompletedAt: a.checkpointCompletedAt,
        replacementInstanceId: a.replacement?.instanceId,
        replacementReadyAt: a.replacement?.readyAt,
        trainingResumedAt: resumed,
        overheadSeconds: resumed === undefined ? undefined : seconds(a.warnedAt, resumed),
      },
    ];
  });
}

/**
 * What the run is doing while an interruption is being recovered with a replacement launched
 * on the warning, in one line ("replacement i-… online, copying data while i-… uploads its
 * checkpoint, 12 s after the warning"); undefined when no such overlap is under way.
 */
export function overlapLine(attempts: readonly TimelineAttempt[], now: Date): string | undefined {
  const warned = attempts.at(-1);
  const replacement = warned?.replacement;
  if (warned?.warnedAt === undefined || replacement === undefined || replacement.releasedAt !== undefined) return undefined;
  const since = `${Math.max(0, Math.round((now.getTime() - Date.parse(warned.warnedAt)) / 1000))} s after the ${replacement.trigger === 'rebalance' ? 'handover asked it to stop' : 'warning'}`;
  const state =
    replacement.dataReadyAt !== undefined ? 'ready' : replacement.readyAt !== undefined ? 'online, copying data' : 'booting';
  // A multi-node run: the replacement is the warned node's, and rank 0 (the attempt's instance) uploads the checkpoint.
  const multiNode = replacement.rank !== undefined;
  const old = `${multiNode ? 'rank 0 ' : ''}${warned.instanceId ?? 'the old instance'}`;
  const checkpoint =
    warned.checkpointCompletedAt !== undefined || warned.endedAt !== undefined
      ? `${old}'s checkpoint is complete`
      : `${old} uploads ${multiNode ? "the run's" : 'its'} checkpoint${uploadProgress(warned.checkpointUpload)}`;
  const whose = multiNode ? `node ${replacement.rank}'s replacement` : 'replacement';
  return `${whose} ${replacement.instanceId} ${state} while ${checkpoint} (${since})`;
}

/** `: 1.2 of 2.0 GB` from the agent's last report, in the unit of the total; empty without one. */
function uploadProgress(upload: Attempt['checkpointUpload']): string {
  if (upload === undefined || upload.totalBytes <= 0) return '';
  const [unit, size] = upload.totalBytes >= 1e9 ? ['GB', 1e9] : upload.totalBytes >= 1e6 ? ['MB', 1e6] : ['kB', 1e3];
  const show = (bytes: number) => (bytes / size).toFixed(1);
  return `: ${show(Math.min(upload.bytes, upload.totalBytes))} of ${show(upload.totalBytes)} ${unit}`;
}
