#!/usr/bin/env node
// The runctl CLI: loads the ahead-of-time bundle in dist/ (scripts/build-cli.mjs), and builds it
// first when it is missing or older than one of its sources, so a fresh clone or an edited
// checkout runs what its sources say.
import module from 'node:module';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// Node 22.1+ keeps the compiled bundle in a cache directory between starts (Node 20 has no cache).
module.enableCompileCache?.();

const root = fileURLToPath(new URL('..', import.meta.url));

function currentEntry() {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(join(root, 'dist', 'cli.json'), 'utf8'));
  } catch {
    return undefined;
  }
  for (const input of manifest.inputs) {
    let modified;
    try {
      modified = statSync(join(root, input)).mtimeMs;
    } catch {
      return undefined; // a source was removed or renamed
    }
    if (modified > manifest.builtAt) return undefined;
  }
  return join(root, 'dist', manifest.entry);
}

let entry = currentEntry();
if (entry === undefined) {
  try {
    const { buildCli } = await import('../scripts/build-cli.mjs');
    entry = await buildCli();
  } catch (error) {
    process.stderr.write(`runctl: building the CLI bundle failed (${error instanceof Error ? error.message : String(error)}); run \`npm install\` in ${root}\n`);
    process.exit(1);
  }
}
const { run } = await import(pathToFileURL(entry).href);
await run(process.argv.slice(2));
