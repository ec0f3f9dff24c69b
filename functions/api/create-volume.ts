import { awsVolumeApiDeps, type VolumeApiDeps } from '../../shared/composition/volumes';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, json } from '../../shared/http/responses';
import { startPrewarm } from '../../shared/usecases/volume-api';

/** POST /volumes — 202 with the prewarm execution; a retried client token names the same one. */
export const createHandler = (deps: () => VolumeApiDeps) =>
  apiHandler(
    deps,
    async (event, d) => {
      const started = await startPrewarm({ owner: callerIdentity(event), body: event.body }, d);
      return json(started.alreadyStarted ? 200 : 202, started);
    },
    { jsonBody: true },
  );

export const handler = createHandler(awsVolumeApiDeps);
