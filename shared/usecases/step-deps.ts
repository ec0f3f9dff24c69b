import type { Artifacts } from '../ports/artifacts';
import type { Catalog } from '../ports/catalog';
import type { Compute, NodeNetworks } from '../ports/compute';
import type { RunStore } from '../ports/run-store';
import type { Volumes } from '../ports/volumes';

/** Settings of the train-run steps; the AWS composition root reads them from the environment. */
export interface StepConfig {
  /** Bucket holding `runs/<runId>/…`. */
  bucket: string;
  /** Runs table. */
  table: string;
  region: string;
  /**
   * Parameter Store / Secrets Manager path under which owners keep secrets (`custom.secretsPrefix`):
   * ValidateRun refuses a secret outside the owner's part of it, and any secret when it is unset.
   */
  secretsPrefix?: string;
  /**
   * Base URL of the agent routes (runctl's HTTP API): where a training instance takes its run's
   * credentials and reports. Set for the steps that command an instance (LaunchTraining,
   * PrefetchData); the record-only steps leave it out.
   */
  controlEndpoint?: string;
  /**
   * Every instance is on one loopback (the local backend): a multi-node attempt's rendezvous
   * port is its own (`loopbackRendezvousPort`) instead of the spec's `distributed.port`.
   */
  loopbackRendezvous?: boolean;
  /**
   * How a multi-node run recovers from a lost node: `replace-lost` (the default) keeps the
   * healthy nodes and replaces the lost ones; `relaunch-all` releases every node and launches a
   * whole fleet, as a cluster that is relaunched on any preemption does. Kept for the benchmark's
   * comparison (`npm run bench -- nodes`).
   */
  nodeRecovery?: 'replace-lost' | 'relaunch-all';
  /** How often the agent heartbeats; the ASL's HeartbeatSeconds allows several missed beats. */
  heartbeatSeconds: number;
  /** CheckInstance calls before Instance.NotReady (15 s apart); fewer, further apart, when the run's event budget is smaller. */
  readinessMaxChecks: number;
  /** Pause between capacity retries; longer when the run's event budget allows fewer tries (attempt-loops.ts). */
  capacityRetrySeconds: number;
  /** CheckPrefetch calls before the copy is declared stalled (10 s apart); fewer, further apart, when the run's event budget is smaller. */
  prefetchMaxPolls: number;
}

/** The ports every step use case takes. Use cases never build AWS clients themselves. */
export interface StepDeps {
  store: RunStore;
  compute: Compute;
  artifacts: Artifacts;
  /**
   * Pre-warmed volumes and built images: ProvisionInstance pins a volume run to its free
   * volume's AZ, LaunchTraining finds the image of a `docker: "auto"`/`build` run. Optional so
   * the local backend and tests that need neither can leave them out; the AWS composition
   * always sets both (without them no run is pinned and every such docker run fails its prechecks).
   */
  catalog?: Catalog;
  /** EBS volumes: ProvisionInstance reads where the catalogued volume is and whether it is free. */
  volumes?: Volumes;
  /**
   * The per-run network of multi-node runs (placement group, node security group): created by
   * ProvisionInstance, deleted by ReleaseResources at the end of the run. Required for a run of
   * more than one node; the AWS composition and the local backend always set it.
   */
  networks?: NodeNetworks;
  clock: () => Date;
  config: StepConfig;
}

/** What the steps that never touch an instance take (ValidateRun, FinalizeArtifacts, DecideRecovery, FinishRun). */
export type RecordStepDeps = Pick<StepDeps, 'store' | 'artifacts' | 'clock' | 'config'>;

/** Defaults for the step settings that are not deployment-specific. */
export const DEFAULT_STEP_TUNING = {
  heartbeatSeconds: 60,
  readinessMaxChecks: 40,
  capacityRetrySeconds: 120,
  prefetchMaxPolls: 2160,
} as const;

/** The agent routes' base URL, which every command to a training instance carries. */
export function requireControlEndpoint(config: Pick<StepConfig, 'controlEndpoint'>): string {
  if (config.controlEndpoint === undefined) throw new Error('Environment variable AGENT_CONTROL_ENDPOINT is required');
  return config.controlEndpoint;
}
