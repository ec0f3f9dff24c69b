/** POST /images: start a build-image execution for a code bundle, or answer with the image already built. */
import type { VolumeApiDeps } from '../composition/volumes';
import type { ImageEntry } from '../ports/catalog';
import { parseBuildRequest } from './image-build';
import { executionName, splitClientToken } from './volume-api';

export type StartBuildResult =
  | { status: 'built'; image: ImageEntry }
  | { status: 'building'; buildId: string; executionArn: string; alreadyStarted: boolean; bundleSha: string };

/**
 * Validates the request; an image already catalogued for the bundle is returned at once (the
 * machine would reuse it too). Without a client token, the same bundle, Dockerfile and
 * repository share one execution name, so concurrent requests start one build.
 */
export async function startBuild(request: { owner: string; body: unknown }, deps: VolumeApiDeps): Promise<StartBuildResult> {
  const { clientToken, rest } = splitClientToken(request.body);
  const parsed = parseBuildRequest(rest, deps.runsBucket);
  if (!parsed.rebuild) {
    const image = await deps.catalog.getImage(parsed.bundleSha);
    if (image !== undefined && image.repository.endsWith(`/${parsed.repository}`)) return { status: 'built', image };
  }
  const buildId =
    clientToken !== undefined || parsed.rebuild
      ? executionName('build', request.owner, clientToken)
      : executionName('build', 'any owner', `${parsed.bundleSha}:${parsed.repository}:${parsed.dockerfile ?? ''}`);
  const started = await deps.builds.start(buildId, parsed);
  return { status: 'building', buildId, executionArn: started.executionArn, alreadyStarted: started.alreadyStarted, bundleSha: parsed.bundleSha };
}
