import { awsSubmitSweepDeps } from '../../shared/composition/sweeps';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, json } from '../../shared/http/responses';
import { submitSweep, type SubmitSweepDeps } from '../../shared/usecases/sweeps';

/** POST /sweeps — 201 for a new sweep, 200 when the client token names an existing one. */
export const createHandler = (deps: () => SubmitSweepDeps) =>
  apiHandler(
    deps,
    async (event, d) => {
      const { sweep, created } = await submitSweep({ owner: callerIdentity(event), body: event.body }, d);
      return json(created ? 201 : 200, sweep);
    },
    { jsonBody: true },
  );

export const handler = createHandler(awsSubmitSweepDeps);
