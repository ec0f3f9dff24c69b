import { useMemo, useState } from 'preact/hooks';
import { getAllPages, getJson, problem } from '../api';
import { ObjectivePicker } from '../components/objective-picker';
import { StatusBadge } from '../components/status-badge';
import { TrialsView } from '../components/trials-view';
import { dateTime, usd } from '../format';
import { useHeadingFocus } from '../focus';
import { usePoll } from '../poll';
import type { Experiment, ExperimentRun, ExperimentRunsPage, Objective, Sweep, SweepPage } from '../research-types';
import { runsHref, sweepHref } from '../router';
import { defaultObjective, experimentRows, metricsOf } from '../trials';
import { TERMINAL } from '../types';

const POLL_MS = 3000;
/** The API pages an experiment's runs by 100; the page reads at most this many. */
const MAX_RUNS = 10_000;
/** Sweeps whose record is read for their objective and status. */
const MAX_SWEEPS = 20;

/** One experiment: its runs ranked by the objective, the objective by run, hyperparameters against it, its sweeps. */
export function ExperimentPage({ name }: { name: string }) {
  const path = `/experiments/${encodeURIComponent(name)}/runs`;
  const [experiment, setExperiment] = useState<Experiment | undefined>();
  const [runs, setRuns] = useState<ExperimentRun[] | undefined>();
  const [truncated, setTruncated] = useState(false);
  const [sweeps, setSweeps] = useState<Sweep[]>([]);
  const [chosen, setChosen] = useState<Objective | undefined>();
  const [error, setError] = useState<string | undefined>();

  usePoll(
    async () => {
      const read = await getAllPages<ExperimentRunsPage, ExperimentRun>(path, (p) => p.runs, { limit: 100, max: MAX_RUNS });
      setError(undefined);
      if (read.changed || runs === undefined) {
        setExperiment(read.first.experiment);
        setRuns(read.items);
        setTruncated(read.truncated);
        const ids = [...new Set(read.items.flatMap((r) => (r.sweep === undefined ? [] : [r.sweep.sweepId])))].slice(0, MAX_SWEEPS);
        const found = await Promise.all(ids.map((id) => getJson<SweepPage>(`/sweeps/${encodeURIComponent(id)}`, { limit: 1 }).then((a) => a.data.sweep, () => undefined)));
        setSweeps(found.filter((s): s is Sweep => s !== undefined));
      }
      return read.items.some((r) => !TERMINAL.has(r.status));
    },
    POLL_MS,
    [name],
    (e) => setError(problem(e, `Experiment ${name} not found (or not yours).`)),
  );

  const sweepObjective = sweeps[0]?.spec.objective;
  const objective = chosen ?? defaultObjective(runs ?? [], sweepObjective);
  const metrics = useMemo(() => metricsOf(runs ?? []), [runs]);
  const oneSweep = runs !== undefined && runs.length > 0 && runs.every((r) => r.sweep !== undefined && r.sweep.sweepId === runs[0]?.sweep?.sweepId);
  const rows = useMemo(() => experimentRows(runs ?? [], objective, oneSweep), [runs, objective, oneSweep]);

  useHeadingFocus(runs !== undefined);

  if (runs === undefined) {
    return (
      <section>
        <h1 tabIndex={-1}>Experiment {name}</h1>
        {error === undefined ? <p>Loading…</p> : <p class="error" role="alert">{error}</p>}
      </section>
    );
  }
  const cost = runs.reduce((sum, r) => sum + r.costUsd, 0);
  const live = runs.filter((r) => !TERMINAL.has(r.status)).length;
  return (
    <article aria-labelledby="experiment-title" data-experiment={name}>
      <p class="crumbs">
        <a href="#/experiments">Experiments</a> / <span>{name}</span>
      </p>
      <h1 id="experiment-title" tabIndex={-1}>
        {name}
      </h1>
      {error !== undefined && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <section class="details" aria-label="Experiment details">
        <dl>
          <div>
            <dt>Runs</dt>
            <dd>
              {runs.length}
              {truncated ? ` (the first ${MAX_RUNS})` : ''} · {live} live · <a href={runsHref({ experiment: name })}>in the runs list</a>
            </dd>
          </div>
          <div>
            <dt>Cost</dt>
            <dd>{usd(cost)}</dd>
          </div>
          <div>
            <dt>Created</dt>
            <dd>{dateTime(experiment?.createdAt)}</dd>
          </div>
          <div>
            <dt>Last run</dt>
            <dd>{dateTime(experiment?.updatedAt)}</dd>
          </div>
        </dl>
      </section>
      {sweeps.length > 0 && (
        <section aria-labelledby="sweeps-title">
          <h2 id="sweeps-title">Sweeps</h2>
          <ul class="sweeps">
            {sweeps.map((s) => (
              <li data-sweep={s.sweepId}>
                <a href={sweepHref(s.sweepId)}>{s.spec.name}</a> <span class="mono">{s.sweepId}</span> <StatusBadge status={s.status} reason={s.statusReason} /> · {s.launched} of {s.trials} trials launched ·{' '}
                {s.spec.objective.goal} {s.spec.objective.metric}
              </li>
            ))}
          </ul>
        </section>
      )}
      <ObjectivePicker metrics={metrics} objective={objective} onChange={setChosen} sweepObjective={sweepObjective} />
      <TrialsView rows={rows} objective={objective} indexLabel={oneSweep ? 'trial' : 'run'} showSweep={!oneSweep && sweeps.length > 0} />
    </article>
  );
}
