import { useState } from 'preact/hooks';
import { getAllPages, problem } from '../api';
import { dateTime } from '../format';
import { usePoll } from '../poll';
import type { Experiment, ExperimentsPage as Page } from '../research-types';
import { experimentHref, runsHref } from '../router';

const POLL_MS = 5000;
const MAX_EXPERIMENTS = 1000;

/** The caller's experiments by name: how many runs each holds and when the last one started. */
export function ExperimentsPage() {
  const [experiments, setExperiments] = useState<Experiment[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  usePoll(
    async () => {
      const { items, changed } = await getAllPages<Page, Experiment>('/experiments', (p) => p.experiments, { limit: 100, max: MAX_EXPERIMENTS });
      setError(undefined);
      if (changed || experiments === undefined) setExperiments(items);
    },
    POLL_MS,
    [],
    (e) => setError(problem(e, 'The API does not list experiments.')),
  );
  return (
    <section aria-labelledby="experiments-title">
      <h1 id="experiments-title" tabIndex={-1}>
        Experiments
      </h1>
      <p class="lead">
        Every run belongs to an experiment: its spec's <code>experiment</code>, its sweep's, else its own name. An experiment's page ranks its runs by the objective.
      </p>
      {error !== undefined && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <p class="count" role="status" aria-live="polite">
        {experiments === undefined ? 'loading…' : `${experiments.length} experiment${experiments.length === 1 ? '' : 's'}`}
      </p>
      {experiments !== undefined && experiments.length === 0 && <p class="empty">No experiments yet. Submit a run or start a sweep with <code>runctl sweep</code>.</p>}
      {experiments !== undefined && experiments.length > 0 && (
        <table class="experiments">
          <caption class="visually-hidden">Experiments, by name</caption>
          <thead>
            <tr>
              <th scope="col">Experiment</th>
              <th scope="col" class="num">Runs</th>
              <th scope="col">Created</th>
              <th scope="col">Last run</th>
              <th scope="col">In the runs list</th>
            </tr>
          </thead>
          <tbody>
            {experiments.map((e) => (
              <tr key={e.name} data-experiment={e.name}>
                <td>
                  <a href={experimentHref(e.name)}>{e.name}</a>
                </td>
                <td class="num">{e.runs}</td>
                <td>{dateTime(e.createdAt)}</td>
                <td>{dateTime(e.updatedAt)}</td>
                <td>
                  <a href={runsHref({ experiment: e.name })} aria-label={`Runs of ${e.name} in the runs list`}>
                    runs
                  </a>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
