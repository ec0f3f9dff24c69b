import { awsBucketApiDeps, type ApiDeps } from '../../shared/composition/api';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, json } from '../../shared/http/responses';
import { toView } from '../../shared/usecases/query-runs';
import { submitRun } from '../../shared/usecases/submit-run';

/** POST /runs — 201 for a new run, 200 when the client token names an existing one. */
export const createHandler = (deps: () => ApiDeps & { runsBucket: string; secretsPrefix?: string }) =>
  apiHandler(
    deps,
    async (event, d) => {
      const { record, created } = await submitRun({ owner: callerIdentity(event), body: event.body }, d);
      return json(created ? 201 : 200, toView(record));
    },
    { jsonBody: true },
  );

export const handler = createHandler(awsBucketApiDeps);
