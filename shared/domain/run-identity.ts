import { createHash, randomBytes } from 'node:crypto';

/**
 * Run ids double as Step Functions execution names (1-80 of [A-Za-z0-9_-]). With a client
 * token the id is derived from owner + token, so a retried submit lands on the same run
 * without a second index; without one it is random.
 */
export function runIdFor(owner: string, clientToken: string | undefined): string {
  if (clientToken === undefined) return `r-${randomBytes(8).toString('hex')}`;
  return `r-${createHash('sha256').update(`${owner}\n${clientToken}`).digest('hex').slice(0, 16)}`;
}

/** Stable JSON: object keys sorted at every level, so equal specs hash equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** sha256 of the canonical JSON of a (normalised) spec. */
export function specHash(spec: unknown): string {
  return createHash('sha256').update(canonicalJson(spec)).digest('hex');
}
