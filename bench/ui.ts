import { buildAssets } from '../ui/server/assets';
import { startUiServer, type UiApi } from '../ui/server/ui-server';
import { launchChromium } from '../test/ui/browser';

/**
 * The dashboard in Debian's chromium, over a synthetic API (the figures measure the page, not
 * the backend): first render of 1,000 runs and of one run with 10,000 metric points (time from
 * navigation, JS heap after a forced GC, DOM nodes), and how long a metric line the API starts
 * answering takes to reach the chart.
 */

export interface UiFigures {
  runsList: PageFigures;
  runPage: PageFigures;
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

function syntheticApi(): UiApi & { appendPoint(): void } {
  const t0 = Date.parse('2026-11-01T00:00:00Z');
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

export async function measureUi(): Promise<UiFigures> {
  const api = syntheticApi();
  const ui = await startUiServer({ api, assets: await buildAssets(), port: 0, local: true });
  const browser = await launchChromium();
  try {
    const measure = async (hash: string, ready: (count: number) => boolean, count: number): Promise<PageFigures> => {
      const page = await browser.context.newPage();
      page.setDefaultTimeout(120_000);
      const cdp = await browser.context.newCDPSession(page);
      await page.goto(`${ui.url}${hash}`);
      await page.waitForFunction(ready, count, { polling: 'raf' });
      const renderMs = await page.evaluate(() => performance.now());
      await cdp.send('HeapProfiler.collectGarbage');
      const heap = await cdp.send('Runtime.getHeapUsage');
      await cdp.send('Performance.enable');
      const metrics = await cdp.send('Performance.getMetrics');
      const domNodes = metrics.metrics.find((m) => m.name === 'Nodes')?.value ?? 0;
      await page.close();
      return { renderMs, heapMiB: heap.usedSize / 1024 / 1024, domNodes };
    };
    const runsList = await measure('#/', rowsShown, RUNS);
    const runPage = await measure('#/runs/r-bench', pointsCharted, POINTS);

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
    return { runsList, runPage, liveMs };
  } finally {
    await browser.close();
    await ui.close();
  }
}
