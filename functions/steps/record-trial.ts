import { z } from 'zod';
import { awsSweepStepDeps, type SweepStepDeps } from '../../shared/composition/sweeps';
import { stepHandler } from '../../shared/composition/task-handler';
import { recordTrial, SweepIdSchema } from '../../shared/usecases/sweeps';

const EventSchema = z.object({ sweepId: SweepIdSchema, trial: z.number().int().min(0) });

/** RecordTrial task of the sweep machine: how the trial's run ended, its cost and best objective. */
export const createHandler = (deps: SweepStepDeps | (() => SweepStepDeps)) => stepHandler('RecordTrial', EventSchema, deps, recordTrial);

export const handler = createHandler(awsSweepStepDeps);
