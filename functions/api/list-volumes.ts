import { awsVolumeApiDeps, type VolumeApiDeps } from '../../shared/composition/volumes';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, json } from '../../shared/http/responses';
import { listVolumes } from '../../shared/usecases/volume-api';

/** GET /volumes?limit=&nextToken= — the caller's pre-warmed dataset volumes, newest first. */
export const createHandler = (deps: () => VolumeApiDeps) =>
  apiHandler(deps, async (event, d) => json(200, await listVolumes({ owner: callerIdentity(event), query: event.queryStringParameters }, d)));

export const handler = createHandler(awsVolumeApiDeps);
