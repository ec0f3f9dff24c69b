import type { Objective } from '../research-types';

/** Which metric ranks the runs, and which way: the sweep's objective by default. */
export function ObjectivePicker({ metrics, objective, onChange, sweepObjective }: { metrics: readonly string[]; objective: Objective; onChange: (o: Objective) => void; sweepObjective?: Objective }) {
  const names = metrics.includes(objective.metric) ? metrics : [objective.metric, ...metrics];
  return (
    <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Objective">
      <label>
        Rank by metric
        <select value={objective.metric} onChange={(e) => onChange({ ...objective, metric: e.currentTarget.value })}>
          {names.map((m) => (
            <option value={m}>{m}</option>
          ))}
        </select>
      </label>
      <label>
        Goal
        <select value={objective.goal} onChange={(e) => onChange({ ...objective, goal: e.currentTarget.value === 'maximize' ? 'maximize' : 'minimize' })}>
          <option value="minimize">minimize (lower is better)</option>
          <option value="maximize">maximize (higher is better)</option>
        </select>
      </label>
      {sweepObjective !== undefined && (
        <span class="count">
          the sweep's objective: {sweepObjective.goal} {sweepObjective.metric}
        </span>
      )}
    </form>
  );
}
