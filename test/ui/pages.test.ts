import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../cli/api-client';
import { resolveConfig } from '../../cli/config';
import { startDev, type RunningDev } from '../../local/dev';
import { buildAssets } from '../../ui/server/assets';
import { startUiServer, type RunningUi, type UiApi } from '../../ui/server/ui-server';
import { launchChromium, SCREENSHOTS, type Browser } from './browser';
import { HOSTILE_FILE, HOSTILE_VALUE, seedResearch, type Seeded } from './seed';

/**
 * The experiments, sweep and model pages, and a run's outputs, in chromium against `runctl dev`
 * holding seeded records (test/ui/seed.ts): no training runs, so each test takes seconds.
 */
describe('runctl ui: experiments, sweeps, models and outputs in chromium', () => {
  let root: string;
  let dev: RunningDev;
  let ui: RunningUi;
  let browser: Browser;
  let seeded: Seeded;
  const forwarded: string[] = [];

  async function open(path: string, colorScheme: 'light' | 'dark' = 'light'): Promise<Page> {
    const page = await browser.context.newPage();
    page.setDefaultTimeout(15_000);
    await page.emulateMedia({ colorScheme });
    await page.goto(`${ui.url}${path}`);
    return page;
  }

  /** The id of the focused element, else its text (evaluated in the page, which has a DOM). */
  const focused = (page: Page) => page.evaluate<string | undefined>('document.activeElement?.id || document.activeElement?.textContent || undefined');

  /**
   * The focus reaches `expected` (an id, else a text): a page moves it once it has rendered, so
   * this waits for it, up to the page's timeout, and then names where the focus is instead.
   */
  async function expectFocus(page: Page, expected: string): Promise<void> {
    const where = 'document.activeElement?.id || document.activeElement?.textContent || undefined';
    await page.waitForFunction(`(${where}) === ${JSON.stringify(expected)}`, undefined, { timeout: 5_000 }).catch(() => undefined);
    expect(await focused(page)).toBe(expected);
  }

  /** Nothing the records hold ran as script or became an element. */
  async function expectInert(page: Page): Promise<void> {
    expect(await page.locator('main img, main script').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as { __xss?: string }).__xss)).toBeUndefined();
  }

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'runctl-ui-pages-'));
    dev = await startDev({ port: 0, root, print: () => undefined });
    const client = new ApiClient(resolveConfig({ endpoint: dev.url }, { RUNCTL_CONFIG: join(root, 'no-config.json') }));
    seeded = await seedResearch(dev, client);
    const api: UiApi = {
      endpoint: client.endpoint,
      send: (method, path, options) => {
        forwarded.push(`${method} ${path}`);
        return client.send(method, path, options);
      },
    };
    ui = await startUiServer({ api, assets: await buildAssets(), port: 0, local: true });
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await ui?.close();
    await dev?.close();
    await rm(root, { recursive: true, force: true });
  }, 60_000);

  it('lists experiments and ranks an experiment\'s runs by the chosen objective, markup in values shown as text', async () => {
    const page = await open('#/experiments');
    const rows = page.locator('table.experiments tbody tr');
    await rows.first().waitFor();
    expect(await rows.locator('td:first-child').allTextContents()).toEqual(['ddp-rings', 'lr-search', 'mnist-train', 'optimizers']);
    expect(await page.locator('tr[data-experiment="optimizers"] td.num').textContent()).toBe('3');
    await page.screenshot({ path: join(SCREENSHOTS, 'experiments.png'), fullPage: true });

    await page.getByRole('link', { name: 'optimizers', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'optimizers', exact: true }).waitFor();
    // Focus moves to the new page's heading.
    await expectFocus(page, 'experiment-title');
    const [adam, hostile, sgd] = seeded.compare.runs;
    const order = () => page.locator('table.trials tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-run')));
    // No sweep: loss, minimised, by default.
    await expect.poll(order).toEqual([sgd, adam, hostile]);
    expect(await page.locator('table.trials caption').textContent()).toContain('Sorted by lowest loss, best first');

    // Keyboard: the metric and goal pickers are labelled selects.
    await page.getByLabel('Rank by metric').focus();
    await page.getByLabel('Rank by metric').selectOption('acc');
    await page.getByLabel('Goal').selectOption('maximize');
    await expect.poll(order).toEqual([sgd, adam, hostile]);
    await page.getByLabel('Goal').selectOption('minimize');
    await expect.poll(order).toEqual([hostile, adam, sgd]);
    expect(await page.locator('table.trials caption').textContent()).toContain('Sorted by lowest acc');

    const objective = page.locator('figure[data-chart="objective"]');
    expect(await objective.getAttribute('data-points')).toBe('3');
    expect(await objective.locator('svg').getAttribute('aria-label')).toContain('acc by run: 3 point(s)');
    const optimizer = page.locator('figure[data-hyperparameter="optimizer"]');
    expect(await optimizer.getAttribute('data-points')).toBe('3');
    // Three values of lr: categories, in numeric order.
    const lr = page.locator('figure[data-hyperparameter="lr"]');
    expect(await lr.locator('text.axis-label').first().textContent()).toBe('lr');
    expect(await lr.locator('.tick.x text').allTextContents()).toEqual(['0.001', '0.01', '0.1']);
    expect(await page.locator('table.trials').textContent()).toContain(HOSTILE_VALUE);
    expect(await optimizer.locator('circle title').allTextContents()).toContain(`optimizer = ${HOSTILE_VALUE}: acc 0.32 (run 2)`);
    await expectInert(page);
    await page.close();
  }, 30_000);

  it('shows a sweep: trials ranked by its objective, stopped early and skipped ones, charts, links to each run', async () => {
    const page = await open(`#/sweeps/${seeded.sweepId}`);
    await page.getByRole('heading', { level: 1, name: 'Sweep lr-search', exact: true }).waitFor();
    const rows = page.locator('table.trials tbody tr');
    await expect.poll(() => rows.count()).toBe(5);
    const [t0, t1, t2, t3, t4] = seeded.trialRuns;
    const order = await rows.evaluateAll((trs) => trs.map((tr) => [tr.getAttribute('data-run'), tr.getAttribute('data-status')]));
    // Best loss first (trial 3: 0.08, trial 0: 0.3, trial 1 stopped early at 1.8), then those without one in trial order.
    expect(order).toEqual([
      [t3, 'SUCCEEDED'],
      [t0, 'SUCCEEDED'],
      [t1, 'STOPPED_EARLY'],
      [t2, 'SKIPPED'],
      [t4, 'TRAINING'],
    ]);
    expect(await page.locator('table.trials caption').textContent()).toContain('Sorted by lowest loss, best first; 2 without loss last');
    expect(await rows.nth(2).locator('.badge').textContent()).toBe('stopped early');
    expect(await rows.nth(2).locator('.badge').getAttribute('title')).toContain('Stopped early by the median rule');
    expect(await rows.nth(3).locator('.badge').getAttribute('title')).toContain('budget');
    expect(await page.locator('[data-stopped-early]').getAttribute('data-stopped-early')).toBe('1');
    expect(await page.locator('dd[data-trials]').textContent()).toBe('6 planned · 4 launched · 3 finished · 1 skipped');
    expect(await page.locator('.details').getByRole('link', { name: 'trial 3' }).getAttribute('href')).toBe(`#/runs/${t3}`);

    expect(await page.locator('figure[data-chart="objective"]').getAttribute('data-points')).toBe('3');
    expect(await page.locator('figure[data-chart="objective"] circle.best title').textContent()).toContain('trial 3');
    expect(await page.locator('figure[data-chart="objective"] path.best-line').count()).toBe(1);
    expect(await page.locator('figure[data-hyperparameter="lr"]').getAttribute('data-points')).toBe('3');
    expect(await page.locator('figure[data-hyperparameter="lr"] .tick.x text').allTextContents()).toEqual(['0.01', '0.1']);
    expect(await page.locator('figure[data-hyperparameter="batch_size"] .tick.x text').allTextContents()).toEqual(['32', '64']);
    await page.screenshot({ path: join(SCREENSHOTS, 'sweep.png'), fullPage: true });

    // The sweep's experiment page knows the objective from the sweep and numbers runs by trial.
    await page.getByRole('link', { name: 'lr-search', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'lr-search', exact: true }).waitFor();
    expect(await page.locator('ul.sweeps li').textContent()).toContain('minimize loss');
    await expect.poll(() => page.locator('table.trials tbody tr').count()).toBe(4);
    expect(await page.locator('table.trials caption').textContent()).toContain('lowest loss');

    // Each trial links to its run.
    await page.locator(`tr[data-run="${t3}"] a`).first().click();
    await page.locator('article[data-status="SUCCEEDED"]').waitFor();
    expect(page.url()).toContain(`#/runs/${t3}`);
    expect(await page.locator('.details').textContent()).toContain(`${seeded.sweepId}, trial 3`);
    await page.close();
  }, 30_000);

  it('shows models, a model\'s versions, stages and lineage linking to the run, whose page lists its outputs', async () => {
    const page = await open('#/models');
    await page.locator('tr[data-model="mnist"]').waitFor();
    expect(await page.locator('tr[data-model="mnist"] ul.stages').textContent()).toBe('production → 1staging → 2');
    await page.screenshot({ path: join(SCREENSHOTS, 'models.png'), fullPage: true });

    await page.getByRole('link', { name: 'mnist', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'mnist', exact: true }).waitFor();
    const versions = page.locator('table.versions tbody tr');
    expect(await versions.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-version')))).toEqual(['2', '1']);
    expect(await versions.nth(1).locator('td').nth(1).textContent()).toBe('production');
    expect(await versions.nth(0).locator('td').nth(1).textContent()).toBe('staging');
    expect(await versions.nth(1).textContent()).toContain('acc=0.99 loss=0.05');
    expect(await page.locator('table.history tbody tr').count()).toBe(2);

    // The lineage opens from the keyboard: a native <details>.
    const lineage = page.locator('details.lineage[data-version="1"]');
    await lineage.locator('summary').focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => lineage.getAttribute('open')).toBe('');
    expect(await lineage.textContent()).toContain('s3://datasets/mnist/ → /data');
    expect(await lineage.locator('table.files tbody tr').count()).toBe(1);
    expect(await lineage.locator('table.files').textContent()).toContain('model/weights.bin');
    await page.screenshot({ path: join(SCREENSHOTS, 'model.png'), fullPage: true });
    await expectInert(page);

    await lineage.getByRole('link', { name: seeded.model.runId }).click();
    await page.getByRole('heading', { level: 1, name: 'mnist-train', exact: true }).waitFor();
    const outputs = page.locator('table.outputs');
    await outputs.waitFor();
    const files = await outputs.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => [tr.querySelector('td')?.textContent, tr.querySelector('[data-size]')?.getAttribute('data-size')]));
    expect(files.map(([path]) => path)).toContain(HOSTILE_FILE);
    expect(files).toEqual([...seeded.model.outputs].sort((a, b) => a.path.localeCompare(b.path)).map((o) => [o.path, String(o.size)]));
    expect(await outputs.locator('caption').textContent()).toBe('2 files, 3.0 MiB · manifest of attempt 1');
    expect(forwarded).toContain(`GET /runs/${seeded.model.runId}/outputs`);
    await expectInert(page);
    await page.screenshot({ path: join(SCREENSHOTS, 'run-outputs.png'), fullPage: true });
    await page.close();
  }, 30_000);

  it("lists each attempt's nodes of a multi-node run: the node kept, the node warned and its replacement", async () => {
    const page = await open(`#/runs/${seeded.nodesRun}`);
    const attempts = page.locator('ol.attempts');
    await attempts.waitFor();
    const first = page.getByRole('list', { name: 'Nodes of attempt 1' });
    expect(await first.locator('li').allTextContents()).toEqual([
      'rank 0 · c7i.large in local-1a · i-local0000aaaa',
      'rank 1 · c7i.large in local-1a · i-local0000bbbb · warned, released',
    ]);
    expect(await page.getByRole('list', { name: 'Nodes of attempt 2' }).locator('li').allTextContents()).toEqual([
      'rank 0 · c7i.large in local-1a · i-local0000aaaa · kept from attempt 1, succeeded, released',
      'rank 1 · c7i.large in local-1a · i-local0000cccc · succeeded, released',
    ]);
    await page.screenshot({ path: join(SCREENSHOTS, 'run-nodes.png'), fullPage: true });
    await page.close();
  }, 30_000);

  it('is usable from the keyboard and readable in the dark scheme', async () => {
    const page = await open('#/experiments', 'dark');
    await page.locator('table.experiments').waitFor();
    const colours = await page.evaluate<{ background: string; text: string }>('({ background: getComputedStyle(document.body).backgroundColor, text: getComputedStyle(document.body).color })');
    expect(colours).toEqual({ background: 'rgb(13, 17, 23)', text: 'rgb(230, 237, 243)' });
    expect(await page.getByRole('navigation', { name: 'Sections' }).getByRole('link').allTextContents()).toEqual(['Runs', 'Experiments', 'Models']);
    expect(await page.getByRole('link', { name: 'Experiments' }).getAttribute('aria-current')).toBe('page');

    // The page opens with the focus on its heading; the sections are just before it, and the
    // skip link first of all. Enter follows a link.
    await expectFocus(page, 'experiments-title');
    await page.keyboard.press('Shift+Tab');
    await expectFocus(page, 'Models');
    expect(await page.locator('a.skip').getAttribute('href')).toBe('#main');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Models', exact: true }).waitFor();
    await expectFocus(page, 'models-title');

    await page.goto(`${ui.url}#/sweeps/${seeded.sweepId}`);
    await page.locator('figure[data-chart="objective"]').waitFor();
    await page.screenshot({ path: join(SCREENSHOTS, 'sweep-dark.png'), fullPage: true });
    // Every chart is an image with a text equivalent; every select has a label.
    for (const svg of await page.locator('figure.scatter svg').all()) expect(await svg.getAttribute('aria-label')).toMatch(/\d+ point\(s\)/);

    await page.goto(`${ui.url}#/sweeps/sw-0000000000000000`);
    expect(await page.getByRole('alert').textContent()).toBe('Sweep sw-0000000000000000 not found (or not yours).');
    await page.close();
  }, 30_000);
});
