import { useState } from 'preact/hooks';
import { getAllPages, problem } from '../api';
import { dateTime } from '../format';
import { usePoll } from '../poll';
import type { Model, ModelsPage as Page } from '../research-types';
import { modelHref } from '../router';

const POLL_MS = 5000;

/** The caller's registered models: latest version and which version each stage holds. */
export function ModelsPage() {
  const [models, setModels] = useState<Model[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  usePoll(
    async () => {
      const { items, changed } = await getAllPages<Page, Model>('/models', (p) => p.models, { limit: 100, max: 1000 });
      setError(undefined);
      if (changed || models === undefined) setModels(items);
    },
    POLL_MS,
    [],
    (e) => setError(problem(e, 'The API does not list models.')),
  );
  return (
    <section aria-labelledby="models-title">
      <h1 id="models-title" tabIndex={-1}>
        Models
      </h1>
      <p class="lead">
        A model version is a run's outputs, stored by content with the run's lineage (<code>runctl models register RUN --name NAME</code>); a stage such as production points at one version.
      </p>
      {error !== undefined && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <p class="count" role="status" aria-live="polite">
        {models === undefined ? 'loading…' : `${models.length} model${models.length === 1 ? '' : 's'}`}
      </p>
      {models !== undefined && models.length === 0 && <p class="empty">No models yet.</p>}
      {models !== undefined && models.length > 0 && (
        <table class="models">
          <caption class="visually-hidden">Models, by name</caption>
          <thead>
            <tr>
              <th scope="col">Model</th>
              <th scope="col" class="num">Latest version</th>
              <th scope="col">Stages</th>
              <th scope="col">Updated</th>
            </tr>
          </thead>
          <tbody>
            {models.map((m) => (
              <tr key={m.name} data-model={m.name}>
                <td>
                  <a href={modelHref(m.name)}>{m.name}</a>
                </td>
                <td class="num">{m.latestVersion}</td>
                <td>
                  <StageList stages={m.stages} />
                </td>
                <td>{dateTime(m.updatedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** `production → 3 · staging → 4`. */
export function StageList({ stages }: { stages: Record<string, number> }) {
  const entries = Object.entries(stages).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) return <span class="empty">none</span>;
  return (
    <ul class="stages">
      {entries.map(([stage, version]) => (
        <li data-stage={stage}>
          <span class="stage">{stage}</span> → {version}
        </li>
      ))}
    </ul>
  );
}
