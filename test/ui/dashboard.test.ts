import { request as httpRequest } from 'node:http';
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../cli/api-client';
import { resolveConfig } from '../../cli/config';
import { packDirectory } from '../../cli/pack';
import { startDev, type RunningDev } from '../../local/dev';
import { bundleKey } from '../../shared/usecases/uploads';
import { buildAssets } from '../../ui/server/assets';
import { startUiServer, type RunningUi, type UiApi } from '../../ui/server/ui-server';
import { waitFor } from '../e2e/support';
import { launchChromium, SCREENSHOTS, type Browser } from './browser';

/**
 * The dashboard in a real browser (Debian's chromium) against `runctl dev`: a real run of a real
 * script through a spot interruption, watched, and one cancelled from the page. Few tests, each
 * doing much: a browser and a training run are the slow parts, so they are shared.
 */

const HOSTILE_TAG = '<img src=x onerror="window.__xss = \'tag\'"><script>window.__xss = "tag-script"</script>';
const FIXTURE = join(import.meta.dirname, 'fixtures', 'hostile');

describe('runctl ui in chromium against runctl dev', () => {
  let root: string;
  let dev: RunningDev;
  let ui: RunningUi;
  let browser: Browser;
  let bundle: string;
  /** Every call the dashboard server passed on to the API, and every request it refused. */
  const forwarded: string[] = [];
  const refused: string[] = [];

  const spec = (name: string, tags: Record<string, string> = {}) => ({
    spec: {
      name,
      code: { bundle, entrypoint: 'train.py' },
      hyperparameters: { 'steps-after-resume': 12, 'step-seconds': 0.25 },
      instance: { types: ['c7i.large'], spot: true },
      checkpoint: { intervalSeconds: 5, graceSeconds: 10 },
      tags,
    },
  });

  async function open(path: string): Promise<Page> {
    const page = await browser.context.newPage();
    page.setDefaultTimeout(60_000);
    await page.goto(`${ui.url}${path}`);
    return page;
  }

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'runctl-ui-'));
    dev = await startDev({ port: 0, root, print: () => undefined });
    const packed = await packDirectory(FIXTURE);
    const key = bundleKey(packed.sha256);
    await dev.backend.s3.send(new PutObjectCommand({ Bucket: dev.backend.services.bucket, Key: key, Body: await readFile(packed.file) }));
    await rm(packed.file, { force: true });
    bundle = `s3://${dev.backend.services.bucket}/${key}`;

    const client = new ApiClient(resolveConfig({ endpoint: dev.url }, { RUNCTL_CONFIG: join(root, 'no-config.json') }));
    const api: UiApi = {
      endpoint: client.endpoint,
      send: (method, path, options) => {
        forwarded.push(`${method} ${path}`);
        return client.send(method, path, options);
      },
    };
    ui = await startUiServer({ api, assets: await buildAssets(), port: 0, local: true, onRefused: (line) => refused.push(line) });
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await ui?.close();
    await dev?.close();
    await rm(root, { recursive: true, force: true });
  }, 60_000);

  it('follows a run through a spot interruption without a reload: two attempts, the resume point, every metric point, the log', async () => {
    const submitted = await dev.backend.submit(spec('interrupted'));
    const page = await open(`#/runs/${submitted.runId}`);
    await page.getByRole('heading', { name: 'interrupted' }).waitFor();

    // Interrupted once the first checkpoint is in S3, while the page watches.
    await waitFor('a checkpoint', async () => ((await dev.backend.artifacts.latestCheckpoint(submitted.runId)) === undefined ? undefined : true), 240_000);
    // EC2 gives two minutes; a minute here leaves a loaded machine time to upload and report.
    await dev.backend.interrupt(submitted.runId, { graceMs: 60_000 });
    const final = await dev.backend.waitForRun(submitted.runId);
    expect(final.status).toBe('SUCCEEDED');
    expect(final.attempts[0]?.endReason).toBe('SPOT_INTERRUPTED');
    expect(final.attempts.length).toBeGreaterThanOrEqual(2);

    await page.locator('article[data-status="SUCCEEDED"]').waitFor({ timeout: 60_000 });
    const attempts = page.locator('ol.attempts li');
    await expect.poll(() => attempts.count(), { timeout: 30_000 }).toBe(final.attempts.length);
    expect(await attempts.nth(0).textContent()).toContain('ended: spot interruption');
    const checkpoint = /checkpoints\/([^/]+)\/?$/.exec(final.attempts[1]?.resumeFrom ?? '')?.[1] ?? 'missing';
    await expect.poll(() => attempts.nth(1).textContent(), { timeout: 30_000 }).toContain(`resumed from checkpoint ${checkpoint}`);
    expect(await page.locator('svg .resume-mark').count()).toBe(final.attempts.filter((a) => a.resumeFrom !== undefined).length);
    expect(await page.locator('svg .interruption-mark').count()).toBeGreaterThanOrEqual(1);

    const metrics = await new ApiClient(resolveConfig({ endpoint: dev.url }, { RUNCTL_CONFIG: join(root, 'none.json') })).metrics(submitted.runId, { limit: 5000 });
    const loss = metrics.metrics.filter((m) => typeof m.loss === 'number');
    const chart = page.locator('figure.chart[data-metric="loss"]');
    await expect.poll(() => chart.getAttribute('data-points'), { timeout: 30_000 }).toBe(String(loss.length));
    expect(Number(await chart.getAttribute('data-resumes'))).toBe(new Set(loss.map((m) => m.attempt)).size - 1);

    const log = page.locator('pre.log');
    await expect.poll(() => log.getAttribute('data-attempt'), { timeout: 30_000 }).toBe(String(final.attempts.length));
    await expect.poll(() => log.textContent(), { timeout: 30_000 }).toContain('training finished after step');
    await page.screenshot({ path: join(SCREENSHOTS, 'run-interrupted.png'), fullPage: true });
    await page.close();
  }, 480_000);

  it('cancels a run from the page after asking, and the run ends CANCELLED', async () => {
    const submitted = await dev.backend.submit(spec('to-cancel', { note: HOSTILE_TAG }));
    const page = await open(`#/runs/${submitted.runId}`);
    await page.locator('article[data-status="TRAINING"]').waitFor({ timeout: 120_000 });

    // The log follows the training as it is uploaded; HTML in tags and log lines is text, never run.
    const log = page.locator('pre.log');
    await expect.poll(() => log.textContent(), { timeout: 240_000 }).toContain('step 2 of attempt 1 done');
    expect(await log.textContent()).toContain('<script>window.__xss = "log"</script>');
    expect(await page.locator('.tags').textContent()).toContain(HOSTILE_TAG);
    expect(await page.locator('main img, main script').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as { __xss?: string }).__xss)).toBeUndefined();

    await page.getByRole('button', { name: 'Cancel run…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Cancel run to-cancel?' });
    await dialog.waitFor();
    await page.screenshot({ path: join(SCREENSHOTS, 'cancel-dialog.png') });
    // Escape closes the dialog and cancels nothing.
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    expect((await dev.backend.store.get(submitted.runId))?.cancelRequested).toBeUndefined();

    await page.getByRole('button', { name: 'Cancel run…' }).click();
    await dialog.getByRole('button', { name: 'Cancel the run' }).click();
    await page.locator('article[data-status="CANCELLED"]').waitFor({ timeout: 90_000 });
    const final = await dev.backend.waitForRun(submitted.runId);
    expect(final.status).toBe('CANCELLED');
    expect(forwarded).toContain(`POST /runs/${submitted.runId}/cancel`);
    await page.screenshot({ path: join(SCREENSHOTS, 'run-cancelled.png'), fullPage: true });

    const list = await open('#/?status=CANCELLED');
    await list.locator(`tr[data-run="${submitted.runId}"]`).waitFor();
    expect(await list.locator('tbody tr').count()).toBe(1);
    await list.screenshot({ path: join(SCREENSHOTS, 'runs.png'), fullPage: true });
    await list.close();
    await page.close();
  }, 480_000);

  it('refuses requests whose Host or Origin is not its own, and a cross-site page cannot cancel a run', async () => {
    const port = ui.port;
    const status = (path: string, headers: Record<string, string>, method = 'GET') =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path, method, headers }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end(method === 'POST' ? '{}' : undefined);
      });
    expect(await status('/api/runs', { host: `127.0.0.1:${port}` })).toBe(200);
    expect(await status('/api/runs', { host: `localhost:${port}`, origin: `http://localhost:${port}` })).toBe(200);
    // DNS rebinding: the attacker's name resolves to 127.0.0.1, the Host header still says it.
    expect(await status('/api/runs', { host: `rebind.example:${port}` })).toBe(403);
    expect(await status('/', { host: `rebind.example:${port}` })).toBe(403);
    expect(await status('/api/runs', { host: `127.0.0.1:${port}`, origin: 'http://evil.example' })).toBe(403);
    expect(await status('/api/runs', { host: `127.0.0.1:${port}`, origin: `http://127.0.0.1:${port + 1}` })).toBe(403);
    expect(await status('/api/runs', { host: `127.0.0.1:${port}`, 'sec-fetch-site': 'cross-site' })).toBe(403);
    expect(await status('/api/runs/r-x/cancel', { host: `127.0.0.1:${port}`, 'content-type': 'application/json' }, 'POST')).toBe(403);
    // Calls the dashboard never makes are not passed on.
    expect(await status('/api/uploads', { host: `127.0.0.1:${port}`, origin: `http://127.0.0.1:${port}` }, 'POST')).toBe(404);

    // A page on another origin posts a cancel at the dashboard, as a cross-site attack would:
    // the browser sends it (no-cors), the server refuses it, nothing reaches the API.
    const evil: Server = createServer((_, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<p>elsewhere</p>'));
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', () => r()));
    try {
      const address = evil.address();
      const evilPort = typeof address === 'object' && address !== null ? address.port : 0;
      const page = await browser.context.newPage();
      await page.goto(`http://localhost:${evilPort}/`);
      await page.evaluate(async (target) => {
        // The answer is opaque to the page either way; what matters is what the server did.
        await fetch(target, { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: '{"force":true}' }).catch(() => undefined);
      }, `${ui.url}api/runs/r-victim/cancel`);
      expect(refused.filter((line) => line.startsWith('POST /api/runs/r-victim/cancel'))).toEqual([
        `POST /api/runs/r-victim/cancel: Refused: requests from http://localhost:${evilPort} may not use this dashboard`,
      ]);
      expect(forwarded.some((call) => call.includes('r-victim'))).toBe(false);
      await page.close();
    } finally {
      // Chromium keeps its connection to the other origin alive; close() alone would wait a minute for it.
      await new Promise<void>((r) => {
        evil.close(() => r());
        evil.closeAllConnections();
      });
    }
  }, 300_000);
});
