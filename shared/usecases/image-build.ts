/**
 * The steps of the build-image machine: prepare (reuse the owner's image of the same bundle digest, or
 * ensure the repository and a registry login), build and push on the builder through SSM,
 * record the digest, and clean up on failure.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { BUILD_ARG_NAME, buildImageCommand, IMAGE_EXIT } from '../agent/docker';
import type { VolumeDeps } from '../composition/volumes';
import { toFieldIssues } from '../domain/run-spec';
import { RunInvalidError } from '../errors';
import { logger } from '../logger';
import { CatalogConflictError, type ImageEntry } from '../ports/catalog';
import type { CommandResult } from '../ports/compute';
import { DockerfileMissingError, ImageBuildFailedError } from '../ports/images';
import { ownedInput } from './owned-input';
import { finished, HelperIdSchema, lastErrorLine, lastJsonLine, terminateHelpers } from './volume-helper';

const SHA256 = /^[0-9a-f]{64}$/;
/** `runctl submit` uploads bundles content-addressed: `…/<sha256>.tar.gz`. */
const CONTENT_ADDRESSED = /\/([0-9a-f]{64})\.tar\.gz$/;

/** A build request, as POST /images takes it and the machine re-validates it. */
export const BuildRequestSchema = z
  .strictObject({
    /** S3 URI of the code bundle (.tar.gz). */
    bundle: z.string().regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/[^\0\n]*\.tar\.gz$/, 'must be the S3 URI of a code bundle, like s3://bucket/bundles/<sha256>.tar.gz'),
    /** sha256 of the bundle; taken from the bundle's name when it is content-addressed. */
    bundleSha: z.string().regex(SHA256, 'must be the 64 hex digits of the bundle\'s sha256').optional(),
    /** Dockerfile path relative to the bundle root; default: Dockerfile, docker/Dockerfile or .docker/Dockerfile. */
    dockerfile: z
      .string()
      .regex(/^[A-Za-z0-9_.][A-Za-z0-9_./-]*$/, 'must be a path relative to the bundle root, like docker/Dockerfile.gpu')
      .refine((p) => !p.split('/').includes('..'), 'must not contain ".." segments')
      .optional(),
    /** Repository name under the runctl/ prefix. Default `training`. */
    repository: z.string().regex(/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/, 'must be a lowercase repository name like training').default('training'),
    /** Build again even when an image of this bundle exists. */
    rebuild: z.boolean().default(false),
    /** `--build-arg`s, over the deployment's defaults (e.g. `BASE_IMAGE`). */
    buildArgs: z
      .record(
        z.string().regex(BUILD_ARG_NAME, 'must be a build argument name like BASE_IMAGE'),
        z.string().max(1024, 'must be at most 1024 characters').regex(/^[^\0\n]*$/, 'must be one line'),
      )
      .optional(),
  })
  .transform((r, ctx) => {
    const bundleSha = r.bundleSha ?? CONTENT_ADDRESSED.exec(r.bundle)?.[1];
    if (bundleSha === undefined) {
      ctx.addIssue({ code: 'custom', path: ['bundleSha'], message: 'is required when the bundle is not named <sha256>.tar.gz' });
      return z.NEVER;
    }
    return { ...r, bundleSha };
  });
export type BuildRequest = z.output<typeof BuildRequestSchema>;

/**
 * The build request as the stack accepts it: the bundle must be `s3://<runs bucket>/bundles/<sha256>.tar.gz`,
 * the content-addressed key `runctl submit` uploads to (and whose sha256 the builder checks), never
 * another key of the runs bucket (a run's outputs or logs) nor another bucket.
 */
function buildRequestSchemaFor(runsBucket: string) {
  return BuildRequestSchema.superRefine((r, ctx) => {
    const expected = bundleUriOf(runsBucket, r.bundleSha);
    if (r.bundle !== expected) {
      ctx.addIssue({
        code: 'custom',
        path: ['bundle'],
        message: `must be a code bundle uploaded through POST /uploads: s3://${runsBucket}/bundles/<sha256>.tar.gz (here ${expected})`,
      });
    }
  });
}

/** `s3://<runs bucket>/bundles/<sha256>.tar.gz`: where POST /uploads stores a code bundle. */
export function bundleUriOf(runsBucket: string, sha256: string): string {
  return `s3://${runsBucket}/bundles/${sha256}.tar.gz`;
}

/**
 * Validates a build request; RunInvalidError names each bad field. With `runsBucket`, the bundle
 * must be a content-addressed upload of that bucket (the API and the machine pass it).
 */
export function parseBuildRequest(input: unknown, runsBucket?: string): BuildRequest {
  const schema = runsBucket === undefined ? BuildRequestSchema : buildRequestSchemaFor(runsBucket);
  const parsed = schema.safeParse(input, { reportInput: true });
  if (parsed.success) return parsed.data;
  const issues = toFieldIssues(parsed.error);
  throw new RunInvalidError(`Invalid image request: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
}

/** Docker's limit on a tag's length. */
const MAX_TAG = 128;

/**
 * The image tag a build pushes: the bundle's digest and the build's own name, so no two builds
 * ever push the same tag. Repositories are IMMUTABLE: a tag names one image for good, and a tag
 * this build did not push is never taken for its own. An id too long for a tag is hashed.
 */
export function buildTag(bundleSha: string, buildId: string): string {
  const tag = `bundle-${bundleSha}-${buildId}`;
  return tag.length <= MAX_TAG ? tag : `bundle-${bundleSha}-${createHash('sha256').update(buildId).digest('hex').slice(0, 16)}`;
}

const BuildPlanSchema = z.object({
  buildId: HelperIdSchema,
  /** Whose build it is: the catalog entry it records is that owner's. */
  owner: z.string().min(1),
  bundle: z.string(),
  bundleSha: z.string().regex(SHA256),
  dockerfile: z.string().optional(),
  repositoryName: z.string(),
  repositoryUri: z.string(),
  registry: z.string(),
  tag: z.string(),
  buildArgs: z.record(z.string(), z.string()).optional(),
  /** Build id of the owner's entry for this bundle when the build started: the one RecordImage may replace. */
  replaces: z.string().min(1).optional(),
});
export type BuildPlan = z.infer<typeof BuildPlanSchema>;

export const PrepareBuildEventSchema = z.object({ buildId: HelperIdSchema, input: z.unknown() });

export type PrepareBuildResult = { reuse: true; image: ImageEntry } | { reuse: false; build: BuildPlan };

/** Whether an owner's catalogued image answers a request: same repository, and the Dockerfile it names (if any). */
function answers(entry: ImageEntry, repositoryName: string, dockerfile: string | undefined): boolean {
  return entry.repository === repositoryName && (dockerfile === undefined || entry.dockerfile === dockerfile);
}

/**
 * PrepareBuild: reuse the owner's own image of this bundle while its tag still names its digest
 * in ECR, else plan a build that pushes a tag of its own. Nothing found in ECR is adopted: only
 * the owner's catalog entry is reused, and only RecordImage, with the digest this build pushed,
 * writes one.
 */
export async function prepareBuild(event: z.infer<typeof PrepareBuildEventSchema>, deps: VolumeDeps): Promise<PrepareBuildResult> {
  const { owner, request: input } = ownedInput(event.input);
  const request = parseBuildRequest(input, deps.config.runsBucket);
  const repositoryName = `${deps.config.repositoryPrefix}${request.repository}`;
  const catalogued = await deps.catalog.getImage(owner, request.bundleSha);
  if (!request.rebuild && catalogued !== undefined && answers(catalogued, repositoryName, request.dockerfile)) {
    const pushed = await deps.registry.findImage(repositoryName, catalogued.tag);
    // Expired by the lifecycle policy (or deleted): build again.
    if (pushed?.digest === catalogued.digest) return { reuse: true, image: catalogued };
  }
  const repository = await deps.registry.ensureRepository(repositoryName, {
    keepLastImages: deps.config.keepLastImages,
    tags: { 'runctl:repository': 'true' },
  });
  const tag = buildTag(request.bundleSha, event.buildId);
  const existing = await deps.registry.findImage(repositoryName, tag);
  if (existing !== undefined) {
    // Nothing of this build has been pushed yet: whoever pushed this tag, it was not this build.
    throw new ImageBuildFailedError(
      `Image tag ${tag} already exists in ${repositoryName} (${existing.digest}) before build ${event.buildId} pushed anything; tags are immutable and a build records only the image it pushed itself: start the build again under another name`,
    );
  }
  const login = await deps.registry.registryLogin();
  return {
    reuse: false,
    build: {
      buildId: event.buildId,
      owner,
      bundle: request.bundle,
      bundleSha: request.bundleSha,
      dockerfile: request.dockerfile,
      repositoryName,
      repositoryUri: repository.repositoryUri,
      registry: login.registry,
      tag,
      buildArgs: { ...deps.config.defaultBuildArgs, ...request.buildArgs },
      ...(catalogued === undefined ? {} : { replaces: catalogued.buildId }),
    },
  };
}

export const BuildImageEventSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('start'), build: BuildPlanSchema, instanceId: z.string().min(1) }),
  z.object({ action: z.literal('check'), instanceId: z.string().min(1), commandId: z.string().min(1), polls: z.number().int().min(0) }),
]);

const BuildOutputSchema = z.object({ digest: z.string().regex(/^sha256:[0-9a-f]{64}$/), dockerfile: z.string().min(1) });

export type BuildImageResult =
  | { done: false; commandId: string; polls: number }
  | { done: true; commandId: string; polls: number; digest: string; dockerfile: string };

const BUILD_TIMEOUT_SECONDS = 2 * 3600;

/** Characters of build output kept in a failure's cause (Step Functions allows 32,768). */
const FAILURE_OUTPUT_CHARS = 4000;

/**
 * Why a build failed: the build command's own `runctl build: …` line and the last lines of the
 * build output it prints after it (the failing step and its error), or the last stderr line.
 */
export function buildFailureReason(result: CommandResult): string {
  const stderr = result.stderr.trim();
  const at = stderr.lastIndexOf('runctl build: ');
  if (at < 0) return lastErrorLine(result);
  const text = stderr.slice(at + 'runctl build: '.length);
  return text.length > FAILURE_OUTPUT_CHARS ? `…${text.slice(-FAILURE_OUTPUT_CHARS)}` : text;
}

/** BuildImage: starts the build/push command on the builder, or reads its outcome. */
export async function buildImage(event: z.infer<typeof BuildImageEventSchema>, deps: VolumeDeps): Promise<BuildImageResult> {
  if (event.action === 'start') {
    const { build } = event;
    const commandId = await deps.compute.sendCommand(
      event.instanceId,
      buildImageCommand({
        bundleUri: build.bundle,
        bundleSha: build.bundleSha,
        runsBucket: deps.config.runsBucket,
        dockerfile: build.dockerfile,
        repositoryUri: build.repositoryUri,
        registry: build.registry,
        region: deps.config.region,
        tag: build.tag,
        buildArgs: build.buildArgs,
      }),
      { comment: `runctl build ${build.buildId}`, timeoutSeconds: BUILD_TIMEOUT_SECONDS },
    );
    return { done: false, commandId, polls: 0 };
  }
  const polls = event.polls + 1;
  const result = finished(await deps.compute.commandResult(event.instanceId, event.commandId));
  if (result === undefined) {
    if (polls >= deps.config.buildMaxPolls) throw new ImageBuildFailedError(`Build command ${event.commandId} still running after ${polls} polls`);
    return { done: false, commandId: event.commandId, polls };
  }
  const reason = buildFailureReason(result);
  if (result.status !== 'Success') {
    if (result.exitCode === IMAGE_EXIT.dockerfileMissing) throw new DockerfileMissingError(reason || 'No Dockerfile in the code bundle');
    throw new ImageBuildFailedError(`Image build ${result.status}${result.exitCode === undefined ? '' : ` (exit ${result.exitCode})`}: ${reason}`);
  }
  const output = lastJsonLine(result.stdout, BuildOutputSchema);
  if (output === undefined) throw new ImageBuildFailedError(`Build command ${event.commandId} printed no digest`);
  return { done: true, commandId: event.commandId, polls, digest: output.digest, dockerfile: output.dockerfile };
}

export const RecordImageEventSchema = z.object({
  build: BuildPlanSchema,
  result: z.object({ digest: z.string().regex(/^sha256:[0-9a-f]{64}$/), dockerfile: z.string().min(1) }),
});

/**
 * RecordImage: the owner's catalog entry that `docker: auto` runs reuse. The build's tag must name
 * the digest the builder reported for its own push (tags are immutable, so it does for good);
 * the entry is written only over none, this build's own, or the one the build started from.
 * When another build of the owner recorded the bundle meanwhile, built the same way, its entry is
 * kept and returned; otherwise Catalog.Conflict.
 */
export async function recordImage(event: z.infer<typeof RecordImageEventSchema>, deps: VolumeDeps): Promise<ImageEntry> {
  const { build, result } = event;
  const pushed = await deps.registry.findImage(build.repositoryName, build.tag);
  if (pushed?.digest !== result.digest) {
    throw new ImageBuildFailedError(
      pushed === undefined
        ? `Image tag ${build.tag} is not in ${build.repositoryName}: the push of build ${build.buildId} did not land, and nothing is recorded`
        : `Image tag ${build.tag} of ${build.repositoryName} names ${pushed.digest}, not ${result.digest} that build ${build.buildId} pushed; nothing is recorded`,
    );
  }
  const entry: ImageEntry = {
    owner: build.owner,
    bundleSha: build.bundleSha,
    repository: build.repositoryName,
    imageUri: `${build.repositoryUri}@${result.digest}`,
    digest: result.digest,
    tag: build.tag,
    buildId: build.buildId,
    dockerfile: result.dockerfile,
    createdAt: deps.clock().toISOString(),
  };
  try {
    await deps.catalog.putImage(entry, { replaces: build.replaces });
    return entry;
  } catch (error) {
    if (!(error instanceof CatalogConflictError)) throw error;
    // Another build of the same owner and bundle recorded first (two runs of a new bundle started
    // together): its entry stays, and answers this request as well when built the same way.
    const current = await deps.catalog.getImage(build.owner, build.bundleSha);
    if (current === undefined || !answers(current, build.repositoryName, build.dockerfile)) throw error;
    logger.info('another build recorded the image first; keeping its entry', { buildId: build.buildId, recorded: current.buildId });
    return current;
  }
}

export const CleanupBuildEventSchema = z.object({
  buildId: HelperIdSchema,
  error: z.object({ Error: z.string(), Cause: z.string().optional() }).optional(),
});

/** Compensation of a failed build: terminate every builder of the execution, found by tag. */
export async function cleanupBuild(event: z.infer<typeof CleanupBuildEventSchema>, deps: VolumeDeps): Promise<{ terminated: string[] }> {
  const terminated = await terminateHelpers(event.buildId, undefined, deps);
  logger.info('build cleaned up', { buildId: event.buildId, error: event.error?.Error, terminated });
  return { terminated };
}
