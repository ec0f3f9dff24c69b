import { awsVolumeApiDeps, type VolumeApiDeps } from '../../shared/composition/volumes';
import { apiHandler } from '../../shared/http/api-handler';
import { json } from '../../shared/http/responses';
import { listVolumes } from '../../shared/usecases/volume-api';

/** GET /volumes?limit=&nextToken= — the catalog of pre-warmed dataset volumes, newest first. */
export const createHandler = (deps: () => VolumeApiDeps) =>
  apiHandler(deps, async (event, d) => json(200, await listVolumes(event.queryStringParameters, d)));

export const handler = createHandler(awsVolumeApiDeps);
