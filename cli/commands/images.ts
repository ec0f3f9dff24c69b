import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { BuildRequestSchema } from '../../shared/usecases/image-build';
import { uploadDirectory } from '../bundle-upload';
import { printJson, type CommandContext } from '../context';
import { UsageError } from '../errors';
import { checkRequest } from '../request-issues';

export interface BuildOptions {
  dir?: string;
  dockerfile?: string;
  repository?: string;
  rebuild: boolean;
}

const BUILD_FLAGS: Record<string, string> = { dockerfile: '--dockerfile', repository: '--repository', rebuild: '--rebuild' };

/** Stands in for the bundle while the flags are checked, before anything is packed. */
const PLACEHOLDER_BUNDLE = `s3://runctl-placeholder/bundles/${'0'.repeat(64)}.tar.gz`;

/** `runctl images build`: pack and upload DIR as `submit` does, then POST /images. Returns the exit code. */
export async function buildImage(context: CommandContext, options: BuildOptions): Promise<number> {
  const dir = resolve(options.dir ?? '.');
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`The code directory ${dir} does not exist`);
  const fields: Record<string, unknown> = {};
  if (options.dockerfile !== undefined) fields.dockerfile = options.dockerfile;
  if (options.repository !== undefined) fields.repository = options.repository;
  if (options.rebuild) fields.rebuild = true;
  checkRequest(BuildRequestSchema, { bundle: PLACEHOLDER_BUNDLE, ...fields }, { what: 'image request', flags: BUILD_FLAGS, docs: 'docs/images.md' });

  const uploaded = await uploadDirectory(context, dir);
  const { data: answer } = await context.client.buildImage({ bundle: uploaded.bundle, bundleSha: uploaded.sha256, ...fields });

  if (context.json) {
    printJson(context, answer);
    return 0;
  }
  const inSpec =
    options.dockerfile === undefined
      ? 'a run of this code with `docker: auto` in its spec'
      : `a run of this code with \`docker: {build: {dockerfile: ${options.dockerfile}}}\` in its spec`;
  if (answer.status === 'built') {
    const { image } = answer;
    context.err(`This code is built already (${image.dockerfile}, ${image.createdAt}); nothing new was started. Pass --rebuild to build it again.`);
    context.out(image.imageUri);
    context.err(`Now ${inSpec} trains in it, or name it directly: docker: {image: ${image.imageUri}}`);
    return 0;
  }
  context.err(
    answer.alreadyStarted
      ? `A build of this code was already started as ${answer.buildId}; nothing new was started (if that build failed, pass --rebuild).`
      : `Started image build ${answer.buildId} for bundle ${answer.bundleSha.slice(0, 12)}`,
  );
  context.out(answer.buildId);
  context.err(`Execution: ${answer.executionArn}`);
  context.err(
    `Once it is built, ${inSpec} trains in it (until then such a run fails its prechecks). ` +
      `Run \`runctl images build ${options.dir ?? '.'}\` again to check: it prints the image when the build is done.`,
  );
  return 0;
}
