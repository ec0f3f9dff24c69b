import { awsCancelApiDeps, type CancelApiDeps } from '../../shared/composition/api-cancel';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, json, optionalJsonBody, pathParameter } from '../../shared/http/responses';
import { cancelRun } from '../../shared/usecases/cancel-run';
import { toView } from '../../shared/usecases/query-runs';

/** POST /runs/{id}/cancel, body `{"force": true}` optional — 202: the run is CANCELLING. */
export const createHandler = (deps: () => CancelApiDeps) =>
  apiHandler(deps, async (event, d) => {
    const record = await cancelRun(
      { owner: callerIdentity(event), runId: pathParameter(event, 'id'), body: optionalJsonBody(event) },
      d,
    );
    return json(202, toView(record));
  });

export const handler = createHandler(awsCancelApiDeps);
