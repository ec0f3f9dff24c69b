import { awsVolumeApiDeps, type VolumeApiDeps } from '../../shared/composition/volumes';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, json } from '../../shared/http/responses';
import { listImages } from '../../shared/usecases/image-api';

/** GET /images?limit=&nextToken= — the caller's built images, newest first. */
export const createHandler = (deps: () => VolumeApiDeps) =>
  apiHandler(deps, async (event, d) => json(200, await listImages({ owner: callerIdentity(event), query: event.queryStringParameters }, d)));

export const handler = createHandler(awsVolumeApiDeps);
