import { useMemo, useState } from 'preact/hooks';
import { getAllPages, problem } from '../api';
import { StatusBadge } from '../components/status-badge';
import { TrialsView } from '../components/trials-view';
import { dateTime, usd } from '../format';
import { useHeadingFocus } from '../focus';
import { usePoll } from '../poll';
import { SWEEP_TERMINAL, type ExperimentRun, type ExperimentRunsPage, type Sweep, type SweepPage as Page, type Trial } from '../research-types';
import { experimentHref, runHref } from '../router';
import { rankRows, sweepRows, valueText } from '../trials';
import { TERMINAL } from '../types';

const POLL_MS = 3000;
const MAX_TRIALS = 10_000;

/**
 * One sweep: its status, budget and early-stopping rule, and its trials ranked by the objective.
 * The trial items say how each was launched (or skipped) and how it ended; the experiment's runs
 * say where the live ones are now.
 */
export function SweepPage({ sweepId }: { sweepId: string }) {
  const [sweep, setSweep] = useState<Sweep | undefined>();
  const [trials, setTrials] = useState<Trial[]>([]);
  const [runs, setRuns] = useState<ReadonlyMap<string, ExperimentRun>>(new Map());
  const [error, setError] = useState<string | undefined>();

  usePoll(
    async () => {
      const read = await getAllPages<Page, Trial>(`/sweeps/${encodeURIComponent(sweepId)}`, (p) => p.trials, { limit: 100, max: MAX_TRIALS });
      const current = read.first.sweep;
      const listed = await getAllPages<ExperimentRunsPage, ExperimentRun>(`/experiments/${encodeURIComponent(current.experiment)}/runs`, (p) => p.runs, {
        limit: 100,
        max: MAX_TRIALS * 2,
      }).catch(() => undefined);
      setError(undefined);
      if (read.changed || sweep === undefined) {
        setSweep(current);
        setTrials(read.items);
      }
      if (listed !== undefined && (listed.changed || runs.size === 0)) {
        setRuns(new Map(listed.items.filter((r) => r.sweep?.sweepId === sweepId).map((r) => [r.runId, r])));
      }
      const liveRuns = listed?.items.some((r) => r.sweep?.sweepId === sweepId && !TERMINAL.has(r.status)) ?? false;
      return !SWEEP_TERMINAL.has(current.status) || liveRuns;
    },
    POLL_MS,
    [sweepId],
    (e) => setError(problem(e, `Sweep ${sweepId} not found (or not yours).`)),
  );

  const objective = sweep?.spec.objective ?? { metric: 'loss', goal: 'minimize' as const };
  const rows = useMemo(() => sweepRows(trials, runs, objective), [trials, runs, objective.metric, objective.goal]);

  useHeadingFocus(sweep !== undefined);

  if (sweep === undefined) {
    return (
      <section>
        <h1 tabIndex={-1}>Sweep {sweepId}</h1>
        {error === undefined ? <p>Loading…</p> : <p class="error" role="alert">{error}</p>}
      </section>
    );
  }
  // FinishSweep names the best trial; until then, the best of those that reported the objective.
  const leader = rankRows(rows, objective.goal)[0];
  const best = sweep.best ?? (leader?.best === undefined ? undefined : { runId: leader.runId, trial: leader.index, value: leader.best });
  const count = (status: string) => rows.filter((r) => r.status === status).length;
  const search = sweep.spec.search;
  const axes = Object.entries(search.grid ?? {}).map(([k, v]) => `${k} ∈ {${v.map(String).join(', ')}}`).concat(Object.entries(search.random ?? {}).map(([k, v]) => `${k} ~ ${v}`));
  const rule = sweep.spec.earlyStopping;
  return (
    <article aria-labelledby="sweep-title" data-sweep={sweep.sweepId} data-status={sweep.status}>
      <p class="crumbs">
        <a href="#/experiments">Experiments</a> / <a href={experimentHref(sweep.experiment)}>{sweep.experiment}</a> / <span class="mono">{sweep.sweepId}</span>
      </p>
      <h1 id="sweep-title" tabIndex={-1}>
        Sweep {sweep.spec.name}
      </h1>
      <p class="status-line">
        <StatusBadge status={sweep.status} reason={sweep.statusReason} /> {sweep.statusReason !== undefined && <span class="reason">{sweep.statusReason}</span>}
      </p>
      {error !== undefined && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <section class="details" aria-label="Sweep details">
        <dl>
          <div>
            <dt>Objective</dt>
            <dd>
              {objective.goal} {objective.metric}
            </dd>
          </div>
          <div>
            <dt>Best</dt>
            <dd>
              {best === undefined ? (
                '—'
              ) : (
                <>
                  {valueText(best.value)} · <a href={runHref(best.runId)}>trial {best.trial}</a>
                  {sweep.best === undefined && ' so far'}
                </>
              )}
            </dd>
          </div>
          <div>
            <dt>Trials</dt>
            <dd data-trials={sweep.trials}>
              {sweep.trials} planned · {sweep.launched} launched · {sweep.finished} finished · {sweep.skipped} skipped
            </dd>
          </div>
          <div>
            <dt>Ended</dt>
            <dd>
              {count('SUCCEEDED')} succeeded · <span data-stopped-early={count('STOPPED_EARLY')}>{count('STOPPED_EARLY')} stopped early</span> · {rows.filter((r) => r.status.startsWith('FAILED')).length} failed
            </dd>
          </div>
          <div>
            <dt>Cost</dt>
            <dd>
              {usd(sweep.costUsd)}
              {sweep.spec.maxCostUsd !== undefined && ` of ${usd(sweep.spec.maxCostUsd)} budget (${usd(sweep.committedUsd)} committed)`}
            </dd>
          </div>
          <div>
            <dt>Parallel trials</dt>
            <dd>{sweep.spec.maxParallel}</dd>
          </div>
          <div>
            <dt>Early stopping</dt>
            <dd>{rule === undefined ? 'none' : `${rule.rule} rule by ${rule.stepKey ?? 'epoch'}, after ${rule.minSteps ?? 1} step(s), with ${rule.minTrials ?? 3} other trial(s)`}</dd>
          </div>
          <div>
            <dt>Search</dt>
            <dd class="mono">
              {axes.join('; ') || '—'}
              {search.trials !== undefined && ` · ${search.trials} draws, seed ${search.seed ?? 0}`}
            </dd>
          </div>
          <div>
            <dt>Started</dt>
            <dd>{dateTime(sweep.createdAt)}</dd>
          </div>
        </dl>
      </section>
      <TrialsView rows={rows} objective={objective} indexLabel="trial" />
    </article>
  );
}
