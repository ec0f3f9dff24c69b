// Node module hooks for running TypeScript sources directly (tsx): `import text from './x.sh?raw'`
// loads the file as a string, the way vitest and the esbuild bundles (`.sh` → text loader) do.
// Registered after tsx, so these hooks see `?raw` specifiers first.
import { readFile } from 'node:fs/promises';
import { register } from 'node:module';

if (!import.meta.url.includes('?hooks')) {
  register(`${import.meta.url}?hooks`, import.meta.url);
}

export async function resolve(specifier, context, nextResolve) {
  if (specifier.endsWith('?raw') && context.parentURL !== undefined) {
    return { url: new URL(specifier, context.parentURL).href, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}

export async function load(url, context, nextLoad) {
  if (url.endsWith('?raw')) {
    const text = await readFile(new URL(url.slice(0, -'?raw'.length)), 'utf8');
    return { format: 'module', source: `export default ${JSON.stringify(text)};`, shortCircuit: true };
  }
  return nextLoad(url, context);
}
