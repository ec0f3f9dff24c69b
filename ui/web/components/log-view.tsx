import { useEffect, useRef, useState } from 'preact/hooks';
import { getJson } from '../api';
import { usePoll } from '../poll';
import type { LogChunk } from '../types';

/** Lines shown when a log is first opened; older ones stay in S3 (`runctl logs RUN --tail N`). */
const TAIL_LINES = 500;
/** Most characters held; the oldest go first. */
const MAX_CHARS = 2_000_000;
const POLL_MS = 1000;

/**
 * The training log of one attempt, following: it reads on from where it stopped, moves to the
 * next attempt after a resume (while "follow" is on), and keeps the newest line in view unless
 * the reader scrolled up. The text is set as text, never as markup.
 */
export function LogView({ runId, live }: { runId: string; live: boolean }) {
  const [attempt, setAttempt] = useState<number | undefined>();
  const [attempts, setAttempts] = useState<number[]>([]);
  const [text, setText] = useState('');
  const [follow, setFollow] = useState(true);
  const [error, setError] = useState<string | undefined>();
  const offset = useRef<number | undefined>(undefined);
  const pre = useRef<HTMLPreElement>(null);
  const atBottom = useRef(true);

  usePoll(
    async () => {
      const first = offset.current === undefined;
      const { data } = await getJson<LogChunk>(`/runs/${encodeURIComponent(runId)}/logs`, first ? { attempt, tail: TAIL_LINES } : { attempt, offset: offset.current });
      setError(undefined);
      setAttempts(data.attempts);
      if (attempt === undefined) setAttempt(data.attempt);
      offset.current = data.nextOffset;
      if (data.text !== '') setText((held) => trim(first ? data.text : held + data.text));
      const newer = data.attempts.find((a) => a > data.attempt);
      if (follow && newer !== undefined && data.nextOffset >= data.size) {
        choose(newer);
        return false;
      }
      // A finished run's log is complete once read to its end.
      return live || data.nextOffset < data.size;
    },
    POLL_MS,
    [runId, attempt, live, follow],
    (e) => setError(e instanceof Error ? e.message : String(e)),
  );

  const choose = (next: number) => {
    offset.current = undefined;
    setText('');
    setAttempt(next);
  };

  useEffect(() => {
    const element = pre.current;
    if (element !== null && follow && atBottom.current) element.scrollTop = element.scrollHeight;
  }, [text, follow]);

  return (
    <section class="logs" aria-labelledby="logs-title">
      <div class="section-head">
        <h2 id="logs-title">Log</h2>
        <div role="group" aria-label="Attempt shown" class="attempt-tabs">
          {attempts.map((a) => (
            <button type="button" aria-pressed={a === attempt} onClick={() => choose(a)}>
              attempt {a}
            </button>
          ))}
        </div>
        <label class="follow">
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.currentTarget.checked)} /> follow
        </label>
      </div>
      {error !== undefined && <p class="error">{error}</p>}
      <pre
        ref={pre}
        class="log"
        tabIndex={0}
        aria-label={`Log of attempt ${attempt ?? ''}`}
        aria-live="off"
        data-attempt={attempt}
        onScroll={(e) => {
          const el = e.currentTarget;
          atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
        }}
      >
        {text === '' ? <span class="empty">Nothing logged yet; the agent uploads the log as the script prints.</span> : text}
      </pre>
    </section>
  );
}

function trim(text: string): string {
  if (text.length <= MAX_CHARS) return text;
  const cut = text.indexOf('\n', text.length - MAX_CHARS);
  return text.slice(cut === -1 ? text.length - MAX_CHARS : cut + 1);
}
