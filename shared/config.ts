/**
 * Configuration from the environment, read once per composition root. A missing variable is
 * a deployment bug, so it fails the cold start loudly instead of surfacing later as an empty
 * table name in an AWS error.
 */
export function requireEnv(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[name];
  if (value === undefined || value.trim() === '') {
    throw new Error(`Environment variable ${name} is required`);
  }
  return value;
}

/** An optional variable: undefined when unset or empty. */
export function optionalEnv(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value;
}
