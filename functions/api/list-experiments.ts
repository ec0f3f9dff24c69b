import { awsExperimentDeps } from '../../shared/composition/experiments';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, json } from '../../shared/http/responses';
import { listExperiments, type ExperimentDeps } from '../../shared/usecases/experiments';

/** GET /experiments?limit=&nextToken= — the caller's experiments, by name. */
export const createHandler = (deps: () => Pick<ExperimentDeps, 'experiments'>) =>
  apiHandler(deps, async (event, d) =>
    json(200, await listExperiments({ owner: callerIdentity(event), query: event.queryStringParameters }, d)),
  );

export const handler = createHandler(awsExperimentDeps);
