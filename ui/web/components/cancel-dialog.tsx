import { useRef, useState } from 'preact/hooks';
import { postJson } from '../api';
import type { Run } from '../types';

/**
 * Cancel, asked twice: the button opens a dialog that says what will happen, and only its own
 * button cancels. A native <dialog>: focus moves into it, Escape closes it.
 */
export function CancelButton({ run, onCancelled }: { run: Run; onCancelled: (run: Run) => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [force, setForce] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();

  const confirm = async () => {
    setBusy(true);
    setError(undefined);
    try {
      const answer = await postJson<Run>(`/runs/${encodeURIComponent(run.runId)}/cancel`, { force });
      dialog.current?.close();
      onCancelled(answer);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <button type="button" class="danger" onClick={() => dialog.current?.showModal()} disabled={run.cancelRequested !== undefined}>
        {run.cancelRequested === undefined ? 'Cancel run…' : 'Cancelling…'}
      </button>
      <dialog ref={dialog} aria-labelledby="cancel-title" aria-describedby="cancel-what">
        <h2 id="cancel-title">Cancel run {run.spec.name}?</h2>
        <p id="cancel-what">
          {force
            ? 'The instance is released at once; training since the last checkpoint is lost.'
            : 'The agent checkpoints first, then every resource of the run is released. The run ends CANCELLED.'}
        </p>
        <label>
          <input type="checkbox" checked={force} onChange={(e) => setForce(e.currentTarget.checked)} /> stop at once, without a checkpoint
        </label>
        {error !== undefined && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <div class="buttons">
          <button type="button" class="danger" onClick={() => void confirm()} disabled={busy}>
            Cancel the run
          </button>
          <button type="button" onClick={() => dialog.current?.close()} autofocus>
            Keep it running
          </button>
        </div>
      </dialog>
    </>
  );
}
