import { useMemo, useState } from 'preact/hooks';
import { getJson } from '../api';
import { StatusBadge } from '../components/status-badge';
import { dateTime, usd } from '../format';
import { usePoll } from '../poll';
import { experimentHref, runHref, runsHref } from '../router';
import { STATUSES, type RunSummary, type RunsPage as Page } from '../types';

/** The API pages runs by 100; the list holds at most this many (the newest). */
const MAX_RUNS = 1000;
const PAGE = 100;
/** The newest page is polled this often; older runs rarely change and are read on load. */
const POLL_MS = 2000;

/** Runs newest first: filter by status and experiment, live status and cost. */
export function RunsPage({ filter }: { filter: { status?: string; experiment?: string } }) {
  const [runs, setRuns] = useState<RunSummary[] | undefined>();
  const [more, setMore] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const [loadedAll, setLoadedAll] = useState(false);

  usePoll(
    async () => {
      if (!loadedAll) {
        // First load: page through up to MAX_RUNS, rendering once at the end.
        const all: RunSummary[] = [];
        let token: string | undefined;
        do {
          const { data } = await getJson<Page>('/runs', { status: filter.status, experiment: filter.experiment, limit: PAGE, nextToken: token });
          all.push(...data.runs);
          token = data.nextToken;
        } while (token !== undefined && all.length < MAX_RUNS);
        setRuns(all.slice(0, MAX_RUNS));
        setMore(token !== undefined);
        setLoadedAll(true);
        setError(undefined);
        return;
      }
      const { data, changed } = await getJson<Page>('/runs', { status: filter.status, experiment: filter.experiment, limit: PAGE });
      setError(undefined);
      if (!changed) return;
      setRuns((held) => mergeNewest(held ?? [], data.runs));
    },
    POLL_MS,
    [filter.status, filter.experiment, loadedAll],
    (e) => setError(e instanceof Error ? e.message : String(e)),
  );

  const experiments = useMemo(() => [...new Set((runs ?? []).map((r) => r.experiment).filter((e): e is string => e !== undefined))].sort(), [runs]);
  const shown = useMemo(
    () => (runs ?? []).filter((r) => (filter.status === undefined || r.status === filter.status) && (filter.experiment === undefined || r.experiment === filter.experiment)),
    [runs, filter.status, filter.experiment],
  );
  const onFilter = (next: { status?: string; experiment?: string }) => {
    setLoadedAll(false);
    setRuns(undefined);
    location.hash = runsHref({ ...filter, ...next });
  };

  return (
    <section aria-labelledby="runs-title">
      <h1 id="runs-title" tabIndex={-1}>
        Runs
      </h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Status
          <select value={filter.status ?? ''} onChange={(e) => onFilter({ status: e.currentTarget.value || undefined })}>
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Experiment
          <select value={filter.experiment ?? ''} onChange={(e) => onFilter({ experiment: e.currentTarget.value || undefined })} disabled={experiments.length === 0 && filter.experiment === undefined}>
            <option value="">any</option>
            {[...new Set([...experiments, ...(filter.experiment === undefined ? [] : [filter.experiment])])].map((e) => (
              <option value={e}>{e}</option>
            ))}
          </select>
        </label>
        <span class="count" role="status" aria-live="polite">
          {runs === undefined ? 'loading…' : `${shown.length} run${shown.length === 1 ? '' : 's'}${more ? ` (the newest ${MAX_RUNS})` : ''}`}
        </span>
      </form>
      {error !== undefined && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {runs !== undefined && shown.length === 0 && <p class="empty">No runs{filter.status === undefined ? '' : ` in ${filter.status}`} yet. Start one with <code>runctl submit</code>.</p>}
      {shown.length > 0 && (
        <table class="runs">
          <caption class="visually-hidden">Runs, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Run</th>
              <th scope="col">Status</th>
              {experiments.length > 0 && <th scope="col">Experiment</th>}
              <th scope="col" class="num">Attempts</th>
              <th scope="col" class="num">Cost so far</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((run) => (
              <tr key={run.runId} data-run={run.runId}>
                <td>
                  <a href={runHref(run.runId)}>{run.name}</a>
                </td>
                <td class="mono">{run.runId}</td>
                <td>
                  <StatusBadge status={run.status} reason={run.statusReason} />
                </td>
                {experiments.length > 0 && <td>{run.experiment === undefined ? '' : <a href={experimentHref(run.experiment)}>{run.experiment}</a>}</td>}
                <td class="num">{run.attempts}</td>
                <td class="num">{usd(run.costUsd)}</td>
                <td>{dateTime(run.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** The newest page replaces its runs in the held list; runs new since then go on top. */
function mergeNewest(held: RunSummary[], newest: RunSummary[]): RunSummary[] {
  const fresh = new Map(newest.map((r) => [r.runId, r]));
  const kept = held.map((r) => fresh.get(r.runId) ?? r);
  const known = new Set(held.map((r) => r.runId));
  const added = newest.filter((r) => !known.has(r.runId));
  return [...added, ...kept].slice(0, MAX_RUNS);
}
