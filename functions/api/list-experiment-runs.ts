import { awsExperimentDeps } from '../../shared/composition/experiments';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, json, pathParameter } from '../../shared/http/responses';
import { listExperimentRuns, type ExperimentDeps } from '../../shared/usecases/experiments';

/** GET /experiments/{name}/runs?limit=&nextToken= — the runs of one experiment, oldest first, for `runctl compare`. */
export const createHandler = (deps: () => ExperimentDeps) =>
  apiHandler(deps, async (event, d) =>
    json(
      200,
      await listExperimentRuns(
        { owner: callerIdentity(event), name: pathParameter(event, 'name'), query: event.queryStringParameters },
        d,
      ),
    ),
  );

export const handler = createHandler(awsExperimentDeps);
