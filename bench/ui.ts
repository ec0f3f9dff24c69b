import type { Page } from 'playwright-core';
import { buildAssets } from '../ui/server/assets';
import type { ExperimentRun, Trial } from '../ui/web/research-types';
import { startUiServer, type UiApi } from '../ui/server/ui-server';
import { launchChromium } from '../test/ui/browser';

/**
 * The dashboard in Debian's chromium, over a synthetic API (the figures measure the page, not
 * the backend): first render of 1,000 runs, of one run with 10,000 metric points, of an
 * experiment with 1,000 runs and of a sweep with 200 trials (time from navigation, JS heap after
 * a forced GC, DOM nodes), and how long a metric line the API starts answering takes to reach
 * the chart.
 */

export interface UiFigures {
  runsList: PageFigures;
  runPage: PageFigures;
  experimentPage: PageFigures;
  sweepPage: PageFigures;
  /** Milliseconds from a metric line appearing in the API to the chart holding it. */
  liveMs: number[];
}

export interface PageFigures {
  renderMs: number;
  heapMiB: number;
  domNodes: number;
}

const RUNS = 1000;
const POINTS = 10_000;
const RESUME_AT = 6000;
const STATUSES = ['SUCCEEDED', 'TRAINING', 'FAILED_USER', 'CANCELLED', 'RECOVERING'];
/** Runs of the benched experiment, of which the sweep's launched trials are some. */
export const EXPERIMENT_RUNS = 1000;
export const SWEEP_TRIALS = 200;
const EXPERIMENT = 'bench-experiment';
const SWEEP_ID = 'sw-00000000000bench';
const T0 = Date.parse('2026-11-01T00:00:00Z');

/** A trial's fate, by number: skipped by the budget, stopped early, failed, still training, or succeeded. */
function trialFate(trial: number): 'SKIPPED' | 'STOPPED_EARLY' | 'FAILED_USER' | 'TRAINING' | 'SUCCEEDED' {
  if (trial % 20 === 0) return 'SKIPPED';
  if (trial > SWEEP_TRIALS - 8) return 'TRAINING';
  if (trial % 13 === 0) return 'FAILED_USER';
  if (trial % 7 === 0) return 'STOPPED_EARLY';
  return 'SUCCEEDED';
}

/**
 * An experiment of `EXPERIMENT_RUNS` runs, the first of them the launched trials of one sweep of
 * `SWEEP_TRIALS` (skipped trials have no run), with three hyperparameters — a log-uniform `lr`,
 * a 4-way `batch_size`, a 3-way `optimizer` — and `loss`/`accuracy` summaries; failed runs report
 * nothing. Deterministic, so every bench run draws the same page.
 */
export function syntheticExperiment(): { runs: ExperimentRun[]; trials: Trial[]; sweep: Record<string, unknown> } {
  const hyperparameters = (i: number) => ({
    lr: (1e-4 * 10 ** (3 * ((i * 0.618_034) % 1))).toPrecision(3),
    batch_size: String([32, 64, 128, 256][i % 4]),
    optimizer: ['sgd', 'adam', 'adamw'][i % 3] ?? 'sgd',
  });
  const summary = (i: number, status: string) => {
    if (status === 'FAILED_USER') return undefined;
    const loss = 0.05 + Math.abs(Math.sin(i * 1.7)) * 0.9 + (status === 'STOPPED_EARLY' ? 0.5 : 0);
    const points = status === 'SUCCEEDED' ? 500 : 120;
    return { final: { loss: loss + 0.01, accuracy: 1 - loss / 2 }, min: { loss, accuracy: 0.5 }, max: { loss: 2.3, accuracy: 1 - loss / 2 }, points };
  };
  const runs: ExperimentRun[] = [];
  const trials: Trial[] = [];
  for (let trial = 1; trial <= SWEEP_TRIALS; trial += 1) {
    const fate = trialFate(trial);
    const runId = `r-bt${String(trial).padStart(14, '0')}`;
    const hp = hyperparameters(trial);
    if (fate === 'SKIPPED') {
      trials.push({ sweepId: SWEEP_ID, trial, runId, state: 'SKIPPED', hyperparameters: hp, reservedUsd: 0, reason: 'the sweep budget ($100.00) is committed' });
      continue;
    }
    const metrics = summary(trial, fate);
    runs.push({
      runId,
      name: `bench-sweep-${trial}`,
      status: fate,
      ...(fate === 'STOPPED_EARLY' ? { statusReason: 'Stopped early by the median rule: loss 1.2 at step 120 is worse than the median 0.6 of 40 trials' } : {}),
      createdAt: new Date(T0 + trial * 60_000).toISOString(),
      costUsd: 0.25 + (trial % 5) * 0.1,
      hyperparameters: hp,
      ...(metrics === undefined ? {} : { metrics }),
      sweep: { sweepId: SWEEP_ID, trial },
    });
    const recorded = fate !== 'TRAINING';
    trials.push({
      sweepId: SWEEP_ID, trial, runId, state: recorded ? 'RECORDED' : 'LAUNCHED', hyperparameters: hp, reservedUsd: 1,
      ...(recorded ? { costUsd: 0.25 + (trial % 5) * 0.1, runStatus: fate, ...(metrics === undefined ? {} : { best: metrics.min.loss }) } : {}),
    });
  }
  for (let i = runs.length; i < EXPERIMENT_RUNS; i += 1) {
    const status = STATUSES[i % STATUSES.length] ?? 'SUCCEEDED';
    const metrics = summary(i, status);
    runs.push({
      runId: `r-be${String(i).padStart(14, '0')}`,
      name: `bench-run-${i}`,
      status,
      createdAt: new Date(T0 + (SWEEP_TRIALS + i) * 60_000).toISOString(),
      costUsd: i * 0.0123,
      hyperparameters: hyperparameters(i),
      ...(metrics === undefined ? {} : { metrics }),
    });
  }
  const launched = trials.filter((t) => t.state !== 'SKIPPED').length;
  const sweep = {
    sweepId: SWEEP_ID,
    experiment: EXPERIMENT,
    status: 'RUNNING',
    spec: {
      name: 'bench-sweep',
      objective: { metric: 'loss', goal: 'minimize' },
      maxParallel: 8,
      maxTrials: SWEEP_TRIALS,
      maxCostUsd: 100,
      search: { random: { lr: 'loguniform(1e-4,1e-1)', batch_size: 'choice(32,64,128,256)', optimizer: 'choice(sgd,adam,adamw)' }, trials: SWEEP_TRIALS, seed: 7 },
      earlyStopping: { rule: 'median', stepKey: 'step', minSteps: 100, minTrials: 5 },
    },
    trials: SWEEP_TRIALS,
    launched,
    finished: trials.filter((t) => t.state === 'RECORDED').length,
    skipped: SWEEP_TRIALS - launched,
    committedUsd: launched,
    costUsd: runs.slice(0, launched).reduce((sum, r) => sum + r.costUsd, 0),
    createdAt: new Date(T0).toISOString(),
    updatedAt: new Date(T0 + SWEEP_TRIALS * 60_000).toISOString(),
  };
  return { runs, trials, sweep };
}

/** What the experiment and sweep pages must show before they count as rendered: every row, every objective point. */
export function expectedTrialViews(data: ReturnType<typeof syntheticExperiment>): { experiment: TrialsReady; sweep: TrialsReady } {
  const scored = (r: ExperimentRun) => r.metrics?.min.loss !== undefined;
  return {
    experiment: { rows: data.runs.length, points: data.runs.filter(scored).length, sweeps: 1 },
    sweep: { rows: data.trials.length, points: data.trials.filter((t) => t.best !== undefined || data.runs.some((r) => r.runId === t.runId && scored(r))).length, sweeps: 0 },
  };
}

interface TrialsReady {
  rows: number;
  points: number;
  /** Sweeps the experiment page lists (it reads them after the runs). */
  sweeps: number;
}

/** One page of a list: items from the offset in `nextToken`, `limit` of them (tokens are offsets here). */
function page<T>(items: readonly T[], query: Record<string, string | undefined>, fallback: number): { items: T[]; nextToken?: string } {
  const from = Number(query.nextToken ?? 0);
  const limit = Number(query.limit ?? fallback);
  const next = from + limit;
  return { items: items.slice(from, next), ...(next < items.length ? { nextToken: String(next) } : {}) };
}

function syntheticApi(): UiApi & { appendPoint(): void } {
  const t0 = T0;
  const experiment = syntheticExperiment();
  const runs = Array.from({ length: RUNS }, (_, i) => ({
    runId: `r-${String(i).padStart(16, '0')}`,
    name: `sweep-trial-${i}`,
    owner: 'arn:aws:iam::000000000000:user/bench',
    status: STATUSES[i % STATUSES.length],
    createdAt: new Date(t0 - i * 60_000).toISOString(),
    updatedAt: new Date(t0 - i * 60_000 + 30_000).toISOString(),
    costUsd: i * 0.0123,
    attempts: 1 + (i % 3),
  }));
  const metrics: string[] = [];
  for (let step = 1; step <= POINTS; step += 1) {
    const attempt = step <= RESUME_AT ? 1 : 2;
    metrics.push(JSON.stringify({ ts: new Date(t0 + step * 1000).toISOString(), attempt, step, loss: 2 * Math.exp(-step / 3000) + 0.05 * Math.sin(step / 50), accuracy: 1 - Math.exp(-step / 2500) }));
  }
  const run = {
    runId: 'r-bench',
    owner: 'arn:aws:iam::000000000000:user/bench',
    status: 'TRAINING',
    createdAt: new Date(t0).toISOString(),
    updatedAt: new Date(t0 + POINTS * 1000).toISOString(),
    costUsd: 1.23,
    spec: { name: 'bench-10k', hyperparameters: { epochs: 100 }, tags: {} },
    attempts: [
      { attempt: 1, instanceId: 'i-1', instanceType: 'g5.xlarge', spot: true, pricePerHourUsd: 0.4, startedAt: new Date(t0).toISOString(), endedAt: new Date(t0 + RESUME_AT * 1000).toISOString(), endReason: 'SPOT_INTERRUPTED' },
      { attempt: 2, instanceId: 'i-2', instanceType: 'g5.xlarge', spot: true, pricePerHourUsd: 0.4, startedAt: new Date(t0 + RESUME_AT * 1000 + 60_000).toISOString(), resumeFrom: 's3://b/runs/r-bench/checkpoints/0001-000060/' },
    ],
    phases: [
      { status: 'PROVISIONING', at: new Date(t0 + 1000).toISOString() },
      { status: 'TRAINING', at: new Date(t0 + 60_000).toISOString() },
    ],
  };
  const json = (body: unknown) => ({ status: 200, text: JSON.stringify(body) });
  return {
    endpoint: 'http://bench.invalid',
    appendPoint() {
      const step = metrics.length + 1;
      metrics.push(JSON.stringify({ attempt: 2, step, loss: 0.05, accuracy: 0.99 }));
    },
    async send(method, path, options) {
      const query = options?.query ?? {};
      if (path === '/runs') {
        const from = Number(query.nextToken ?? 0);
        const limit = Number(query.limit ?? 25);
        const page = runs.slice(from, from + limit);
        return json({ runs: page, nextToken: from + limit < runs.length ? String(from + limit) : undefined });
      }
      if (path === '/runs/r-bench') return json(run);
      if (path === '/runs/r-bench/metrics') {
        // Tokens are line numbers here; the real API's are byte offsets.
        const from = Number(query.nextToken ?? 0);
        const limit = Number(query.limit ?? 1000);
        const lines = metrics.slice(from, from + limit).map((l) => JSON.parse(l) as unknown);
        const next = from + lines.length;
        return json({ runId: 'r-bench', metrics: lines, nextToken: next < metrics.length ? String(next) : undefined, resumeToken: String(next) });
      }
      if (path === '/runs/r-bench/logs') return json({ runId: 'r-bench', attempt: 2, attempts: [1, 2], offset: 0, nextOffset: 10, size: 10, text: 'step 10000\n' });
      if (path === '/runs/r-bench/checkpoints') return json({ runId: 'r-bench', checkpoints: [] });
      if (path === `/experiments/${EXPERIMENT}/runs`) {
        const { items, nextToken } = page(experiment.runs, query, 100);
        const about = { name: EXPERIMENT, createdAt: new Date(t0).toISOString(), updatedAt: new Date(t0 + EXPERIMENT_RUNS * 60_000).toISOString(), runs: EXPERIMENT_RUNS };
        return json({ experiment: about, runs: items, nextToken });
      }
      if (path === `/sweeps/${SWEEP_ID}`) {
        const { items, nextToken } = page(experiment.trials, query, 100);
        return json({ sweep: experiment.sweep, trials: items, nextToken });
      }
      return { status: 404, text: JSON.stringify({ message: `no ${method} ${path} in the bench API` }) };
    },
  };
}

/** The page's document, typed as far as these predicates use it (the bench has no DOM types). */
interface PageDocument {
  querySelector(selector: string): { getAttribute(name: string): string | null } | null;
  querySelectorAll(selector: string): { length: number };
}

/** Predicates run in the page as functions: its CSP allows no string evaluation. */
const rowsShown = (count: number) => (globalThis as unknown as { document: PageDocument }).document.querySelectorAll('tbody tr').length === count;
const pointsCharted = (count: number) =>
  (globalThis as unknown as { document: PageDocument }).document.querySelector('figure.chart[data-metric="loss"]')?.getAttribute('data-points') === String(count);
/** Every trial row, the objective's points and the listed sweeps are on the page. */
const trialsShown = (ready: TrialsReady) => {
  const document = (globalThis as unknown as { document: PageDocument }).document;
  return (
    document.querySelectorAll('table.trials tbody tr').length === ready.rows &&
    document.querySelector('figure[data-chart="objective"]')?.getAttribute('data-points') === String(ready.points) &&
    document.querySelectorAll('li[data-sweep]').length === ready.sweeps
  );
};

export async function measureUi(): Promise<UiFigures> {
  const api = syntheticApi();
  const ready = expectedTrialViews(syntheticExperiment());
  const ui = await startUiServer({ api, assets: await buildAssets(), port: 0, local: true });
  const browser = await launchChromium();
  try {
    const measure = async (hash: string, rendered: (page: Page) => Promise<unknown>): Promise<PageFigures> => {
      const page = await browser.context.newPage();
      page.setDefaultTimeout(120_000);
      const cdp = await browser.context.newCDPSession(page);
      await page.goto(`${ui.url}${hash}`);
      await rendered(page);
      const renderMs = await page.evaluate(() => performance.now());
      await cdp.send('HeapProfiler.collectGarbage');
      const heap = await cdp.send('Runtime.getHeapUsage');
      await cdp.send('Performance.enable');
      const metrics = await cdp.send('Performance.getMetrics');
      const domNodes = metrics.metrics.find((m) => m.name === 'Nodes')?.value ?? 0;
      await page.close();
      return { renderMs, heapMiB: heap.usedSize / 1024 / 1024, domNodes };
    };
    const runsList = await measure('#/', (page) => page.waitForFunction(rowsShown, RUNS, { polling: 'raf' }));
    const runPage = await measure('#/runs/r-bench', (page) => page.waitForFunction(pointsCharted, POINTS, { polling: 'raf' }));
    const experimentPage = await measure(`#/experiments/${EXPERIMENT}`, (page) => page.waitForFunction(trialsShown, ready.experiment, { polling: 'raf' }));
    const sweepPage = await measure(`#/sweeps/${SWEEP_ID}`, (page) => page.waitForFunction(trialsShown, ready.sweep, { polling: 'raf' }));

    const page = await browser.context.newPage();
    await page.goto(`${ui.url}#/runs/r-bench`);
    await page.waitForFunction(pointsCharted, POINTS, { timeout: 120_000 });
    const liveMs: number[] = [];
    for (let i = 1; i <= 5; i += 1) {
      await new Promise((r) => setTimeout(r, 300 + i * 170)); // land at different points of the poll cycle
      const started = Date.now();
      api.appendPoint();
      await page.waitForFunction(pointsCharted, POINTS + i, { polling: 'raf', timeout: 30_000 });
      liveMs.push(Date.now() - started);
    }
    await page.close();
    return { runsList, runPage, experimentPage, sweepPage, liveMs };
  } finally {
    await browser.close();
    await ui.close();
  }
}
