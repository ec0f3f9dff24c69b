import { readFileSync } from 'node:fs';

/** The version in package.json: one directory up from cli/ (sources) and from dist/ (the bundle) alike. */
export function runctlVersion(): string {
  try {
    const pkg: unknown = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    if (typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string') return pkg.version;
  } catch {
    // reported below
  }
  return 'unknown';
}
