import { z } from 'zod';
import { awsSweepStepDeps, type SweepStepDeps } from '../../shared/composition/sweeps';
import { stepHandler } from '../../shared/composition/task-handler';
import { startSweep, SweepIdSchema } from '../../shared/usecases/sweeps';

const EventSchema = z.object({ sweepId: SweepIdSchema, executionArn: z.string().optional() });

/** StartSweep task of the sweep machine: the sweep is RUNNING; its trials are numbered for the Map. */
export const createHandler = (deps: SweepStepDeps | (() => SweepStepDeps)) => stepHandler('StartSweep', EventSchema, deps, startSweep);

export const handler = createHandler(awsSweepStepDeps);
