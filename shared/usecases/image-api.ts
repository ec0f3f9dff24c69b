/** POST /images and GET /images: start a build-image execution for a code bundle, or answer with the caller's image already built; list the caller's images. */
import type { VolumeApiDeps } from '../composition/volumes';
import type { ImageEntry } from '../ports/catalog';
import { parseBuildRequest } from './image-build';
import type { OwnedInput } from './owned-input';
import { executionName, parseListQuery, splitClientToken } from './volume-api';

export type StartBuildResult =
  | { status: 'built'; image: ImageEntry }
  | { status: 'building'; buildId: string; executionArn: string; alreadyStarted: boolean; bundleSha: string };

/**
 * Validates the request; the caller's own image of the bundle, catalogued already, is returned at
 * once (the machine would reuse it too). Another owner's image of the same bundle is neither
 * shown nor reused: the caller gets a build of their own. Without a client token, the same
 * owner, bundle, Dockerfile and repository share one execution name, so concurrent requests of
 * one owner start one build.
 */
export async function startBuild(request: { owner: string; body: unknown }, deps: VolumeApiDeps): Promise<StartBuildResult> {
  const { clientToken, rest } = splitClientToken(request.body);
  const parsed = parseBuildRequest(rest, deps.runsBucket);
  if (!parsed.rebuild) {
    const image = await deps.catalog.getImage(request.owner, parsed.bundleSha);
    if (image !== undefined && image.repository.endsWith(`/${parsed.repository}`) && (parsed.dockerfile === undefined || image.dockerfile === parsed.dockerfile)) {
      return { status: 'built', image };
    }
  }
  const buildId =
    clientToken !== undefined || parsed.rebuild
      ? executionName('build', request.owner, clientToken)
      : executionName('build', request.owner, `${parsed.bundleSha}:${parsed.repository}:${parsed.dockerfile ?? ''}`);
  const input: OwnedInput = { owner: request.owner, request: parsed };
  const started = await deps.builds.start(buildId, input);
  return { status: 'building', buildId, executionArn: started.executionArn, alreadyStarted: started.alreadyStarted, bundleSha: parsed.bundleSha };
}

/** The caller's catalogued images, newest first. */
export async function listImages(request: { owner: string; query: unknown }, deps: VolumeApiDeps): Promise<{ images: ImageEntry[]; nextToken?: string }> {
  const page = await deps.catalog.listImages(request.owner, parseListQuery(request.query));
  return { images: page.items, nextToken: page.nextToken };
}
