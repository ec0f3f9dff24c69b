import { z } from 'zod';

/**
 * The API's answers as the CLI reads them: only the fields it shows are checked, the rest is
 * kept (looseObject) so `--json` prints everything the API said.
 */

export const AttemptSchema = z.looseObject({
  attempt: z.number(),
  instanceId: z.string().optional(),
  instanceType: z.string().optional(),
  availabilityZone: z.string().optional(),
  spot: z.boolean(),
  pricePerHourUsd: z.number().optional(),
  startedAt: z.string(),
  endedAt: z.string().optional(),
  endReason: z.string().optional(),
  resumeFrom: z.string().optional(),
  warnedAt: z.string().optional(),
  checkpointCompletedAt: z.string().optional(),
  checkpointUpload: z.looseObject({ bytes: z.number(), totalBytes: z.number(), at: z.string() }).optional(),
  trainingStartedAt: z.string().optional(),
  /** A multi-node attempt's nodes, in rank order. */
  nodes: z
    .array(
      z.looseObject({
        rank: z.number(),
        instanceId: z.string(),
        instanceType: z.string(),
        availabilityZone: z.string(),
        spot: z.boolean(),
        launchedForAttempt: z.number(),
        readyAt: z.string().optional(),
        dataReadyAt: z.string().optional(),
        copyCommandId: z.string().optional(),
        agentCommandId: z.string().optional(),
        outcome: z.looseObject({ kind: z.string(), error: z.string().optional() }).optional(),
        warnedAt: z.string().optional(),
        lostAt: z.string().optional(),
        releasedAt: z.string().optional(),
      }),
    )
    .optional(),
  replacement: z
    .looseObject({
      attempt: z.number(),
      instanceId: z.string(),
      instanceType: z.string(),
      availabilityZone: z.string(),
      spot: z.boolean(),
      launchedAt: z.string(),
      readyAt: z.string().optional(),
      dataReadyAt: z.string().optional(),
      releasedAt: z.string().optional(),
    })
    .optional(),
});

export const CheckpointSchema = z.looseObject({
  id: z.string().optional(),
  uri: z.string(),
  attempt: z.number(),
  createdAt: z.string(),
  step: z.number().optional(),
  epoch: z.number().optional(),
  latest: z.boolean().optional(),
});

export const RunSchema = z.looseObject({
  runId: z.string(),
  status: z.string(),
  statusReason: z.string().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
  costUsd: z.number().default(0),
  spec: z.looseObject({
    name: z.string(),
    hyperparameters: z.record(z.string(), z.string()).default({}),
  }),
  attempts: z.array(AttemptSchema).default([]),
  latestCheckpoint: CheckpointSchema.optional(),
});
export type Run = z.infer<typeof RunSchema>;

export const RunSummarySchema = z.looseObject({
  runId: z.string(),
  name: z.string(),
  status: z.string(),
  statusReason: z.string().optional(),
  createdAt: z.string(),
  costUsd: z.number().default(0),
  attempts: z.number().default(0),
});
export const RunsPageSchema = z.looseObject({ runs: z.array(RunSummarySchema), nextToken: z.string().optional() });

export const UploadTicketSchema = z.looseObject({
  bundle: z.string(),
  exists: z.boolean(),
  uploadUrl: z.string().optional(),
  uploadHeaders: z.record(z.string(), z.string()).optional(),
});

export const LogChunkSchema = z.looseObject({
  attempt: z.number(),
  attempts: z.array(z.number()),
  offset: z.number(),
  nextOffset: z.number(),
  size: z.number(),
  text: z.string(),
});
export type LogChunk = z.infer<typeof LogChunkSchema>;

export const MetricPointSchema = z.record(z.string(), z.unknown());
export type MetricPoint = z.infer<typeof MetricPointSchema>;
export const MetricsPageSchema = z.looseObject({
  metrics: z.array(MetricPointSchema),
  nextToken: z.string().optional(),
  resumeToken: z.string(),
});

export const CheckpointListSchema = z.looseObject({
  checkpoints: z.array(CheckpointSchema),
  latest: z.string().optional(),
});

export const VolumeSchema = z.looseObject({
  datasetUri: z.string(),
  az: z.string(),
  sizeGiB: z.number(),
  volumeId: z.string(),
  snapshotId: z.string(),
  volumeType: z.string().optional(),
  bytes: z.number(),
  files: z.number(),
  createdAt: z.string(),
  prewarmId: z.string().optional(),
  claimedBy: z.string().optional(),
});
export type Volume = z.infer<typeof VolumeSchema>;
export const VolumesPageSchema = z.looseObject({ volumes: z.array(VolumeSchema), nextToken: z.string().optional() });

export const StartedPrewarmSchema = z.looseObject({
  prewarmId: z.string(),
  executionArn: z.string(),
  alreadyStarted: z.boolean(),
});

export const ImageSchema = z.looseObject({
  bundleSha: z.string(),
  repository: z.string(),
  imageUri: z.string(),
  digest: z.string(),
  dockerfile: z.string(),
  createdAt: z.string(),
});
/** POST /images: the image already built for the bundle, or the build execution started. */
export const BuildAnswerSchema = z.discriminatedUnion('status', [
  z.looseObject({ status: z.literal('built'), image: ImageSchema }),
  z.looseObject({
    status: z.literal('building'),
    buildId: z.string(),
    executionArn: z.string(),
    alreadyStarted: z.boolean(),
    bundleSha: z.string(),
  }),
]);
export type BuildAnswer = z.infer<typeof BuildAnswerSchema>;

/** An error answer: `{message, issues?}` from the handlers, `{message}` from API Gateway. */
export const ErrorBodySchema = z.object({
  message: z.string().optional(),
  Message: z.string().optional(),
  issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  requestId: z.string().optional(),
});

/** Terminal statuses, as the API reports them. */
export const TERMINAL = new Set(['SUCCEEDED', 'FAILED_USER', 'FAILED_PRECHECKS', 'FAILED_NO_CAPACITY', 'FAILED_CONTROLLER', 'CANCELLED', 'STOPPED_BUDGET', 'STOPPED_EARLY']);

/** GET /me: who the API takes the caller for, and where its runs' secrets must be kept. */
export const CallerSchema = z.looseObject({
  principal: z.string(),
  owner: z.string(),
  ownerKey: z.string(),
  secretsPrefix: z.string().nullable(),
});
export type Caller = z.infer<typeof CallerSchema>;
