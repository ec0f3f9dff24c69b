import { z } from 'zod';
import { awsSweepStepDeps, type SweepStepDeps } from '../../shared/composition/sweeps';
import { stepHandler } from '../../shared/composition/task-handler';
import { prepareTrial, SweepIdSchema } from '../../shared/usecases/sweeps';

const EventSchema = z.object({ sweepId: SweepIdSchema, trial: z.number().int().min(0) });

/** PrepareTrial task of the sweep machine: hold the trial's budget, record its run, answer its train-run input (or skip). */
export const createHandler = (deps: SweepStepDeps | (() => SweepStepDeps)) => stepHandler('PrepareTrial', EventSchema, deps, prepareTrial);

export const handler = createHandler(awsSweepStepDeps);
