import { z } from 'zod';
import { awsSweepStepDeps, type SweepStepDeps } from '../../shared/composition/sweeps';
import { stepHandler } from '../../shared/composition/task-handler';
import { CaughtErrorSchema } from '../../shared/usecases/train-run-state';
import { finishSweep, SweepIdSchema } from '../../shared/usecases/sweeps';

/** The whole state: the error a Catch put at `$.error`, if any, is read leniently. */
const EventSchema = z.object({
  sweepId: SweepIdSchema,
  state: z.looseObject({ error: CaughtErrorSchema.optional().catch(undefined) }),
});

/** FinishSweep task of the sweep machine: total the trials' costs, name the best, write the final status. */
export const createHandler = (deps: SweepStepDeps | (() => SweepStepDeps)) =>
  stepHandler('FinishSweep', EventSchema, deps, (event, d) => finishSweep({ sweepId: event.sweepId, error: event.state.error }, d));

export const handler = createHandler(awsSweepStepDeps);
