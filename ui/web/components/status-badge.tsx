import { TERMINAL } from '../types';
import { statusWords } from '../format';

/** A run status with its colour class; the reason, when there is one, as its description. */
export function StatusBadge({ status, reason }: { status: string; reason?: string }) {
  const tone =
    status === 'SUCCEEDED' ? 'ok' : status.startsWith('FAILED') ? 'bad' : status === 'CANCELLED' || status === 'STOPPED_BUDGET' ? 'muted' : TERMINAL.has(status) ? 'muted' : 'live';
  return (
    <span class={`badge ${tone}`} title={reason} data-status={status}>
      {statusWords(status)}
    </span>
  );
}
