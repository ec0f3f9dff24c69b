import { awsVolumeApiDeps, type VolumeApiDeps } from '../../shared/composition/volumes';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, json } from '../../shared/http/responses';
import { startBuild } from '../../shared/usecases/image-api';

/** POST /images — 200 with the image when the bundle was built before, else 202 with the build execution. */
export const createHandler = (deps: () => VolumeApiDeps) =>
  apiHandler(
    deps,
    async (event, d) => {
      const result = await startBuild({ owner: callerIdentity(event), body: event.body }, d);
      return json(result.status === 'built' ? 200 : 202, result);
    },
    { jsonBody: true },
  );

export const handler = createHandler(awsVolumeApiDeps);
