// Bundles the runctl CLI ahead of time (`npm run build:cli`, also run by `npm install` through
// `prepare`, and by bin/runctl.mjs when a source is newer than the bundle): one ESM entry that
// holds only argument parsing and help, and a chunk per command, loaded when that command runs.
// Packages stay in node_modules (external): the CLI runs from its checkout.
//
// Output: dist/runctl-<hash>.mjs and dist/chunk-<hash>.mjs, content-hashed, each written to a
// temporary name and renamed, so concurrent builds never expose a half-written file; then
// dist/cli.json names the entry and lists the source files it was built from, for the
// staleness check. dist/ sits one level below the root, so `new URL('../…', import.meta.url)`
// in the sources (statemachines/, package.json) means the same in the bundle.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const OUT_DIR = join(ROOT, 'dist');
export const MANIFEST = join(OUT_DIR, 'cli.json');

function writeAtomically(path, contents) {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, contents);
  renameSync(temporary, path);
}

/** Files of earlier builds, once a day old: a CLI still running (`runctl dev`) may yet load its chunks. */
function pruneOldBuilds(current) {
  const dayAgo = Date.now() - 24 * 3600 * 1000;
  for (const name of readdirSync(OUT_DIR)) {
    const path = join(OUT_DIR, name);
    if (name.endsWith('.mjs') && !current.has(path) && statSync(path).mtimeMs < dayAgo) rmSync(path, { force: true });
  }
}

/** Builds the CLI bundle; returns the entry file's path. */
export async function buildCli() {
  const { build } = await import('esbuild');
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: { runctl: 'cli/main.ts' },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    outdir: OUT_DIR,
    entryNames: '[name]-[hash]',
    chunkNames: 'chunk-[hash]',
    outExtension: { '.js': '.mjs' },
    // The agent script is shipped inside the SSM command text (`import … from './agent.sh?raw'`).
    loader: { '.sh': 'text', '.py': 'text' },
    minifySyntax: true,
    treeShaking: true,
    metafile: true,
    write: false,
    logLevel: 'error',
  });
  mkdirSync(OUT_DIR, { recursive: true });
  let entry;
  for (const file of result.outputFiles) {
    if (!existsSync(file.path)) writeAtomically(file.path, file.contents);
    const meta = result.metafile.outputs[relative(ROOT, file.path)];
    if (meta?.entryPoint === 'cli/main.ts') entry = relative(OUT_DIR, file.path);
  }
  if (entry === undefined) throw new Error('esbuild produced no entry for cli/main.ts');
  // `agent.sh?raw` is the file agent.sh, loaded as text.
  const inputs = Object.keys(result.metafile.inputs).filter((path) => !path.includes('node_modules/')).map((path) => path.replace(/\?raw$/, ''));
  writeAtomically(MANIFEST, JSON.stringify({ entry, builtAt: Date.now(), inputs: [...inputs, 'package.json'] }));
  pruneOldBuilds(new Set(result.outputFiles.map((file) => file.path)));
  return join(OUT_DIR, entry);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const started = Date.now();
  const entry = await buildCli();
  console.error(`runctl CLI bundled into ${relative(ROOT, entry)} in ${Date.now() - started} ms`);
}
