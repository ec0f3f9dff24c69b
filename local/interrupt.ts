import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { DEV_FILE } from './dev';

/**
 * `runctl local interrupt <run>`: asks the running local backend (`runctl dev`) to deliver a
 * real `EC2 Spot Instance Interruption Warning` for the run's current instance, publish the
 * metadata notice, and reclaim (kill) the instance after the grace period. The backend runs in
 * the `runctl dev` process, so this goes through its local-only route.
 */

const DevFileSchema = z.object({ url: z.string().url() });
const ResultSchema = z.object({ runId: z.string(), attempt: z.number(), instanceId: z.string(), reclaimAt: z.string() });
export type InterruptRunResult = z.infer<typeof ResultSchema>;

export async function interruptRun(
  runId: string,
  options: { endpoint?: string; root?: string } = {},
): Promise<InterruptRunResult> {
  const endpoint = options.endpoint ?? (await devEndpoint(options.root ?? '.runctl'));
  const response = await fetch(`${endpoint}/local/runs/${encodeURIComponent(runId)}/interrupt`, { method: 'POST' });
  const body: unknown = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = z.object({ message: z.string() }).safeParse(body);
    throw new Error(message.success ? message.data.message : `the local backend answered HTTP ${response.status}`);
  }
  return ResultSchema.parse(body);
}

async function devEndpoint(root: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(join(resolve(root), DEV_FILE), 'utf8');
  } catch {
    throw new Error(`No local backend is running under ${root}: start one with \`runctl dev\` (or pass its --endpoint)`);
  }
  return DevFileSchema.parse(JSON.parse(text)).url;
}
