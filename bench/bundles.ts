import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { build } from 'esbuild';

/**
 * Handler bundles built with the options serverless.yml gives serverless-esbuild (bundled,
 * minified, tree-shaken ESM for Node 22), then loaded in fresh Node processes to time the
 * module load a cold start pays. Each figure is set against an empty handler's.
 */

export interface BundleFigure {
  handler: string;
  bytes: number;
  loadMs: number;
}

const BANNER =
  "import { createRequire as __runctlCreateRequire } from 'node:module'; const require = __runctlCreateRequire(import.meta.url);";

function handlerFiles(root: string): string[] {
  const out: string[] = [];
  for (const folder of ['api', 'steps', 'events', 'volumes', 'images']) {
    const dir = join(root, 'functions', folder);
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) if (name.endsWith('.ts')) out.push(join(dir, name));
  }
  return out.sort();
}

async function bundle(entry: string, outfile: string): Promise<number> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    minify: true,
    treeShaking: true,
    sourcemap: false,
    platform: 'node',
    target: 'node22',
    format: 'esm',
    mainFields: ['module', 'main'],
    banner: { js: BANNER },
    loader: { '.sh': 'text', '.py': 'text' },
    logLevel: 'silent',
  });
  return statSync(outfile).size;
}

/** Median wall time of importing `file` in a fresh Node process (what a cold start pays). */
function loadMs(file: string, runs: number): number {
  const script = `const t = performance.now(); await import(${JSON.stringify(file)}); process.stdout.write(String(performance.now() - t));`;
  const times: number[] = [];
  for (let i = 0; i < runs; i += 1) {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, AWS_REGION: 'us-east-1', POWERTOOLS_LOG_LEVEL: 'SILENT' },
      encoding: 'utf8',
    });
    times.push(Number(out));
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] ?? Number.NaN;
}

/** Bundles every handler and the empty baseline; returns their sizes and load times. */
export async function measureBundles(root: string, outDir: string, runs = 5): Promise<{ empty: BundleFigure; handlers: BundleFigure[] }> {
  mkdirSync(outDir, { recursive: true });
  const emptyEntry = join(outDir, 'empty-handler.mjs');
  writeFileSync(emptyEntry, 'export const handler = async () => ({});\n');
  const emptyOut = join(outDir, 'empty.bundle.mjs');
  const empty: BundleFigure = { handler: '(empty handler)', bytes: await bundle(emptyEntry, emptyOut), loadMs: loadMs(emptyOut, runs) };
  const handlers: BundleFigure[] = [];
  for (const entry of handlerFiles(root)) {
    const name = relative(join(root, 'functions'), entry).replace(/\.ts$/, '');
    const out = join(outDir, `${name.replaceAll('/', '__')}.bundle.mjs`);
    const bytes = await bundle(entry, out);
    handlers.push({ handler: name, bytes, loadMs: loadMs(out, runs) });
  }
  return { empty, handlers };
}
