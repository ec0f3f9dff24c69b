import { z } from 'zod';
import { SweepSpecSchema } from '../domain/sweep-spec';
import type { ListOptions, Page } from './run-store';

/** Where a sweep is. Trials have run statuses of their own. */
export const SWEEP_STATUSES = [
  /** Accepted; the sweep execution is starting. */
  'PENDING',
  /** Trials are being launched and run. */
  'RUNNING',
  /** A stop was asked for: no trial is launched any more, the running ones are being stopped. */
  'STOPPING',
  /** Every trial ran (or was skipped by the budget). */
  'SUCCEEDED',
  /** Stopped by its owner. */
  'STOPPED',
  /** The sweep execution itself failed; the reason says why. */
  'FAILED',
] as const;
export type SweepStatus = (typeof SWEEP_STATUSES)[number];

export const SweepRecordSchema = z.object({
  sweepId: z.string(),
  owner: z.string(),
  spec: SweepSpecSchema,
  experiment: z.string(),
  status: z.enum(SWEEP_STATUSES),
  statusReason: z.string().optional(),
  /** Trials planned. */
  trials: z.number().int().min(0),
  launched: z.number().int().min(0),
  finished: z.number().int().min(0),
  skipped: z.number().int().min(0),
  /** Dollars held for running trials (their caps) plus what the ended ones cost. */
  committedUsd: z.number(),
  /** Sum of the ended trials' costs. */
  costUsd: z.number(),
  best: z.object({ runId: z.string(), trial: z.number().int(), value: z.number() }).optional(),
  executionArn: z.string().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type SweepRecord = z.infer<typeof SweepRecordSchema>;

export const TRIAL_STATES = ['LAUNCHED', 'SKIPPED', 'RECORDED'] as const;

export const TrialItemSchema = z.object({
  sweepId: z.string(),
  trial: z.number().int().min(0),
  runId: z.string(),
  state: z.enum(TRIAL_STATES),
  hyperparameters: z.record(z.string(), z.string()),
  reservedUsd: z.number(),
  costUsd: z.number().optional(),
  runStatus: z.string().optional(),
  /** Best objective the trial reached, when it reported one. */
  best: z.number().optional(),
  reason: z.string().optional(),
});
export type TrialItem = z.infer<typeof TrialItemSchema>;

/** The answer of a trial's reservation. */
export type Reservation = { outcome: 'launch' } | { outcome: 'skip'; reason: string };

/** Sweep records and their trial items. Every status change and every dollar held is a conditional write. */
export interface Sweeps {
  create(record: SweepRecord): Promise<void>;
  get(sweepId: string): Promise<SweepRecord | undefined>;
  listByOwner(owner: string, options?: ListOptions): Promise<Page<SweepRecord>>;
  listByStatus(status: SweepStatus, options?: ListOptions): Promise<Page<SweepRecord>>;
  /** Moves the sweep from one of `from` to `to`; throws StatusConflictError otherwise. */
  transition(sweepId: string, from: readonly SweepStatus[], to: SweepStatus, patch?: Partial<Pick<SweepRecord, 'statusReason' | 'executionArn' | 'costUsd' | 'best'>>): Promise<SweepRecord>;
  /**
   * Holds `reservedUsd` of the budget for a trial and records it LAUNCHED, if the sweep is still
   * RUNNING and the hold keeps its commitments within `budgetUsd`; else records it SKIPPED.
   * A retry for a trial already recorded answers as the first call did.
   */
  reserveTrial(trial: Omit<TrialItem, 'state'>, budgetUsd: number | undefined): Promise<Reservation>;
  /** Records how a LAUNCHED trial ended and gives back what it held beyond its cost; a repeat is a no-op. */
  recordTrial(sweepId: string, trial: number, outcome: { costUsd: number; runStatus: string; best?: number }): Promise<void>;
  listTrials(sweepId: string, options?: ListOptions): Promise<Page<TrialItem>>;
}
