#!/usr/bin/env node
// The runctl CLI. Its TypeScript sources run through tsx, resolved from this package's own
// node_modules, so the command works from any directory.
import { register } from 'tsx/esm/api';

register();
// After tsx, so `?raw` imports (the agent script) load as text, as in the bundles.
await import('../local/raw-text-hooks.mjs');
const { run } = await import('../cli/main.ts');
await run(process.argv.slice(2));
