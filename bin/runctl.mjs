#!/usr/bin/env node
// The runctl CLI. Its TypeScript sources run through tsx, resolved from this package's own
// node_modules, so the command works from any directory.
import { register } from 'tsx/esm/api';

register();
const { run } = await import('../cli/main.ts');
await run(process.argv.slice(2));
