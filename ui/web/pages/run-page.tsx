import { useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, getJson } from '../api';
import { CancelButton } from '../components/cancel-dialog';
import { LogView } from '../components/log-view';
import { MetricChart } from '../components/metric-chart';
import { StatusBadge } from '../components/status-badge';
import { Timeline } from '../components/timeline';
import { bytes, checkpointId, dateTime, duration, time, usd } from '../format';
import { chartData, metricNames, xAxisOf } from '../metrics';
import { useHeadingFocus } from '../focus';
import { usePoll } from '../poll';
import type { OutputFile, OutputList } from '../research-types';
import { experimentHref, sweepHref } from '../router';
import { TERMINAL, type Checkpoint, type CheckpointList, type MetricPoint, type MetricsPage, type Run } from '../types';

/** How often a live run is read: with the ETag an unchanged run costs a 304. */
const RUN_POLL_MS = 1000;
const METRICS_POLL_MS = 1000;
const CHECKPOINTS_POLL_MS = 5000;

/** One run: header and cancel, timeline, metric charts, log, checkpoints, outputs and cost. */
export function RunPage({ runId }: { runId: string }) {
  const [run, setRun] = useState<Run | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [now, setNow] = useState(Date.now());
  const path = `/runs/${encodeURIComponent(runId)}`;
  const live = run === undefined || !TERMINAL.has(run.status);

  usePoll(
    async () => {
      const { data, changed } = await getJson<Run>(path);
      setError(undefined);
      setNow(Date.now());
      if (changed) setRun(data);
      return !TERMINAL.has(data.status);
    },
    RUN_POLL_MS,
    [runId],
    (e) => setError(e instanceof ApiError && e.status === 404 ? `Run ${runId} not found (or not yours).` : e instanceof Error ? e.message : String(e)),
  );

  const metrics = useMetrics(path, live);
  const checkpoints = useCheckpoints(path, live, run?.latestCheckpoint?.uri);
  const outputs = useOutputs(path, live);

  useHeadingFocus(run !== undefined);

  if (run === undefined) {
    return (
      <section>
        <h1 tabIndex={-1}>Run {runId}</h1>
        {error === undefined ? <p>Loading…</p> : <p class="error" role="alert">{error}</p>}
      </section>
    );
  }
  return (
    <article aria-labelledby="run-title" data-status={run.status}>
      <header class="run-head">
        <div>
          <p class="crumbs">
            <a href="#/">Runs</a> / <span class="mono">{run.runId}</span>
          </p>
          <h1 id="run-title" tabIndex={-1}>
            {run.spec.name}
          </h1>
          <p class="status-line">
            <StatusBadge status={run.status} reason={run.statusReason} /> {run.statusReason !== undefined && <span class="reason">{run.statusReason}</span>}
          </p>
        </div>
        {live && <CancelButton run={run} onCancelled={setRun} />}
      </header>
      {error !== undefined && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <Details run={run} now={now} />
      <Timeline run={run} checkpoints={checkpoints} now={now} />
      <Charts points={metrics} />
      <LogView runId={run.runId} live={live} />
      <Checkpoints checkpoints={checkpoints} />
      <Outputs run={run} outputs={outputs} />
    </article>
  );
}

/** Every metric line, read through once and then followed with the resume token. */
function useMetrics(path: string, live: boolean): { points: MetricPoint[]; version: number } {
  const held = useRef<MetricPoint[]>([]);
  const token = useRef<string | undefined>(undefined);
  const [version, setVersion] = useState(0);
  const finished = useRef(false);
  usePoll(
    async () => {
      let added = 0;
      for (;;) {
        const { data } = await getJson<MetricsPage>(`${path}/metrics`, { nextToken: token.current, limit: 5000 });
        held.current.push(...data.metrics);
        added += data.metrics.length;
        token.current = data.nextToken ?? data.resumeToken;
        if (data.nextToken === undefined) break;
      }
      if (added > 0) setVersion((v) => v + 1);
      // After the run ended, one more read picks up the agent's last upload.
      if (!live) {
        if (finished.current) return false;
        finished.current = true;
      }
      return true;
    },
    METRICS_POLL_MS,
    [path, live],
    () => undefined,
  );
  return { points: held.current, version };
}

function useCheckpoints(path: string, live: boolean, latest: string | undefined): Checkpoint[] {
  const [list, setList] = useState<Checkpoint[]>([]);
  usePoll(
    async () => {
      const { data, changed } = await getJson<CheckpointList>(`${path}/checkpoints`);
      if (changed) setList(data.checkpoints);
      return live;
    },
    CHECKPOINTS_POLL_MS,
    [path, live, latest],
    () => undefined,
  );
  return list;
}

/** Outputs are uploaded when the script exits 0: read while the run lives, and once after it ended. */
function useOutputs(path: string, live: boolean): OutputList | undefined {
  const [list, setList] = useState<OutputList | undefined>();
  usePoll(
    async () => {
      const { data, changed } = await getJson<OutputList>(`${path}/outputs`);
      if (changed) setList(data);
      return live;
    },
    CHECKPOINTS_POLL_MS,
    [path, live],
    () => undefined,
  );
  return list;
}

function Charts({ points }: { points: { points: MetricPoint[]; version: number } }) {
  const charts = useMemo(() => {
    const axis = xAxisOf(points.points);
    return metricNames(points.points).map((metric) => ({ metric, axis, data: chartData(points.points, metric, axis) }));
  }, [points.version, points.points]);
  return (
    <section class="charts" aria-labelledby="metrics-title">
      <h2 id="metrics-title">Metrics</h2>
      {charts.length === 0 ? (
        <p class="empty">No metrics yet. The script prints JSON lines such as {'{"step": 10, "loss": 0.5}'}; the agent uploads them as they come.</p>
      ) : (
        <div class="chart-grid">
          {charts.map((c) => (
            <MetricChart key={c.metric} metric={c.metric} axis={c.axis} data={c.data} />
          ))}
        </div>
      )}
    </section>
  );
}

function Details({ run, now }: { run: Run; now: number }) {
  const estimate = run.attempts.reduce((sum, a) => {
    if (a.pricePerHourUsd === undefined || a.instanceId === undefined) return sum;
    const to = a.endedAt === undefined ? now : Date.parse(a.endedAt);
    return sum + (a.pricePerHourUsd * Math.max(0, to - Date.parse(a.startedAt))) / 3_600_000;
  }, 0);
  const cost = Math.max(run.costUsd, estimate);
  const hyper = Object.entries(run.spec.hyperparameters ?? {});
  const tags = Object.entries(run.spec.tags ?? {});
  return (
    <section class="details" aria-label="Run details">
      <dl>
        <div>
          <dt>Cost so far</dt>
          <dd data-cost={cost.toFixed(6)}>
            {usd(cost)}
            {run.spec.limits?.maxCostUsd !== undefined && ` of ${usd(run.spec.limits.maxCostUsd)} allowed`}
          </dd>
        </div>
        <div>
          <dt>Created</dt>
          <dd>{dateTime(run.createdAt)}</dd>
        </div>
        <div>
          <dt>Running for</dt>
          <dd>{duration((TERMINAL.has(run.status) ? Date.parse(run.updatedAt) : now) - Date.parse(run.createdAt))}</dd>
        </div>
        <div>
          <dt>Attempts</dt>
          <dd>
            {run.attempts.length} · {run.interruptions ?? 0} interruption(s)
          </dd>
        </div>
        <div>
          <dt>Experiment</dt>
          <dd>
            <a href={experimentHref(run.spec.experiment ?? run.spec.name)}>{run.spec.experiment ?? run.spec.name}</a>
          </dd>
        </div>
        {run.sweep !== undefined && (
          <div>
            <dt>Sweep</dt>
            <dd>
              <a href={sweepHref(run.sweep.sweepId)}>{run.sweep.sweepId}</a>, trial {run.sweep.trial}
            </dd>
          </div>
        )}
        {hyper.length > 0 && (
          <div>
            <dt>Hyperparameters</dt>
            <dd class="mono">{hyper.map(([k, v]) => `${k}=${String(v)}`).join(' ')}</dd>
          </div>
        )}
        {tags.length > 0 && (
          <div>
            <dt>Tags</dt>
            <dd>
              <ul class="tags">
                {tags.map(([k, v]) => (
                  <li>
                    <span class="tag-key">{k}</span> {v}
                  </li>
                ))}
              </ul>
            </dd>
          </div>
        )}
      </dl>
      {run.attempts.some((a) => a.pricePerHourUsd !== undefined) && (
        <table class="cost">
          <caption>Cost by attempt</caption>
          <thead>
            <tr>
              <th scope="col">Attempt</th>
              <th scope="col">Instance</th>
              <th scope="col" class="num">Price / h</th>
              <th scope="col" class="num">Billed for</th>
              <th scope="col" class="num">Cost</th>
            </tr>
          </thead>
          <tbody>
            {run.attempts.map((a) => {
              const ms = a.instanceId === undefined ? 0 : Math.max(0, (a.endedAt === undefined ? now : Date.parse(a.endedAt)) - Date.parse(a.startedAt));
              return (
                <tr>
                  <td>{a.attempt}</td>
                  <td>
                    {a.instanceType ?? '—'} {a.spot ? 'spot' : 'on-demand'}
                  </td>
                  <td class="num">{a.pricePerHourUsd === undefined ? '—' : usd(a.pricePerHourUsd)}</td>
                  <td class="num">{duration(ms)}</td>
                  <td class="num">{a.pricePerHourUsd === undefined ? '—' : usd((a.pricePerHourUsd * ms) / 3_600_000)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Checkpoints({ checkpoints }: { checkpoints: Checkpoint[] }) {
  return (
    <section aria-labelledby="checkpoints-title">
      <h2 id="checkpoints-title">Checkpoints</h2>
      {checkpoints.length === 0 ? (
        <p class="empty">No complete checkpoint yet.</p>
      ) : (
        <table class="checkpoints">
          <thead>
            <tr>
              <th scope="col">Checkpoint</th>
              <th scope="col" class="num">Attempt</th>
              <th scope="col" class="num">Epoch / step</th>
              <th scope="col">Written</th>
              <th scope="col" class="num">Size</th>
              <th scope="col">Location</th>
            </tr>
          </thead>
          <tbody>
            {checkpoints.map((c) => (
              <tr data-checkpoint={c.id}>
                <td class="mono">
                  {c.id ?? checkpointId(c.uri)}
                  {c.latest === true && <span class="latest"> latest</span>}
                </td>
                <td class="num">{c.attempt}</td>
                <td class="num">{c.epoch ?? c.step ?? '—'}</td>
                <td>{time(c.createdAt)}</td>
                <td class="num">{bytes(c.bytes)}</td>
                <td class="mono uri">{c.uri}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Outputs({ run, outputs }: { run: Run; outputs: OutputList | undefined }) {
  const files: OutputFile[] = outputs?.outputs ?? [];
  const total = files.reduce((sum, f) => sum + f.size, 0);
  return (
    <section aria-labelledby="outputs-title">
      <h2 id="outputs-title">Outputs</h2>
      {files.length === 0 ? (
        <p class="empty">{TERMINAL.has(run.status) ? 'This run wrote no outputs.' : 'Outputs are uploaded when the script exits 0 (whatever it wrote to RUNCTL_OUTPUT_DIR).'}</p>
      ) : (
        <table class="outputs" data-files={files.length}>
          <caption>
            {files.length}
            {outputs?.nextToken === undefined ? '' : ' (the first)'} file{files.length === 1 ? '' : 's'}, {bytes(total)}
            {outputs?.manifest !== undefined && ` · manifest of attempt ${outputs.manifest.attempt}`}
          </caption>
          <thead>
            <tr>
              <th scope="col">File</th>
              <th scope="col" class="num">Size</th>
              <th scope="col">Written</th>
            </tr>
          </thead>
          <tbody>
            {files.map((f) => (
              <tr>
                <td class="mono">{f.path}</td>
                <td class="num" data-size={f.size}>
                  {bytes(f.size)}
                </td>
                <td>{dateTime(f.lastModified)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {outputs?.manifest !== undefined && (
        <p>
          Manifest: <span class="mono uri">{outputs.manifest.manifestUri}</span>
        </p>
      )}
    </section>
  );
}
