import { z } from 'zod';
import { MetricsSummarySchema } from './experiment';
import { RunSpecSchema } from './run-spec';
import { RUN_STATUSES } from './run-status';

/**
 * The run record and its parts, as zod schemas with the types inferred from them: the store
 * reads every item back through `RunRecordSchema`, so a stored record and the type cannot drift.
 */

/** Why an attempt ended. */
export const ATTEMPT_END_REASONS = [
  'SUCCEEDED',
  /** The agent checkpointed on the spot warning and reported it (Spot.Interrupted). */
  'SPOT_INTERRUPTED',
  /** A spot warning asked for a checkpoint, but the instance was gone before the agent reported one. */
  'LOST_DURING_CHECKPOINT',
  'INSTANCE_LOST',
  'HEARTBEAT_TIMEOUT',
  'NOT_READY',
  'TRAINING_FAILED',
  'CANCELLED',
  'BUDGET',
  'CONTROLLER_ERROR',
] as const;
export type AttemptEndReason = (typeof ATTEMPT_END_REASONS)[number];

/**
 * The instance launched for the next attempt while this one checkpointed (provision on warning):
 * it boots and copies the data during the upload, and the next ProvisionInstance adopts it.
 */
export const ReplacementSchema = z.object({
  /** The attempt it was launched for (this one + 1), its RunInstances client token's suffix. */
  attempt: z.number().int().positive(),
  instanceId: z.string(),
  instanceType: z.string(),
  availabilityZone: z.string(),
  spot: z.boolean(),
  launchedAt: z.string(),
  /** A multi-node run: the rank of the warned node it replaces, launched beside the nodes kept (its subnet and address). */
  rank: z.number().int().min(0).optional(),
  subnetId: z.string().optional(),
  privateIp: z.string().optional(),
  /**
   * What launched it: the spot warning, or a rebalance recommendation (with
   * `preProvisionOnRebalance`; without `checkpointOnRebalance` a handover: the attempt trains on
   * until this is ready). Absent on records from before it was kept: the warning.
   */
  trigger: z.enum(['warning', 'rebalance']).optional(),
  /** EC2 running and the SSM agent online. */
  readyAt: z.string().optional(),
  /** The SSM command copying the run's data onto it: a run that adopts it mid-copy waits for this one instead of copying again. */
  copyCommandId: z.string().optional(),
  /** The run's data copied onto it. */
  dataReadyAt: z.string().optional(),
  /** Terminated without being adopted (the old attempt finished, a cancel, a failure): billed until then. */
  releasedAt: z.string().optional(),
});
export type Replacement = z.infer<typeof ReplacementSchema>;

/** How one node of a multi-node attempt ended, as its agent reported it. */
export const NodeOutcomeSchema = z.object({
  kind: z.enum(['SUCCEEDED', 'FAILED']),
  at: z.string(),
  /** FAILED: the ASL error name the agent reported (Training.Failed, Spot.Interrupted, …) and its cause. */
  error: z.string().optional(),
  cause: z.string().optional(),
  /** SUCCEEDED: the agent's task output (JSON text; rank 0's is the attempt's). */
  output: z.string().optional(),
});
export type NodeOutcome = z.infer<typeof NodeOutcomeSchema>;

/**
 * One node of a multi-node attempt (docs/multi-node.md). Stored in rank order: `nodes[r]` is
 * rank r. A node kept from the previous attempt (its instance was healthy when another node was
 * lost) carries the attempt it was launched for in `launchedForAttempt`.
 */
export const NodeSchema = z.object({
  rank: z.number().int().min(0),
  instanceId: z.string(),
  instanceType: z.string(),
  availabilityZone: z.string(),
  subnetId: z.string().optional(),
  spot: z.boolean(),
  privateIp: z.string().optional(),
  /** The attempt whose launch created the instance (earlier than this attempt for a kept node). */
  launchedForAttempt: z.number().int().positive(),
  launchedAt: z.string(),
  /** Readiness (EC2 running, SSM online) and the data copy, per node. */
  readyAt: z.string().optional(),
  copyCommandId: z.string().optional(),
  dataReadyAt: z.string().optional(),
  /** The SSM command that started this node's agent. */
  agentCommandId: z.string().optional(),
  lastHeartbeatAt: z.string().optional(),
  outcome: NodeOutcomeSchema.optional(),
  /**
   * The spot warning for this node's instance (or the rebalance recommendation a run that
   * checkpoints on one acted on), or its loss: this node is the one replaced.
   */
  warnedAt: z.string().optional(),
  lostAt: z.string().optional(),
  /** When its instance was terminated (a lost node at recovery; every node at the run's end). */
  releasedAt: z.string().optional(),
});
export type NodeState = z.infer<typeof NodeSchema>;

/** One attempt: one instance, from launch to release. */
export const AttemptSchema = z.object({
  /** 1-based attempt number; also the suffix of the RunInstances ClientToken. */
  attempt: z.number().int().positive(),
  instanceId: z.string().optional(),
  instanceType: z.string().optional(),
  availabilityZone: z.string().optional(),
  spot: z.boolean(),
  /** USD per hour the attempt is billed at (spot price or on-demand price). */
  pricePerHourUsd: z.number().optional(),
  startedAt: z.string(),
  endedAt: z.string().optional(),
  endReason: z.enum(ATTEMPT_END_REASONS).optional(),
  /** S3 URI of the checkpoint this attempt resumed from. */
  resumeFrom: z.string().optional(),
  /**
   * When the spot interruption warning for this attempt's instance arrived, or when a handover
   * asked it to stop (its replacement, launched on a rebalance recommendation, was ready): when
   * training was told to stop, where each interruption's overhead starts.
   */
  warnedAt: z.string().optional(),
  /** When this attempt's last checkpoint was complete in S3 after the warning (its agent's callback). */
  checkpointCompletedAt: z.string().optional(),
  /** How far that checkpoint's upload was at the agent's last heartbeat (`at`). */
  checkpointUpload: z.object({ bytes: z.number(), totalBytes: z.number(), at: z.string() }).optional(),
  /** The next attempt's instance, launched on the warning. */
  replacement: ReplacementSchema.optional(),
  /** When LaunchTraining handed this attempt to its agent: after an interruption, training resumes here. */
  trainingStartedAt: z.string().optional(),
  /**
   * A multi-node attempt's nodes in rank order (absent on a single-node run). Rank 0's instance
   * is also the attempt's `instanceId`, so everything that reads one instance per attempt sees
   * the rendezvous host.
   */
  nodes: z.array(NodeSchema).optional(),
});
export type Attempt = z.infer<typeof AttemptSchema>;

/**
 * Every instance an attempt trains on: its nodes not yet released (a multi-node attempt), or
 * its one instance. What a stop signal goes to, what the reconciler counts as owned.
 */
export function attemptInstanceIds(attempt: Pick<Attempt, 'instanceId' | 'nodes'>): string[] {
  if (attempt.nodes !== undefined) return attempt.nodes.filter((n) => n.releasedAt === undefined).map((n) => n.instanceId);
  return attempt.instanceId === undefined ? [] : [attempt.instanceId];
}

/** The node of an attempt on `instanceId`, if it is a multi-node attempt's and not released. */
export function nodeOnInstance(attempt: Pick<Attempt, 'nodes'> | undefined, instanceId: string): NodeState | undefined {
  return attempt?.nodes?.find((n) => n.instanceId === instanceId && n.releasedAt === undefined);
}

/** Pointer to a complete checkpoint in S3. */
export const CheckpointRefSchema = z.object({
  uri: z.string(),
  attempt: z.number().int().positive(),
  createdAt: z.string(),
  step: z.number().optional(),
  epoch: z.number().optional(),
});
export type CheckpointRef = z.infer<typeof CheckpointRefSchema>;

/** A status the run entered, and when: the history the timeline is drawn from. */
export const PhaseSchema = z.object({ status: z.enum(RUN_STATUSES), at: z.string() });
export type Phase = z.infer<typeof PhaseSchema>;

/** The run record: the index of a run that the API, event handlers and reconciler read. */
export const RunRecordSchema = z.object({
  runId: z.string().min(1),
  /** IAM identity (ARN) of the submitter; only it can see the run. */
  owner: z.string().min(1),
  spec: RunSpecSchema,
  /** sha256 of the normalised spec, to detect a client token reused with another spec. */
  specHash: z.string(),
  clientToken: z.string().optional(),
  status: z.enum(RUN_STATUSES),
  /** Why the run is in its status, in words a user can act on. */
  statusReason: z.string().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
  executionArn: z.string().optional(),
  attempts: z.array(AttemptSchema),
  /** Every status the run entered after PENDING, oldest first (a repeat means a retried step). */
  phases: z.array(PhaseSchema).optional(),
  /** Step Functions task token of the live LaunchTraining wait, with the attempt it belongs to. */
  taskToken: z.string().optional(),
  taskTokenAttempt: z.number().int().positive().optional(),
  /**
   * Step Functions task token of the AwaitReplacement wait: the next attempt waits for the
   * replacement launched on the warning, and prepare-replacement ends the wait the moment the
   * replacement is ready with its data (or given up). Never shown, like `taskToken`.
   */
  replacementToken: z.string().optional(),
  latestCheckpoint: CheckpointRefSchema.optional(),
  costUsd: z.number(),
  /** Interruptions and user failures counted against the spec's recovery budgets. */
  interruptions: z.number().int().min(0),
  userFailures: z.number().int().min(0),
  /** Schedule that started the run, if any. */
  scheduleId: z.string().optional(),
  /** The sweep that launched the run as its `trial`-th trial (0-based), if any. */
  sweep: z.object({ sweepId: z.string(), trial: z.number().int().min(0) }).optional(),
  /** Final, smallest and largest value of each metric, written when the run ends. */
  metrics: MetricsSummarySchema.optional(),
  /** A multi-node run's placement group and node security group (NodeNetworks), deleted when it ends. */
  network: z.object({ placementGroup: z.string().optional(), securityGroupId: z.string().optional() }).optional(),
  /** A cancel was asked for; `force` skips the checkpoint; `earlyStop`: by a sweep's early-stopping rule. */
  cancelRequested: z.object({ at: z.string(), force: z.boolean(), earlyStop: z.boolean().optional() }).optional(),
});
export type RunRecord = z.infer<typeof RunRecordSchema>;

/** The fields `GET /runs` returns for each run. */
export type RunSummary = Pick<
  RunRecord,
  'runId' | 'owner' | 'status' | 'statusReason' | 'createdAt' | 'updatedAt' | 'costUsd'
> & { name: string; attempts: number };

/** Projects a record onto its summary. */
export function summarize(record: RunRecord): RunSummary {
  return {
    runId: record.runId,
    owner: record.owner,
    name: record.spec.name,
    status: record.status,
    statusReason: record.statusReason,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    costUsd: record.costUsd,
    attempts: record.attempts.length,
  };
}
