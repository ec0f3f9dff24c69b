/**
 * Short-lived helper instances: the prewarm helper that fills a volume, the builder that builds
 * an image. Each is tagged with its execution's id (as `runctl:run`, so the existing tag-scoped
 * permissions apply) and `runctl:helper`, launched on-demand (a spot reclaim mid-copy would only
 * waste the copy), and terminated by the machine on every path.
 */
import { z } from 'zod';
import type { VolumeDeps } from '../composition/volumes';
import { InstanceNotReadyError } from '../errors';
import type { CommandResult } from '../ports/compute';

/** Tag saying which machine a helper instance belongs to (`prewarm-volume`, `build-image`). */
export const HELPER_TAG = 'runctl:helper';

/** Ids of prewarm and build executions: also the helper's `runctl:run` tag and client-token stem. */
export const HelperIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,60}$/, 'must be 1-60 letters, digits, "_" or "-"');
const AzSchema = z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d[a-z]$/, 'must be an AZ like us-east-1a');

export const HelperInstanceEventSchema = z.discriminatedUnion('action', [
  z.object({
    action: z.literal('launch'),
    helperId: HelperIdSchema,
    purpose: z.enum(['prewarm-volume', 'build-image']),
    availabilityZone: AzSchema.optional(),
  }),
  z.object({ action: z.literal('check'), instanceId: z.string().min(1), availabilityZone: z.string(), checks: z.number().int().min(0) }),
  z.object({ action: z.literal('terminate'), instanceId: z.string().min(1) }),
]);
export type HelperInstanceEvent = z.infer<typeof HelperInstanceEventSchema>;

export type HelperInstanceResult =
  | { instanceId: string; availabilityZone: string; ready: boolean; checks: number }
  | { instanceId: string; terminated: true };

/** Launches, checks (EC2 running and SSM online) or terminates a helper instance. */
export async function helperInstance(event: HelperInstanceEvent, deps: VolumeDeps): Promise<HelperInstanceResult> {
  if (event.action === 'terminate') {
    await deps.compute.terminate(event.instanceId);
    return { instanceId: event.instanceId, terminated: true };
  }
  if (event.action === 'launch') {
    const build = event.purpose === 'build-image';
    const launched = await deps.compute.launch({
      runId: event.helperId,
      attempt: 1,
      instanceTypes: [build ? deps.config.builderInstanceType : deps.config.helperInstanceType],
      subnets: [],
      availabilityZone: event.availabilityZone,
      spot: false,
      onDemandFallback: false,
      instanceProfile: build ? deps.config.builderInstanceProfile : deps.config.helperInstanceProfile,
      rootVolumeGiB: build ? deps.config.builderRootGiB : 16,
      tags: { [HELPER_TAG]: event.purpose },
    });
    return { instanceId: launched.instanceId, availabilityZone: launched.availabilityZone, ready: false, checks: 0 };
  }
  const readiness = await deps.compute.readiness(event.instanceId);
  const checks = event.checks + 1;
  if (readiness.state !== 'pending' && readiness.state !== 'running') {
    throw new InstanceNotReadyError(`Helper instance ${event.instanceId} is ${readiness.state}`);
  }
  if (!readiness.ready && checks >= deps.config.helperMaxChecks) {
    throw new InstanceNotReadyError(`Helper instance ${event.instanceId} was not online in SSM after ${checks} checks`);
  }
  return { instanceId: event.instanceId, availabilityZone: event.availabilityZone, ready: readiness.ready, checks };
}

/** Terminates every live helper of an execution (found by its tag), plus one known by id. */
export async function terminateHelpers(helperId: string, known: string | undefined, deps: VolumeDeps): Promise<string[]> {
  const tagged = (await deps.compute.listTaggedInstances()).filter((i) => i.runId === helperId && i.state !== 'terminated');
  const ids = [...new Set([...(known === undefined ? [] : [known]), ...tagged.map((i) => i.instanceId)])];
  for (const id of ids) await deps.compute.terminate(id);
  return ids;
}

/** A command's outcome for a poll: undefined while it runs. */
export function finished(result: CommandResult): CommandResult | undefined {
  return result.status === 'Pending' || result.status === 'InProgress' || result.status === 'Delayed' ? undefined : result;
}

/** The last line of a command's stderr, the line the scripts write their reason to. */
export function lastErrorLine(result: CommandResult): string {
  return (result.stderr.trim().split('\n').at(-1) ?? '').slice(0, 500);
}

/** The last JSON line of a command's stdout that `schema` accepts. */
export function lastJsonLine<S extends z.ZodType>(stdout: string, schema: S): z.output<S> | undefined {
  for (const line of stdout.trim().split('\n').reverse()) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      continue;
    }
    const result = schema.safeParse(parsed);
    if (result.success) return result.data;
  }
  return undefined;
}
