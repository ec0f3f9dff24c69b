import { useState } from 'preact/hooks';
import { getJson, problem } from '../api';
import { bytes, dateTime } from '../format';
import { useHeadingFocus } from '../focus';
import { usePoll } from '../poll';
import type { ModelDetail, ModelVersion } from '../research-types';
import { runHref } from '../router';
import { valueText } from '../trials';
import { StageList } from './models-page';

const POLL_MS = 5000;

/** One model: its stages, every version with its files and lineage (linking to the run that made it), and the stage history. */
export function ModelPage({ name }: { name: string }) {
  const [detail, setDetail] = useState<ModelDetail | undefined>();
  const [error, setError] = useState<string | undefined>();
  usePoll(
    async () => {
      const { data, changed } = await getJson<ModelDetail>(`/models/${encodeURIComponent(name)}`);
      setError(undefined);
      if (changed || detail === undefined) setDetail(data);
    },
    POLL_MS,
    [name],
    (e) => setError(problem(e, `Model ${name} not found (or not yours).`)),
  );
  useHeadingFocus(detail !== undefined);

  if (detail === undefined) {
    return (
      <section>
        <h1 tabIndex={-1}>Model {name}</h1>
        {error === undefined ? <p>Loading…</p> : <p class="error" role="alert">{error}</p>}
      </section>
    );
  }
  const { model, history } = detail;
  const versions = [...detail.versions].sort((a, b) => b.version - a.version);
  const stagesOf = (version: number) => Object.entries(model.stages).filter(([, v]) => v === version).map(([s]) => s).sort();
  return (
    <article aria-labelledby="model-title" data-model={model.name}>
      <p class="crumbs">
        <a href="#/models">Models</a> / <span>{model.name}</span>
      </p>
      <h1 id="model-title" tabIndex={-1}>
        {model.name}
      </h1>
      {error !== undefined && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <section class="details" aria-label="Model details">
        <dl>
          <div>
            <dt>Stages</dt>
            <dd>
              <StageList stages={model.stages} />
            </dd>
          </div>
          <div>
            <dt>Latest version</dt>
            <dd>{model.latestVersion}</dd>
          </div>
          <div>
            <dt>Created</dt>
            <dd>{dateTime(model.createdAt)}</dd>
          </div>
        </dl>
      </section>
      <section aria-labelledby="versions-title">
        <h2 id="versions-title">Versions</h2>
        <div class="table-scroll">
          <table class="versions">
            <caption class="visually-hidden">Versions, newest first</caption>
            <thead>
              <tr>
                <th scope="col" class="num">Version</th>
                <th scope="col">Stages</th>
                <th scope="col">Registered</th>
                <th scope="col">From run</th>
                <th scope="col" class="num">Files</th>
                <th scope="col">Final metrics</th>
                <th scope="col">Hyperparameters</th>
              </tr>
            </thead>
            <tbody>
              {versions.map((v) => (
                <tr key={v.version} data-version={v.version}>
                  <td class="num">{v.version}</td>
                  <td>{stagesOf(v.version).join(', ') || '—'}</td>
                  <td>{dateTime(v.createdAt)}</td>
                  <td>
                    <a href={runHref(v.lineage.runId)} class="mono">
                      {v.lineage.runId}
                    </a>
                  </td>
                  <td class="num">
                    {v.files.length} · {bytes(v.files.reduce((sum, f) => sum + f.size, 0))}
                  </td>
                  <td class="mono">
                    {Object.entries(v.lineage.finalMetrics)
                      .sort(([a], [b]) => a.localeCompare(b))
                      .map(([k, x]) => `${k}=${valueText(x)}`)
                      .join(' ') || '—'}
                  </td>
                  <td class="mono">
                    {Object.entries(v.lineage.hyperparameters)
                      .map(([k, x]) => `${k}=${x}`)
                      .join(' ') || '—'}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {versions.map((v) => (
          <Lineage version={v} />
        ))}
      </section>
      <section aria-labelledby="history-title">
        <h2 id="history-title">Stage history</h2>
        {history.length === 0 ? (
          <p class="empty">No version has been promoted yet: <code>runctl models promote {model.name} VERSION --stage production</code>.</p>
        ) : (
          <table class="history">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Stage</th>
                <th scope="col" class="num">Version</th>
                <th scope="col" class="num">Before</th>
              </tr>
            </thead>
            <tbody>
              {[...history]
                .sort((a, b) => b.at.localeCompare(a.at))
                .map((h) => (
                  <tr data-stage={h.stage}>
                    <td>{dateTime(h.at)}</td>
                    <td>{h.stage}</td>
                    <td class="num">{h.version}</td>
                    <td class="num">{h.previous ?? '—'}</td>
                  </tr>
                ))}
            </tbody>
          </table>
        )}
      </section>
    </article>
  );
}

/** A version's lineage and files, folded: a native <details>, so it opens from the keyboard. */
function Lineage({ version }: { version: ModelVersion }) {
  const l = version.lineage;
  return (
    <details class="lineage" data-version={version.version}>
      <summary>
        Version {version.version}: lineage and files
      </summary>
      <dl>
        <div>
          <dt>Run</dt>
          <dd>
            <a href={runHref(l.runId)} class="mono">
              {l.runId}
            </a>
          </dd>
        </div>
        <div>
          <dt>Code bundle (sha256)</dt>
          <dd class="mono uri">{l.bundleDigest ?? '—'}</dd>
        </div>
        <div>
          <dt>Image</dt>
          <dd class="mono uri">{l.imageDigest ?? '—'}</dd>
        </div>
        <div>
          <dt>Data</dt>
          <dd class="mono uri">{l.dataSources.length === 0 ? '—' : l.dataSources.map((d) => `${d.source} → ${d.target}`).join('; ')}</dd>
        </div>
      </dl>
      <table class="files">
        <caption>Files of version {version.version}</caption>
        <thead>
          <tr>
            <th scope="col">Path</th>
            <th scope="col" class="num">Size</th>
            <th scope="col">sha256</th>
          </tr>
        </thead>
        <tbody>
          {version.files.map((f) => (
            <tr>
              <td class="mono">{f.path}</td>
              <td class="num">{bytes(f.size)}</td>
              <td class="mono uri">{f.sha256}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </details>
  );
}
