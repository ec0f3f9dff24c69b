import { z } from 'zod';

/** Answers of the experiment, sweep and model routes, as the CLI reads them. */

const NumberMap = z.record(z.string(), z.number());

export const ExperimentSchema = z.looseObject({
  name: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  runs: z.number(),
  objective: z.object({ metric: z.string(), goal: z.enum(['minimize', 'maximize']) }).optional(),
});
export type Experiment = z.infer<typeof ExperimentSchema>;

export const ExperimentsPageSchema = z.object({ experiments: z.array(ExperimentSchema), nextToken: z.string().optional() });

export const ExperimentRunSchema = z.looseObject({
  runId: z.string(),
  name: z.string(),
  status: z.string(),
  createdAt: z.string(),
  costUsd: z.number(),
  hyperparameters: z.record(z.string(), z.string()),
  metrics: z.object({ final: NumberMap, min: NumberMap, max: NumberMap, points: z.number() }).optional(),
  sweep: z.object({ sweepId: z.string(), trial: z.number() }).optional(),
});
export type ExperimentRun = z.infer<typeof ExperimentRunSchema>;

export const ExperimentRunsPageSchema = z.object({
  experiment: ExperimentSchema,
  runs: z.array(ExperimentRunSchema),
  nextToken: z.string().optional(),
});
