import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The dashboard's static files: index.html, one script and one stylesheet that esbuild bundles
 * from ui/web (Preact, uPlot and the app; no CDN, so the page works offline). A checkout builds
 * them in memory when the server starts (about a quarter of a second), so they are never stale;
 * a packed copy of runctl, which has no esbuild, serves the ui/dist that `npm run build:ui` wrote.
 */

/** The runctl checkout: this file runs from ui/server/ or, inside the CLI bundle, from dist/. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

const UI_DIR = join(packageRoot(), 'ui');
const WEB_DIR = join(UI_DIR, 'web');
export const DIST_DIR = join(UI_DIR, 'dist');

export interface Asset {
  body: Buffer;
  contentType: string;
  /** Strong validator of the bytes, for conditional GETs. */
  etag: string;
}

/** URL path (`/`, `/assets/app.js`, …) → asset. */
export type UiAssets = ReadonlyMap<string, Asset>;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
};

function asset(path: string, body: Buffer): Asset {
  return {
    body,
    contentType: CONTENT_TYPES[extname(path)] ?? 'application/octet-stream',
    etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
  };
}

/** Bundles ui/web with esbuild; `outdir` given: also writes the files there (`npm run build:ui`). */
export async function buildAssets(options: { outdir?: string; minify?: boolean } = {}): Promise<UiAssets> {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: { app: join(WEB_DIR, 'main.tsx') },
    bundle: true,
    format: 'esm',
    target: ['chrome111', 'firefox115', 'safari16'],
    minify: options.minify ?? true,
    sourcemap: false,
    jsx: 'automatic',
    jsxImportSource: 'preact',
    outdir: options.outdir ?? join(UI_DIR, '.build'),
    write: false,
    logLevel: 'silent',
    legalComments: 'none',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const files = new Map<string, Asset>();
  files.set('/', asset('index.html', await readFile(join(WEB_DIR, 'index.html'))));
  for (const output of result.outputFiles) {
    const name = output.path.slice(output.path.lastIndexOf('/') + 1);
    files.set(`/assets/${name}`, asset(name, Buffer.from(output.contents)));
  }
  if (options.outdir !== undefined) {
    const { mkdir, writeFile } = await import('node:fs/promises');
    await mkdir(join(options.outdir, 'assets'), { recursive: true });
    for (const [path, file] of files) await writeFile(join(options.outdir, path === '/' ? 'index.html' : path), file.body);
  }
  return files;
}

/** Reads a built ui/dist. */
export async function readBuiltAssets(dir: string = DIST_DIR): Promise<UiAssets> {
  const files = new Map<string, Asset>();
  files.set('/', asset('index.html', await readFile(join(dir, 'index.html'))));
  for (const name of await readdir(join(dir, 'assets'))) files.set(`/assets/${name}`, asset(name, await readFile(join(dir, 'assets', name))));
  return files;
}

/** The assets for this copy of runctl: built from source in a checkout, else read from ui/dist. */
export async function loadAssets(): Promise<UiAssets> {
  if (existsSync(join(WEB_DIR, 'main.tsx')) && (await esbuildInstalled())) return buildAssets();
  if (!existsSync(join(DIST_DIR, 'index.html'))) {
    throw new Error(`The dashboard is not built: run \`npm run build:ui\` in ${dirname(UI_DIR)} (it writes ${DIST_DIR})`);
  }
  return readBuiltAssets();
}

async function esbuildInstalled(): Promise<boolean> {
  try {
    await import('esbuild');
    return true;
  } catch {
    return false;
  }
}
