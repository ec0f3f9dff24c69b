/**
 * EnsureImage: a `docker: "auto"` or `docker.build` run gets its image before an instance is
 * provisioned. The image its owner already has catalogued for the code bundle is reused; otherwise the
 * step answers the build-image input, and the train-run machine runs that build (a nested
 * execution) before ProvisionInstance. A failed build ends the run's prechecks.
 */
import { z } from 'zod';
import { PrecheckFailedError } from '../errors';
import type { ImageEntry } from '../ports/catalog';
import { type BuildRequest, parseBuildRequest } from './image-build';
import { imageRequirement, type ImageLookupDeps, satisfies } from './launch-training';
import type { StepDeps } from './step-deps';
import { describeCause, requireRun } from './step-event';
import { CaughtErrorSchema, RunIdSchema } from './train-run-state';
import { executionName } from './volume-api';

export const EnsureImageEventSchema = z.discriminatedUnion('action', [
  /** Before provisioning: is the run's image catalogued? */
  z.object({ action: z.literal('check'), runId: RunIdSchema }),
  /** The nested build failed: say why in the run's terms (`$.imageBuildError` of the machine). */
  z.object({ action: z.literal('failed'), runId: RunIdSchema, error: CaughtErrorSchema }),
]);
export type EnsureImageEvent = z.infer<typeof EnsureImageEventSchema>;

export type EnsureImageResult =
  | { needsBuild: false; image?: string }
  | {
      needsBuild: true;
      /** Name of the build-image execution: one per run, so a retried start names the same build. */
      buildId: string;
      /** The build-image execution's input: what POST /images starts it with, in the run owner's name. */
      build: OwnedBuildRequest;
    };

/** A build request in its owner's name (shared/usecases/owned-input.ts). */
export interface OwnedBuildRequest {
  owner: string;
  request: BuildRequest;
}

export type EnsureImageDeps = Pick<StepDeps, 'store'> & ImageLookupDeps;

/** The cause of a failed nested execution: Step Functions puts its DescribeExecution answer there. */
const NestedFailureSchema = z.looseObject({
  Error: z.string().optional(),
  Cause: z.string().optional(),
  error: z.string().optional(),
  cause: z.string().optional(),
});

/** The build's own error and cause out of the `.sync` task's failure (its Cause is the child's description). */
function buildFailure(error: z.infer<typeof CaughtErrorSchema>): string {
  let nested: unknown;
  try {
    nested = JSON.parse(error.Cause ?? '');
  } catch {
    nested = undefined;
  }
  const parsed = NestedFailureSchema.safeParse(nested);
  const name = parsed.success ? (parsed.data.Error ?? parsed.data.error) : undefined;
  if (parsed.success && name !== undefined) {
    const cause = describeCause(parsed.data.Cause ?? parsed.data.cause);
    return cause === undefined ? name : `${name}: ${cause}`;
  }
  const cause = describeCause(error.Cause);
  return cause === undefined ? error.Error : `${error.Error}: ${cause}`;
}

async function checkImage(runId: string, deps: EnsureImageDeps): Promise<EnsureImageResult> {
  const record = await requireRun(deps.store, runId);
  const spec = record.spec;
  const requirement = imageRequirement(spec);
  if (requirement === undefined) return { needsBuild: false };
  // Without a catalog (the local backend) no image can be reused: the build step says what to do.
  const entry: ImageEntry | undefined = await deps.catalog?.getImage(record.owner, requirement.bundleSha);
  if (entry !== undefined && satisfies(entry, requirement)) return { needsBuild: false, image: entry.imageUri };
  // Validated here with the machine's own schema, so a request it would refuse fails this run's prechecks now.
  const request = parseBuildRequest({
    bundle: spec.code.bundle,
    bundleSha: requirement.bundleSha,
    ...(requirement.dockerfile === undefined ? {} : { dockerfile: requirement.dockerfile }),
    // An image of this bundle from another Dockerfile: build again rather than reuse it.
    rebuild: entry !== undefined,
  });
  // In the run owner's name: the image it records is the owner's, for this run and their next ones.
  const build: OwnedBuildRequest = { owner: record.owner, request };
  const buildId = executionName('build', 'train-run', runId);
  // Conditional, and harmless when a retried check finds the run already building.
  await deps.store.transition(runId, ['VALIDATING', 'BUILDING_IMAGE'], 'BUILDING_IMAGE', {
    statusReason: `Building the image of code bundle ${requirement.bundleSha.slice(0, 12)} (${buildId}) before the first instance`,
  });
  return { needsBuild: true, buildId, build };
}

/**
 * EnsureImage task: `check` answers whether the run's image must be built first (and the build
 * input); `failed` turns the nested build's failure into Run.PrecheckFailed naming the build's error.
 */
export async function ensureImage(event: EnsureImageEvent, deps: EnsureImageDeps): Promise<EnsureImageResult> {
  if (event.action === 'check') return checkImage(event.runId, deps);
  throw new PrecheckFailedError(`Building the run's image failed: ${buildFailure(event.error)}`);
}
