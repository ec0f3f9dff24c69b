import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/**
 * Debian's chromium, driven by playwright-core: no browser download, a fresh profile each time,
 * nothing that talks to the network on its own.
 */
export const CHROMIUM = process.env.RUNCTL_CHROMIUM ?? '/usr/bin/chromium';

/** Where the browser tests write a screenshot of each page (not committed; docs/images has one). */
export const SCREENSHOTS = resolve(import.meta.dirname, '../../.runctl/ui-screenshots');

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchChromium(options: { colorScheme?: 'light' | 'dark' } = {}): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`The dashboard tests need Debian's chromium at ${CHROMIUM}: apt-get install -y chromium (.ci/run installs it)`);
  }
  const profile = await mkdtemp(join(tmpdir(), 'runctl-chromium-'));
  await mkdir(SCREENSHOTS, { recursive: true });
  // A persistent context is the one way to hand chromium a --user-data-dir of our own: a fresh one.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 900 },
    colorScheme: options.colorScheme ?? 'light',
    timeout: 60_000,
  });
  return {
    context,
    close: async () => {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
