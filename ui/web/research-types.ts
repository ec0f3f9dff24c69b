/** The experiment, sweep, model and outputs answers as the dashboard reads them (docs/sweeps.md, docs/models.md). */

export type NumberMap = Record<string, number>;

export interface Objective {
  metric: string;
  goal: 'minimize' | 'maximize';
}

export interface Experiment {
  name: string;
  createdAt: string;
  updatedAt: string;
  runs: number;
}

export interface ExperimentsPage {
  experiments: Experiment[];
  nextToken?: string;
}

export interface ExperimentRun {
  runId: string;
  name: string;
  status: string;
  statusReason?: string;
  createdAt: string;
  costUsd: number;
  hyperparameters: Record<string, string>;
  metrics?: { final: NumberMap; min: NumberMap; max: NumberMap; points: number };
  sweep?: { sweepId: string; trial: number };
}

export interface ExperimentRunsPage {
  experiment: Experiment;
  runs: ExperimentRun[];
  nextToken?: string;
}

export interface Sweep {
  sweepId: string;
  experiment: string;
  status: string;
  statusReason?: string;
  spec: {
    name: string;
    objective: Objective;
    maxParallel: number;
    maxTrials?: number;
    maxCostUsd?: number;
    search: { grid?: Record<string, unknown[]>; random?: Record<string, string>; trials?: number; seed?: number };
    earlyStopping?: { rule: string; stepKey?: string; minSteps?: number; minTrials?: number };
  };
  trials: number;
  launched: number;
  finished: number;
  skipped: number;
  committedUsd: number;
  costUsd: number;
  best?: { runId: string; trial: number; value: number };
  createdAt: string;
  updatedAt: string;
}

export interface Trial {
  sweepId: string;
  trial: number;
  runId: string;
  state: 'LAUNCHED' | 'SKIPPED' | 'RECORDED';
  hyperparameters: Record<string, string>;
  reservedUsd: number;
  costUsd?: number;
  runStatus?: string;
  best?: number;
  reason?: string;
}

export interface SweepPage {
  sweep: Sweep;
  trials: Trial[];
  nextToken?: string;
}

/** Sweep statuses that do not change any more. */
export const SWEEP_TERMINAL: ReadonlySet<string> = new Set(['SUCCEEDED', 'STOPPED', 'FAILED']);

export interface ModelFile {
  path: string;
  size: number;
  sha256: string;
}

export interface ModelVersion {
  name: string;
  version: number;
  createdAt: string;
  files: ModelFile[];
  lineage: {
    runId: string;
    bundleDigest?: string;
    dataSources: Array<{ source: string; target: string }>;
    dataManifests?: string[];
    hyperparameters: Record<string, string>;
    finalMetrics: NumberMap;
    imageDigest?: string;
  };
}

export interface Model {
  name: string;
  latestVersion: number;
  stages: NumberMap;
  createdAt: string;
  updatedAt: string;
}

export interface ModelsPage {
  models: Model[];
  nextToken?: string;
}

export interface StageChange {
  stage: string;
  version: number;
  previous?: number;
  at: string;
}

export interface ModelDetail {
  model: Model;
  versions: ModelVersion[];
  history: StageChange[];
}

export interface OutputFile {
  path: string;
  size: number;
  lastModified: string;
}

export interface OutputList {
  outputs: OutputFile[];
  manifest?: { manifestUri: string; uri: string; attempt: number; files: number; bytes: number };
  nextToken?: string;
}
