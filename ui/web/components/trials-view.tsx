import { useMemo } from 'preact/hooks';
import { usd } from '../format';
import type { Objective } from '../research-types';
import { runHref, sweepHref } from '../router';
import { axisOf, better, rankRows, valueText, varyingHyperparameters, type TrialRow } from '../trials';
import { Scatter, type ScatterPoint } from './scatter';
import { StatusBadge } from './status-badge';

/**
 * Trials side by side: the objective by trial (with the best so far), each hyperparameter that
 * varies against the objective, and the table of trials ranked best first, each linking to its run.
 */
export function TrialsView({ rows, objective, indexLabel, showSweep }: { rows: readonly TrialRow[]; objective: Objective; indexLabel: string; showSweep?: boolean }) {
  const ranked = useMemo(() => rankRows(rows, objective.goal), [rows, objective.goal]);
  const scored = useMemo(() => [...rows].filter((r) => r.best !== undefined).sort((a, b) => a.index - b.index), [rows]);
  const bestRow = ranked[0]?.best === undefined ? undefined : ranked[0];
  const hyperparameters = useMemo(() => varyingHyperparameters(rows), [rows]);
  const columns = useMemo(() => [...new Set(rows.flatMap((r) => Object.keys(r.hyperparameters)))], [rows]);
  const metric = `${objective.goal === 'minimize' ? 'lowest' : 'highest'} ${objective.metric}`;

  const byTrial: ScatterPoint[] = scored.map((r) => ({
    x: r.index,
    y: r.best ?? 0,
    status: r.status,
    best: r === bestRow,
    label: `${indexLabel} ${r.index} (${r.name ?? r.runId}): ${objective.metric} ${valueText(r.best)}, ${r.status.toLowerCase()}`,
  }));
  const line: Array<{ x: number; y: number }> = [];
  for (const r of scored) {
    const previous = line.at(-1)?.y;
    line.push({ x: r.index, y: previous === undefined || better(r.best ?? 0, previous, objective.goal) ? (r.best ?? 0) : previous });
  }
  const missing = rows.length - scored.length;

  return (
    <>
      <section aria-labelledby="objective-title">
        <h2 id="objective-title">
          {objective.metric} by {indexLabel}
        </h2>
        <p class="legend">
          <span class="key ok">●</span> succeeded <span class="key warn">●</span> stopped early <span class="key bad">●</span> failed <span class="key muted">●</span> other <span class="key best">●</span> the best
        </p>
        {scored.length === 0 ? (
          <p class="empty">No {indexLabel} reported {objective.metric} yet.</p>
        ) : (
          <div class="scatter-grid">
            <Scatter
              title={`Best ${objective.metric} of each ${indexLabel} (${objective.goal}); the line is the best so far${missing > 0 ? ` · ${missing} without ${objective.metric}` : ''}`}
              summary={`${objective.metric} by ${indexLabel}: ${scored.length} point(s); best ${valueText(bestRow?.best)} at ${indexLabel} ${bestRow?.index ?? ''}`}
              xLabel={indexLabel}
              yLabel={objective.metric}
              axis={{ kind: 'linear', min: Math.min(...scored.map((r) => r.index)), max: Math.max(...scored.map((r) => r.index)) }}
              points={byTrial}
              line={line}
              data={{ 'data-chart': 'objective' }}
            />
          </div>
        )}
      </section>
      {hyperparameters.length > 0 && scored.length > 0 && (
        <section aria-labelledby="hyper-title">
          <h2 id="hyper-title">Hyperparameters against {objective.metric}</h2>
          <div class="scatter-grid">
            {hyperparameters.map((key) => {
              const withValue = scored.filter((r) => r.hyperparameters[key] !== undefined);
              const axis = axisOf(withValue.map((r) => r.hyperparameters[key] ?? ''));
              const best = withValue.find((r) => r === bestRow);
              return (
                <Scatter
                  key={key}
                  title={`${objective.metric} against ${key}`}
                  summary={`${objective.metric} against ${key}: ${withValue.length} point(s)${best === undefined ? '' : `; the best, ${valueText(best.best)}, at ${key} = ${best.hyperparameters[key] ?? ''}`}`}
                  xLabel={key}
                  yLabel={objective.metric}
                  axis={axis}
                  points={withValue.map((r) => ({
                    x: r.hyperparameters[key] ?? '',
                    y: r.best ?? 0,
                    status: r.status,
                    best: r === bestRow,
                    label: `${key} = ${r.hyperparameters[key] ?? ''}: ${objective.metric} ${valueText(r.best)} (${indexLabel} ${r.index})`,
                  }))}
                  data={{ 'data-hyperparameter': key }}
                />
              );
            })}
          </div>
        </section>
      )}
      <section aria-labelledby="trials-title">
        <h2 id="trials-title">{indexLabel === 'trial' ? 'Trials' : 'Runs'}</h2>
        <div class="table-scroll">
          <table class="trials">
            <caption>
              Sorted by {metric}, best first{missing > 0 ? `; ${missing} without ${objective.metric} last` : ''}
            </caption>
            <thead>
              <tr>
                <th scope="col" class="num">Rank</th>
                <th scope="col" class="num">{indexLabel === 'trial' ? 'Trial' : 'Run #'}</th>
                <th scope="col">Run</th>
                <th scope="col">Status</th>
                <th scope="col" class="num">Best {objective.metric}</th>
                <th scope="col" class="num">Final {objective.metric}</th>
                {columns.map((c) => (
                  <th scope="col">{c}</th>
                ))}
                {showSweep === true && <th scope="col">Sweep</th>}
                <th scope="col" class="num">Cost</th>
              </tr>
            </thead>
            <tbody>
              {ranked.map((r, i) => (
                <tr key={r.runId} data-run={r.runId} data-status={r.status} class={r === bestRow ? 'best-row' : undefined}>
                  <td class="num">{r.best === undefined ? '—' : i + 1}</td>
                  <td class="num">{r.index}</td>
                  <td>{r.name === undefined ? <span class="mono">{r.runId}</span> : <a href={runHref(r.runId)}>{r.name}</a>}</td>
                  <td>
                    <StatusBadge status={r.status} reason={r.reason} />
                    {r === bestRow && <span class="latest"> best</span>}
                  </td>
                  <td class="num">{valueText(r.best)}</td>
                  <td class="num">{valueText(r.final)}</td>
                  {columns.map((c) => (
                    <td class="mono">{r.hyperparameters[c] ?? ''}</td>
                  ))}
                  {showSweep === true && <td class="mono">{r.sweepId === undefined ? '' : <a href={sweepHref(r.sweepId)}>{r.sweepId}</a>}</td>}
                  <td class="num">{usd(r.costUsd)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
    </>
  );
}
