import type { ApiClient } from './api-client';

/** What every command gets: the API client and where to write. */
export interface CommandContext {
  client: ApiClient;
  json: boolean;
  out: (text: string) => void;
  err: (text: string) => void;
  /** Milliseconds between polls while following (RUNCTL_POLL_INTERVAL_MS, default 2000). */
  pollMs: number;
}

/** Prints a value as the `--json` output of a read command. */
export function printJson(context: CommandContext, value: unknown): void {
  context.out(JSON.stringify(value, null, 2));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
