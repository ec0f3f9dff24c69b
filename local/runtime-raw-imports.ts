import { readFileSync } from 'node:fs';
import * as nodeModule from 'node:module';

/**
 * `import text from './agent.sh?raw'` (shared/agent/commands.ts) is understood by vite (tests)
 * and esbuild (the Lambda bundles), but not by Node. The local backend runs the sources through
 * tsx, so it teaches Node the same suffix: the module's default export is the file's text.
 * Call once, before importing anything that reaches the agent's command builders.
 */
let registered = false;

export function registerRawImports(): void {
  if (registered) return;
  registered = true;
  // Node 20 has no registerHooks; there only the CLI bundle runs the backend, with the text inlined.
  if (typeof nodeModule.registerHooks !== 'function') return;
  nodeModule.registerHooks({
    resolve(specifier, context, nextResolve) {
      if (!specifier.endsWith('?raw')) return nextResolve(specifier, context);
      const resolved = nextResolve(specifier.slice(0, -'?raw'.length), context);
      return { ...resolved, url: `${resolved.url}?raw`, format: 'module', shortCircuit: true };
    },
    load(url, context, nextLoad) {
      if (!url.endsWith('?raw')) return nextLoad(url, context);
      const text = readFileSync(new URL(url.slice(0, -'?raw'.length)), 'utf8');
      return { format: 'module', source: `export default ${JSON.stringify(text)};`, shortCircuit: true };
    },
  });
}
