import { TERMINAL } from '../types';
import { statusWords } from '../format';

/** Statuses of sweeps and trials that are not run statuses, with their tone. */
const OTHER_TONES: Record<string, string> = { STOPPED: 'muted', SKIPPED: 'muted', FAILED: 'bad', STOPPING: 'live' };

/** The colour class of a run, trial or sweep status. */
export function toneOf(status: string): string {
  if (status === 'SUCCEEDED') return 'ok';
  if (status === 'STOPPED_EARLY') return 'warn';
  if (status.startsWith('FAILED')) return 'bad';
  const other = OTHER_TONES[status];
  if (other !== undefined) return other;
  return TERMINAL.has(status) ? 'muted' : 'live';
}

/** A run status with its colour class; the reason, when there is one, as its description. */
export function StatusBadge({ status, reason }: { status: string; reason?: string }) {
  return (
    <span class={`badge ${toneOf(status)}`} title={reason} data-status={status}>
      {statusWords(status)}
    </span>
  );
}
