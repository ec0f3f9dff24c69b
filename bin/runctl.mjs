#!/usr/bin/env node
// The runctl CLI. Its TypeScript sources run through tsx, resolved from this package's own
// node_modules, so the command works from any directory.
import * as nodeModule from 'node:module';

if (typeof nodeModule.registerHooks !== 'function') {
  process.stderr.write(
    `runctl needs Node.js 22.15 or newer (this is ${process.version}). ` +
      'Inside the runctl checkout, `npx runctl …` uses the Node 22 the project pins.\n',
  );
  process.exit(1);
}
const { register } = await import('tsx/esm/api');

register();
// `?raw` imports (the agent script) load as text, as in the bundles.
const { registerRawImports } = await import('../local/runtime-raw-imports.ts');
registerRawImports();
const { run } = await import('../cli/main.ts');
await run(process.argv.slice(2));
