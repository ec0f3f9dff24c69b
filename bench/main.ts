import { resolve } from 'node:path';
import { measureBundles } from './bundles';

const root = resolve(import.meta.dirname, '..');

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

async function main(): Promise<void> {
  const { empty, handlers } = await measureBundles(root, resolve(root, '.runctl/bench'));
  console.log('\nHandler bundles (esbuild, minified ESM, node22) and module load time (median of 5 fresh processes)');
  console.log(`${'handler'.padEnd(32)} ${'size'.padStart(11)} ${'× empty'.padStart(9)} ${'load ms'.padStart(9)} ${'× empty'.padStart(9)}`);
  for (const f of [empty, ...handlers]) {
    console.log(
      `${f.handler.padEnd(32)} ${kib(f.bytes).padStart(11)} ${(f.bytes / empty.bytes).toFixed(0).padStart(9)} ${f.loadMs.toFixed(1).padStart(9)} ${(f.loadMs / empty.loadMs).toFixed(1).padStart(9)}`,
    );
  }
}

await main();
