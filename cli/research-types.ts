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

export const ModelFileSchema = z.looseObject({ path: z.string(), size: z.number(), sha256: z.string() });

export const ModelVersionSchema = z.looseObject({
  name: z.string(),
  version: z.number(),
  createdAt: z.string(),
  files: z.array(ModelFileSchema),
  lineage: z.looseObject({
    runId: z.string(),
    bundleDigest: z.string().optional(),
    dataSources: z.array(z.looseObject({ source: z.string(), target: z.string() })),
    hyperparameters: z.record(z.string(), z.string()),
    finalMetrics: NumberMap,
    imageDigest: z.string().optional(),
  }),
});
export type ModelVersion = z.infer<typeof ModelVersionSchema>;

export const ModelSchema = z.looseObject({
  name: z.string(),
  latestVersion: z.number(),
  stages: NumberMap,
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type Model = z.infer<typeof ModelSchema>;

export const ModelsPageSchema = z.object({ models: z.array(ModelSchema), nextToken: z.string().optional() });

export const StageChangeSchema = z.looseObject({ stage: z.string(), version: z.number(), previous: z.number().optional(), at: z.string() });

export const ModelDetailSchema = z.object({ model: ModelSchema, versions: z.array(ModelVersionSchema), history: z.array(StageChangeSchema) });
export type ModelDetail = z.infer<typeof ModelDetailSchema>;

export const ModelDownloadSchema = z.object({
  name: z.string(),
  version: z.number(),
  files: z.array(z.looseObject({ path: z.string(), size: z.number(), sha256: z.string().regex(/^[0-9a-f]{64}$/), url: z.string() })),
});
