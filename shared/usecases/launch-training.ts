import { z } from 'zod';
import { AgentDockerSchema, type AgentConfigInput } from '../agent/agent-config';
import { buildAgentLaunchCommand } from '../agent/commands';
import { ecrRegistryOf } from '../agent/docker';
import { buildTrainingArgv } from '../domain/hyperparameters';
import type { NodeState, RunRecord } from '../domain/run-record';
import { agentArgvFor, agentNodeConfig, rendezvousIdFor } from '../agent/node';
import type { RunSpec } from '../domain/run-spec';
import { PrecheckFailedError, RunCancelledError } from '../errors';
import { runPrefix } from '../ports/artifacts';
import type { Catalog, ImageEntry } from '../ports/catalog';
import { requireControlEndpoint, type StepDeps } from './step-deps';
import { requireRun } from './step-event';
import { RunIdSchema } from './train-run-state';

export const LaunchTrainingEventSchema = z.object({
  runId: RunIdSchema,
  attempt: z.number().int().min(1),
  instanceId: z.string().min(1),
  resumeFrom: z.string().nullable(),
  /** `$$.Task.Token` of the waiting LaunchTraining state. */
  taskToken: z.string().min(1),
});
export type LaunchTrainingEvent = z.infer<typeof LaunchTrainingEventSchema>;

/** A run's spec and its owner, whose catalog its image is looked up in. */
export type OwnedSpec = Pick<RunRecord, 'owner' | 'spec'>;

/** The catalog lookup a `docker: "auto"` or `docker.build` run needs (the image built for its bundle). */
export interface ImageLookupDeps {
  catalog?: Pick<Catalog, 'getImage'>;
  /**
   * A registry host besides ECR's whose images need a login with `aws ecr get-login-password`:
   * the loopback registry that stands in for ECR on the local backend.
   */
  loginRegistry?: string;
}

/** The registry an image must be logged in to before its pull: ECR, or the deployment's own. */
function loginRegistryOf(image: string, deps: ImageLookupDeps): string | undefined {
  const host = image.split('/')[0];
  return ecrRegistryOf(image) ?? (deps.loginRegistry !== undefined && host === deps.loginRegistry ? host : undefined);
}

/** `runctl submit` uploads bundles content-addressed: `…/<sha256>.tar.gz`, the key build-image catalogues under. */
const CONTENT_ADDRESSED = /\/([0-9a-f]{64})\.tar\.gz$/;

/** What a `docker: "auto"`/`docker.build` run needs built: its bundle's image, from this Dockerfile when named. */
export interface ImageRequirement {
  bundleSha: string;
  /** The spec's `docker.build.dockerfile`; undefined for `docker: "auto"` (any Dockerfile found). */
  dockerfile?: string;
}

/**
 * The image a run needs built, or undefined when it trains on the host or in the image it names.
 * A bundle that is not content-addressed cannot be matched to an image: Run.PrecheckFailed.
 */
export function imageRequirement(spec: RunSpec): ImageRequirement | undefined {
  const docker = spec.docker;
  if (docker === undefined || (docker !== 'auto' && docker.image !== undefined)) return undefined;
  const bundleSha = CONTENT_ADDRESSED.exec(spec.code.bundle)?.[1];
  if (bundleSha === undefined) {
    throw new PrecheckFailedError(
      `docker needs an image built from the code bundle, but ${spec.code.bundle} is not named <sha256>.tar.gz (as \`runctl submit\` uploads it); set docker.image instead`,
    );
  }
  return { bundleSha, dockerfile: docker === 'auto' ? undefined : docker.build?.dockerfile };
}

/** Whether a catalogued image was built the way the run asks (from its Dockerfile, when it names one). */
export function satisfies(entry: ImageEntry, requirement: ImageRequirement): boolean {
  return requirement.dockerfile === undefined || entry.dockerfile === requirement.dockerfile;
}

/**
 * The image to train in: the spec's own, or the one build-image recorded for this code bundle in
 * the run owner's catalog (EnsureImage built it before the instance was provisioned, so a miss
 * here is a catalog that changed under the run). Another owner's image of the bundle is never used.
 */
async function resolveImage(run: OwnedSpec, deps: ImageLookupDeps): Promise<string | undefined> {
  const { spec } = run;
  const docker = spec.docker;
  if (docker === undefined) return undefined;
  if (docker !== 'auto' && docker.image !== undefined) return docker.image;
  const requirement = imageRequirement(spec);
  if (requirement === undefined) return undefined;
  const { bundleSha, dockerfile } = requirement;
  const buildFirst = `build it with \`runctl images build\` (POST /images {"bundle": "${spec.code.bundle}"}), then submit again`;
  if (deps.catalog === undefined) throw new PrecheckFailedError(`No image catalog is configured for this step; set docker.image, or ${buildFirst}`);
  const entry = await deps.catalog.getImage(run.owner, bundleSha);
  if (entry === undefined) throw new PrecheckFailedError(`No image has been built for code bundle ${bundleSha}: ${buildFirst}`);
  if (!satisfies(entry, requirement)) {
    throw new PrecheckFailedError(
      `The image of code bundle ${bundleSha} was built from ${entry.dockerfile}, not ${dockerfile}: rebuild it with POST /images {"bundle": "${spec.code.bundle}", "dockerfile": "${dockerfile}", "rebuild": true}`,
    );
  }
  return entry.imageUri;
}

/**
 * The agent's `docker` settings: the image, the ECR registry to log in to, and the run's data
 * targets (read-write) and dataset volume (read-only) to mount. Undefined for a run on the host.
 */
export async function agentDockerConfig(run: OwnedSpec, region: string, deps: ImageLookupDeps): Promise<z.infer<typeof AgentDockerSchema> | undefined> {
  const { spec } = run;
  const image = await resolveImage(run, deps);
  if (image === undefined) return undefined;
  const registry = loginRegistryOf(image, deps);
  const mounts = [
    ...spec.data.map((d) => ({ path: d.target, readOnly: false })),
    ...(spec.volume === undefined ? [] : [{ path: spec.volume.mountPath, readOnly: true }]),
  ];
  const parsed = AgentDockerSchema.safeParse({
    image,
    registry,
    region: registry === undefined ? undefined : (/\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/.exec(registry)?.[1] ?? region),
    mounts,
    gpus: spec.docker === 'auto' ? 'auto' : spec.docker?.gpus,
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new PrecheckFailedError(`docker: ${issue?.path.join('.') ?? ''} ${issue?.message ?? 'is not usable'}`.trim());
  }
  return parsed.data;
}

/**
 * LaunchTraining: stores the task token on the run record (the agent routes relay the agent's
 * callbacks with it, so it never reaches the instance, a command text, a log or a tag), then starts the agent detached through SSM and
 * returns. The execution waits for the agent's callback at no cost per hour.
 */
export async function launchTraining(event: LaunchTrainingEvent, deps: StepDeps & ImageLookupDeps): Promise<{ commandId: string }> {
  const { runId, attempt, instanceId } = event;
  const record = await requireRun(deps.store, runId);
  const spec = record.spec;
  // Before the token is stored: a run whose image is missing fails its prechecks, not its training.
  const docker = await agentDockerConfig(record, deps.config.region, deps);
  await deps.store.transition(runId, ['STARTING', 'ATTACHING_VOLUME', 'PREFETCHING', 'TRAINING'], 'TRAINING', {
    statusReason: `Training on ${instanceId} (attempt ${attempt}${docker ? ` in ${docker.image}` : ''}${event.resumeFrom ? `, resuming from ${event.resumeFrom}` : ''})`,
  });
  // Before the command: the agent's first heartbeat is relayed with the token of its attempt.
  await deps.store.setTaskToken(runId, attempt, event.taskToken);
  // A cancel that landed between TRAINING and the token found no token to signal. Both are
  // conditional writes on one item: whichever came second sees the other, so re-reading here
  // catches every cancel that the cancel handler could not deliver.
  const current = await requireRun(deps.store, runId);
  if (current.status === 'CANCELLING') {
    throw new RunCancelledError(`Run ${runId} was cancelled while attempt ${attempt} was being launched; the agent was not started`);
  }
  await deps.store.updateAttempt(runId, attempt, { trainingStartedAt: deps.clock().toISOString() });
  const nodes = record.attempts.find((a) => a.attempt === attempt && a.instanceId === instanceId)?.nodes;
  if (nodes !== undefined) return launchNodes(record, { runId, attempt, resumeFrom: event.resumeFrom, docker }, nodes, deps);
  const command = buildAgentLaunchCommand(agentConfigFor(spec, { runId, attempt, resumeFrom: event.resumeFrom, docker }, deps.config));
  const commandId = await deps.compute.sendCommand(instanceId, command, {
    comment: `runctl train ${runId} attempt ${attempt}`,
  });
  return { commandId };
}

/**
 * Every node of a multi-node attempt gets its own agent: the same config but for its `node`
 * block (its rank, rank 0's private address, the attempt's rendezvous id). The commands go out
 * in parallel; each command id is kept on its node. On the local backend every run shares one
 * loopback, so the rendezvous port is the attempt's own (`loopbackRendezvousPort`), not the spec's.
 */
async function launchNodes(
  record: RunRecord,
  attempt: { runId: string; attempt: number; resumeFrom: string | null; docker: z.infer<typeof AgentDockerSchema> | undefined },
  nodes: readonly NodeState[],
  deps: StepDeps,
): Promise<{ commandId: string }> {
  const masterAddr = nodes[0]?.privateIp;
  if (masterAddr === undefined) throw new Error(`Run ${attempt.runId} attempt ${attempt.attempt}: rank 0 has no private address`);
  const rendezvousId = rendezvousIdFor(attempt.runId, attempt.attempt);
  const base = agentConfigFor(record.spec, attempt, deps.config);
  const masterPort = deps.config.loopbackRendezvous === true ? loopbackRendezvousPort(attempt.runId, attempt.attempt) : undefined;
  const commandIds = await Promise.all(
    nodes.map(async (node) => {
      const config: AgentConfigInput = {
        ...base,
        argv: agentArgvFor(record.spec),
        node: { ...agentNodeConfig(record.spec, { rank: node.rank, masterAddr, rendezvousId }), ...(masterPort === undefined ? {} : { masterPort }) },
      };
      const commandId = await deps.compute.sendCommand(node.instanceId, buildAgentLaunchCommand(config), {
        comment: `runctl train ${attempt.runId} attempt ${attempt.attempt} node ${node.rank}`,
      });
      await deps.store.updateNode(attempt.runId, attempt.attempt, node.rank, { agentCommandId: commandId });
      return commandId;
    }),
  );
  return { commandId: commandIds[0] ?? '' };
}

/**
 * The rendezvous port of an attempt on the local backend: every local node shares 127.0.0.1,
 * so two runs (or two attempts, one of whose ports may linger in TIME_WAIT) cannot both use the
 * spec's port. Derived from the run id and attempt into 30000–39999, a range the local backend's
 * own servers do not use.
 */
export function loopbackRendezvousPort(runId: string, attempt: number): number {
  let hash = 0;
  for (const char of `${runId}#${attempt}`) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return 30_000 + (hash % 10_000);
}

/**
 * The agent's configuration for one attempt of a run, built from the stored spec alone (plus
 * the stack's settings): a spec the API accepted always yields one (tested by generating specs).
 */
export function agentConfigFor(
  spec: RunSpec,
  attempt: { runId: string; attempt: number; resumeFrom: string | null; docker: z.infer<typeof AgentDockerSchema> | undefined },
  config: Pick<StepDeps['config'], 'region' | 'bucket' | 'heartbeatSeconds' | 'controlEndpoint'>,
): AgentConfigInput {
  const { runId } = attempt;
  return {
    runId,
    attempt: attempt.attempt,
    region: config.region,
    bucket: config.bucket,
    runPrefix: runPrefix(runId),
    codeBundle: spec.code.bundle,
    resumeFrom: attempt.resumeFrom ?? undefined,
    argv: buildTrainingArgv(spec),
    env: spec.env,
    secrets: spec.secrets,
    checkpoint: spec.checkpoint,
    metricDefinitions: spec.metricDefinitions,
    docker: attempt.docker,
    heartbeatSeconds: config.heartbeatSeconds,
    control: { endpoint: requireControlEndpoint(config) },
  };
}
