import { join, resolve } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import * as awaitReplacement from '../functions/steps/await-replacement';
import * as checkInstance from '../functions/steps/check-instance';
import * as decideRecovery from '../functions/steps/decide-recovery';
import * as ensureImage from '../functions/steps/ensure-image';
import * as finalizeArtifacts from '../functions/steps/finalize-artifacts';
import * as finishRun from '../functions/steps/finish-run';
import * as launchTraining from '../functions/steps/launch-training';
import * as prepareReplacement from '../functions/steps/prepare-replacement';
import * as prefetchData from '../functions/steps/prefetch-data';
import * as provisionInstance from '../functions/steps/provision-instance';
import * as releaseResources from '../functions/steps/release-resources';
import * as validateRun from '../functions/steps/validate-run';
import * as instanceState from '../functions/events/instance-state';
import * as rebalance from '../functions/events/rebalance';
import * as spotWarning from '../functions/events/spot-warning';
import { DynamoAttemptSignals } from '../shared/adapters/dynamo-attempt-signals';
import { DynamoExperiments } from '../shared/adapters/dynamo-experiments';
import { DynamoModels } from '../shared/adapters/dynamo-models';
import { DynamoSweeps } from '../shared/adapters/dynamo-sweeps';
import { DynamoRunStore, runsDocumentClient } from '../shared/adapters/dynamo-run-store';
import { S3Artifacts } from '../shared/adapters/s3-artifacts';
import { S3ModelBlobs } from '../shared/adapters/s3-model-blobs';
import { apiLogger } from '../shared/composition/api';
import type { RunRecord } from '../shared/domain/run-record';
import { isTerminal, LIVE_STATUSES } from '../shared/domain/run-status';
import { ConflictError, NotFoundError, PrecheckFailedError } from '../shared/errors';
import { INSTANCE_STATES, type InstanceState } from '../shared/events/ec2-events';
import { cancelRun } from '../shared/usecases/cancel-run';
import type { ExperimentDeps } from '../shared/usecases/experiments';
import type { ModelDeps } from '../shared/usecases/models';
import { REPLACEMENT_TRIGGER_ACTIONS } from '../shared/usecases/instance-event';
import type { SweepControlDeps } from '../shared/usecases/sweep-control';
import { submitSweep, type SubmitSweepDeps } from '../shared/usecases/sweeps';
import type { SweepRecord, Sweeps } from '../shared/ports/sweeps';
import { type ImageLookupDeps, LaunchTrainingEventSchema } from '../shared/usecases/launch-training';
import { DynamoCatalog } from '../shared/adapters/dynamo-catalog';
import { replacementLoops } from '../shared/usecases/prepare-replacement';
import { DEFAULT_STEP_TUNING, type StepDeps } from '../shared/usecases/step-deps';
import { submitRun } from '../shared/usecases/submit-run';
import { loadAsl, localLambdaArn, type AslDefinition } from './asl';
import { LocalCompute, type CapacitySimulator } from './compute';
import { probeLocalDocker, START_DOCKER_HINT, type DockerProbe, type LocalDocker } from './docker-env';
import { LocalEcr } from './ecr';
import { LocalImageBuilds } from './image-builds';
import { EC2_DETAIL_TYPE, EventRouter, LAMBDA_SUCCESS_DETAIL_TYPE } from './event-router';
import type { LocalApiDeps } from './http-api';
import { VolumeNotCataloguedError } from '../shared/ports/volumes';
import { LOCAL_INSTANCE_ROLE, LocalImds } from './imds';
import { latencyModel, prefetchPollMs, readinessPollMs, type LatencyModel } from './latency';
import { LocalNodeNetworks } from './networks';
import { LocalExecutions, LocalInstanceTags, rememberingLaunches, TokenAliases } from './runtime-adapters';
import { startStableEndpoints } from './runtime-endpoints';
import { RESUME_ENTRY_STATES, resumeEntry } from './runtime-resume';
import { startLocalServices, type LocalServices } from './services';
import { LocalStateMachine, type LocalExecution, type LocalLambda } from './state-machine-runner';
import { LocalRunCredentials, startAgentControlApi } from './agent-control';
import { LocalSweeps } from './sweeps';
import { TaskTokens } from './task-tokens';
import type { AgentControlDeps } from '../shared/usecases/agent-control';

import { LOCAL_OWNER, LOCAL_SECRETS_PREFIX, startLocalSecretsEndpoint } from './secrets';

export { LOCAL_OWNER, LOCAL_SECRETS_PREFIX };

/**
 * The embedded local backend: the train-run ASL in aws-local-stepfunctions with every task bound
 * to its real handler, s3rver and dynalite behind the real adapters, the real EC2 event handlers
 * behind an in-process EventBridge, the real agent on local sandbox "instances". Only compute
 * (and the services it stands in for: EC2 tags, SSM, the metadata service) is local. See docs/local.md.
 */

export interface LocalBackendOptions {
  /** Where runs, objects, instances and ports live (default `.runctl`). */
  root?: string;
  /** Keep S3 and DynamoDB across restarts (default true). */
  persist?: boolean;
  /** How often the agent heartbeats (default 5 s; AWS: 60 s). */
  heartbeatSeconds?: number;
  /** LaunchTraining's HeartbeatSeconds, in ms (default 60 s; the ASL says 300 s). */
  heartbeatTimeoutMs?: number;
  /** Warning → reclaim of a simulated spot interruption (default 20 s; EC2: 120 s). */
  interruptGraceMs?: number;
  /** How long an instance stays pending (default: the latency model's launchMs). */
  bootMs?: number;
  /** Launch, SSM and S3 timings of local instances (default: the `instant` profile; see local/latency.ts). */
  latency?: LatencyModel;
  /** Simulated EC2 capacity per try (default: always room). */
  capacity?: CapacitySimulator;
  /** How multi-node runs recover (StepConfig.nodeRecovery; default replace-lost). */
  nodeRecovery?: 'replace-lost' | 'relaunch-all';
  /** How often the early-stopping rule of running sweeps is applied (default 2 s; AWS: every minute). */
  sweepEvaluationMs?: number;
  /** Resume the runs found live in the store (default true). */
  resume?: boolean;
  /**
   * The Docker engine and registry for container runs and image builds: found through
   * `.runctl/docker/env.json` (scripts/docker-test-env.sh) when not given; `false`: none.
   */
  docker?: LocalDocker | false;
}

export interface InterruptResult {
  runId: string;
  attempt: number;
  instanceId: string;
  /** When the instance is reclaimed (killed) unless the run released it first. */
  reclaimAt: string;
}

export interface LocalBackend {
  root: string;
  services: LocalServices;
  compute: LocalCompute;
  store: DynamoRunStore;
  artifacts: S3Artifacts;
  s3: S3Client;
  executions: LocalExecutions;
  router: EventRouter;
  imds: LocalImds;
  tokens: TaskTokens;
  /** Runs resumed at start. */
  resumed: string[];
  /** Whether container runs are served, and why not when they are not. */
  docker: DockerProbe;
  /** The build-image machine, when an engine answers. */
  images?: LocalImageBuilds;
  /** What the HTTP API handlers need (for `runctl dev`). */
  apiDeps(): LocalApiDeps;
  /** What the experiment routes need. */
  experimentDeps(): ExperimentDeps;
  /** What the model registry routes need: the runs table and the runs bucket, as deployed. */
  modelDeps(): ModelDeps;
  /** What the sweep routes need: POST /sweeps, GET /sweeps/{id}, POST /sweeps/{id}/stop. */
  sweepDeps(): { submit: SubmitSweepDeps; control: SweepControlDeps; sweeps: Sweeps };
  /** Submits a sweep through the real use case and starts its execution; returns the PENDING sweep. */
  submitSweep(body: unknown, owner?: string): Promise<SweepRecord>;
  /** Resolves with the final sweep once its execution has ended. */
  waitForSweep(sweepId: string): Promise<SweepRecord>;
  /** Submits a run through the real submit use case; returns the PENDING record. */
  submit(body: unknown, owner?: string): Promise<RunRecord>;
  /** Resolves with the final record once the run's execution has ended. */
  waitForRun(runId: string): Promise<RunRecord>;
  /**
   * A spot interruption of the run's current instance (or, with `node`, of that node of a
   * multi-node run): the EC2 warning, the IMDS notice, the reclaim.
   */
  interrupt(runId: string, options?: { graceMs?: number; node?: number }): Promise<InterruptResult>;
  /** Cancels a run through the real cancel use case. */
  cancel(runId: string, options?: { owner?: string; force?: boolean }): Promise<RunRecord>;
  /** Stops the control plane; instances keep running (as on AWS) unless `terminateInstances`. */
  stop(options?: { terminateInstances?: boolean }): Promise<void>;
}

/** Retry pauses of the local machine: 50 ms per second the ASL asks for (a throttled call waits 250 ms, not 5 s). */
const RETRY_INTERVAL_SCALE = 0.05;
/** The shortest heartbeat timeout of the AwaitReplacement wait here (the ASL's is 120 s against 5 s polls). */
const REPLACEMENT_WAIT_HEARTBEAT_MIN_MS = 20_000;
const EVENT_STATES: ReadonlySet<string> = new Set(INSTANCE_STATES);
function isEventState(state: string): state is InstanceState {
  return EVENT_STATES.has(state);
}

/** Starts every part of the local backend and resumes the runs it finds live. */
export async function startLocalBackend(options: LocalBackendOptions = {}): Promise<LocalBackend> {
  const root = resolve(options.root ?? '.runctl');
  const services = await startLocalServices({ root, persist: options.persist ?? true });
  const cleanups: Array<() => Promise<void> | void> = [() => services.close()];
  const closeAll = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  };
  try {
    return await assemble(root, services, options, cleanups, closeAll);
  } catch (error) {
    await closeAll();
    throw error;
  }
}

async function assemble(
  root: string,
  services: LocalServices,
  options: LocalBackendOptions,
  cleanups: Array<() => Promise<void> | void>,
  closeAll: () => Promise<void>,
): Promise<LocalBackend> {
  const tokens = new TaskTokens();
  const aliases = new TokenAliases(tokens);

  let compute: LocalCompute | undefined;
  const imds = new LocalImds({
    lookup: async (instanceId) => {
      const described = await compute?.describe(instanceId);
      return described === undefined ? undefined : { availabilityZone: described.availabilityZone, instanceType: described.instanceType };
    },
  });
  const imdsUrl = await imds.start();
  cleanups.push(() => imds.close());
  // The agent routes: bound to the store and executions once they exist (below).
  let agentControlDeps: AgentControlDeps | undefined;
  const control = await startAgentControlApi({
    imds,
    deps: () => {
      if (agentControlDeps === undefined) throw new Error('the agent routes were called before the local backend was assembled');
      return agentControlDeps;
    },
  });
  cleanups.push(() => control.close());

  // Parameter Store and Secrets Manager for spec.secrets: the secrets file under the root (local/secrets.ts).
  const secrets = await startLocalSecretsEndpoint(root, services.region);
  cleanups.push(() => secrets.close());

  const endpoints = await startStableEndpoints(root, {
    s3: services.endpoints.s3,
    dynamodb: services.endpoints.dynamodb,
    control: control.url,
    imds: imdsUrl,
    secrets: secrets.url,
  });
  cleanups.push(() => endpoints.close());

  const dockerProbe: DockerProbe =
    options.docker === false
      ? { available: false, reason: `The local backend was started without Docker: ${START_DOCKER_HINT}` }
      : options.docker === undefined
        ? await probeLocalDocker()
        : { available: true, docker: options.docker };
  let ecrEndpoint: string | undefined;
  if (dockerProbe.available) {
    const ecr = new LocalEcr(dockerProbe.docker);
    ecrEndpoint = await ecr.start();
    cleanups.push(() => ecr.close());
  }

  const router = new EventRouter({ region: services.region });
  compute = new LocalCompute({
    docker: dockerProbe.available ? { host: dockerProbe.docker.dockerHost, ecrEndpoint } : undefined,
    root,
    bootMs: options.bootMs,
    latency: options.latency,
    capacity: options.capacity,
    endpoints: { s3: endpoints.urls.s3, dynamodb: endpoints.urls.dynamodb, ssm: endpoints.urls.secrets, secretsManager: endpoints.urls.secrets },
    credentials: services.credentials,
    region: services.region,
    imdsEndpoint: (instanceId) => `${endpoints.urls.imds}/${instanceId}`,
    // EC2 sends a state-change event for every transition; the real handler picks the lost ones.
    onStateChange: async (instanceId, state) => {
      if (state === 'terminated') imds.forget(instanceId);
      if (isEventState(state)) await router.emitInstanceStateChange(instanceId, state);
    },
  });
  const localCompute = compute;
  cleanups.push(() => localCompute.close());

  const dynamo = new DynamoDBClient(services.clientConfig.dynamodb);
  const documentClient = runsDocumentClient(dynamo);
  const s3 = new S3Client(services.clientConfig.s3);
  cleanups.push(() => {
    dynamo.destroy();
    s3.destroy();
  });
  const store = new DynamoRunStore(documentClient, services.table);
  const artifacts = new S3Artifacts(s3, services.bucket);
  const tags = new LocalInstanceTags(localCompute);
  const stepCompute = rememberingLaunches(localCompute, tags);

  const catalog = new DynamoCatalog(documentClient, services.table);
  const images =
    dockerProbe.available && ecrEndpoint !== undefined
      ? new LocalImageBuilds({
          docker: dockerProbe.docker,
          ecrEndpoint,
          compute: localCompute,
          catalog,
          store,
          region: services.region,
          bucket: services.bucket,
          credentials: services.credentials,
          retryIntervalScale: RETRY_INTERVAL_SCALE,
        })
      : undefined;
  if (images !== undefined) cleanups.push(() => images.close());
  const stepDeps: StepDeps & ImageLookupDeps = {
    store,
    // The image catalog (EnsureImage, LaunchTraining) when images can be built here.
    ...(images === undefined ? {} : { catalog, loginRegistry: dockerProbe.available ? dockerProbe.docker.registry : undefined }),
    compute: stepCompute,
    // Every local node is on loopback: no network to make for a multi-node run (local/networks.ts).
    networks: new LocalNodeNetworks(),
    artifacts,
    clock: () => new Date(),
    config: {
      bucket: services.bucket,
      table: services.table,
      region: services.region,
      controlEndpoint: endpoints.urls.control,
      secretsPrefix: LOCAL_SECRETS_PREFIX,
      ...DEFAULT_STEP_TUNING,
      heartbeatSeconds: options.heartbeatSeconds ?? 5,
      capacityRetrySeconds: 10,
      // Every local node is on 127.0.0.1: each attempt's rendezvous takes a port of its own.
      loopbackRendezvous: true,
      nodeRecovery: options.nodeRecovery,
    },
  };
  // Boots take what the latency model says: the readiness checks must span them.
  const model = options.latency ?? latencyModel('instant');
  const readinessPoll = readinessPollMs(model, stepDeps.config.readinessMaxChecks, options.bootMs);
  // prepare-replacement looks at its instance more often (more checks over the same window).
  const replacementPoll = readinessPollMs(model, replacementLoops(stepDeps.config).readiness.maxPolls, options.bootMs);
  const launch = launchTraining.createHandler(stepDeps);
  const lambdas: Record<string, LocalLambda> = {
    ValidateRunLambdaFunction: validateRun.createHandler(stepDeps),
    // Without an engine there is no catalog: a docker auto/build run always reaches BuildImage, bound below.
    EnsureImageLambdaFunction: ensureImage.createHandler(stepDeps),
    // BuildImage: the build-image machine as a nested execution, or a refusal that says what to start.
    'arn:aws:states:::states:startExecution.sync:2':
      images?.nestedBuild ??
      (async () => {
        throw new PrecheckFailedError(`Building the run's image needs a Docker engine. ${dockerReason(dockerProbe)}`);
      }),
    ProvisionInstanceLambdaFunction: provisionInstance.createHandler(stepDeps),
    AwaitReplacementLambdaFunction: awaitReplacement.createHandler(stepDeps),
    CheckInstanceLambdaFunction: checkInstance.createHandler(stepDeps),
    PrefetchDataLambdaFunction: prefetchData.createHandler(stepDeps),
    // A resumed attempt's agent still holds the token of the execution before the restart.
    LaunchTrainingLambdaFunction: async (event, context) => {
      const payload = LaunchTrainingEventSchema.safeParse(event);
      if (payload.success) {
        if (!dockerProbe.available && (await store.get(payload.data.runId))?.spec.docker !== undefined) {
          throw new PrecheckFailedError(`The run trains in a container. ${dockerReason(dockerProbe)}`);
        }
        aliases.issued(payload.data.runId, payload.data.attempt, payload.data.taskToken);
      }
      return launch(event, context);
    },
    FinalizeArtifactsLambdaFunction: finalizeArtifacts.createHandler(stepDeps),
    ReleaseResourcesLambdaFunction: releaseResources.createHandler(stepDeps),
    DecideRecoveryLambdaFunction: decideRecovery.createHandler(stepDeps),
    FinishRunLambdaFunction: finishRun.createHandler(stepDeps),
    // Dataset volumes are EBS: the local backend has none. The machine only reaches this state
    // for a spec with `volume`, which is refused with a precheck failure that says what to use.
    RunVolumeLambdaFunction: async () => {
      throw new VolumeNotCataloguedError(
        'Dataset volumes (spec.volume) need EBS, which the local backend does not have: copy the dataset with spec.data instead',
      );
    },
  };
  const definition = loadAsl('train-run', localLambdaArn);
  const machine = (startAt: 'fresh' | 'resume') =>
    new LocalStateMachine({
      definition: startAt === 'fresh' ? definition : resumableDefinition(definition),
      lambdas,
      tokens,
      stateMachineName: 'train-run',
      region: services.region,
      // Boot and copies take milliseconds here, not minutes: poll accordingly.
      waitOverridesMs: { WaitForInstance: readinessPoll, WaitForPrefetch: prefetchPollMs(model), WaitForCapacity: 2000 },
      // Retry pauses likewise, so a throttled call is not retried seconds later.
      retryIntervalScale: RETRY_INTERVAL_SCALE,
      heartbeatOverridesMs: {
        LaunchTraining: options.heartbeatTimeoutMs ?? 60_000,
        // prepare-replacement heartbeats the wait at every step, a poll apart: a preparer that
        // stopped with its process (a restart) is given up on after many missed polls, even under load.
        AwaitReplacement: Math.max(REPLACEMENT_WAIT_HEARTBEAT_MIN_MS, 20 * replacementPoll),
      },
    });
  const fresh = machine('fresh');
  let resumable: LocalStateMachine | undefined;
  const executions = new LocalExecutions((runId, input) => fresh.start(input, runId), aliases);

  agentControlDeps = {
    store,
    instances: localCompute,
    credentials: new LocalRunCredentials(services.credentials),
    tasks: executions,
    config: {
      instanceRoleId: LOCAL_INSTANCE_ROLE.roleId,
      partition: 'aws',
      region: services.region,
      accountId: '000000000000',
      runsBucket: services.bucket,
      secretsPrefix: LOCAL_SECRETS_PREFIX,
      // Six of the local agent's beats (5 s by default), and never under 30 s: a loaded machine delays beats.
      nodeHeartbeatWindowSeconds: Math.max(30, 6 * (options.heartbeatSeconds ?? 5)),
    },
  };

  const checkpointDeps = {
    instances: tags,
    signals: new DynamoAttemptSignals(documentClient, services.table),
    store,
    compute: stepCompute,
  };
  // Both put their answer on the bus (a Lambda destination), where a rule starts prepare-replacement.
  router.on(EC2_DETAIL_TYPE.spotInterruptionWarning, spotWarning.createHandler(checkpointDeps), 'spot-warning', { onSuccessToBus: true });
  router.on(EC2_DETAIL_TYPE.rebalanceRecommendation, rebalance.createHandler(checkpointDeps), 'rebalance', { onSuccessToBus: true });
  const replacements = new LocalStateMachine({
    definition: loadAsl('prepare-replacement', localLambdaArn),
    lambdas: { PrepareReplacementLambdaFunction: prepareReplacement.createHandler({ ...stepDeps, tasks: executions, signals: checkpointDeps.signals }) },
    stateMachineName: 'prepare-replacement',
    region: services.region,
    waitOverridesMs: { WaitForReplacement: replacementPoll, WaitForCopy: 500 },
    retryIntervalScale: RETRY_INTERVAL_SCALE,
  });
  const preparing = new Set<LocalExecution>();
  router.on(
    { source: ['lambda'], 'detail-type': [LAMBDA_SUCCESS_DETAIL_TYPE], detail: { responsePayload: { action: [...REPLACEMENT_TRIGGER_ACTIONS] } } },
    (event) => {
      const execution = replacements.start(event);
      preparing.add(execution);
      void execution.outcome.then((outcome) => {
        preparing.delete(execution);
        if (outcome.status === 'FAILED') console.error(`local backend: prepare-replacement failed: ${outcome.error}: ${outcome.cause}`);
      });
      return { executionArn: execution.executionArn };
    },
    'prepare-replacement',
  );
  router.on(EC2_DETAIL_TYPE.stateChange, instanceState.createHandler({ instances: tags, store, executions }), 'instance-state');

  const apiDeps = (): LocalApiDeps => ({
    store,
    executions,
    compute: stepCompute,
    clock: () => new Date(),
    logger: apiLogger,
    s3,
    runsBucket: services.bucket,
    secretsPrefix: LOCAL_SECRETS_PREFIX,
  });

  const experimentDeps = (): ExperimentDeps => ({ store, experiments: new DynamoExperiments(documentClient, services.table) });
  const modelDeps = (): ModelDeps => ({
    store,
    models: new DynamoModels(documentClient, services.table),
    blobs: new S3ModelBlobs(s3, services.bucket),
    clock: () => new Date(),
  });

  const sweepStore = new DynamoSweeps(documentClient, services.table);
  const sweepControl = { store, sweeps: sweepStore, executions, compute: stepCompute, clock: () => new Date(), artifacts };
  const sweeps = new LocalSweeps({
    steps: { sweeps: sweepStore, store, clock: () => new Date() },
    control: sweepControl,
    trainRuns: executions,
    callbacks: aliases,
    region: services.region,
    evaluateEveryMs: options.sweepEvaluationMs,
    retryIntervalScale: RETRY_INTERVAL_SCALE,
  });
  cleanups.push(() => sweeps.stop());

  const resumed: string[] = [];
  if (options.resume ?? true) {
    for (const record of await liveRuns(store)) {
      const entry = resumeEntry(record);
      if (entry === undefined) continue;
      if (entry.rewriteStatus !== undefined) {
        await store.transition(record.runId, entry.rewriteStatus.from, entry.rewriteStatus.to, {
          statusReason: 'The control plane restarted while the attempt checkpointed; waiting for its agent',
        });
      }
      if (entry.agentToken !== undefined) aliases.expect(record.runId, entry.agentToken.attempt, entry.agentToken.token);
      resumable ??= machine('resume');
      executions.track(resumable.start({ resumeAt: entry.startAt, state: entry.input }, record.runId));
      resumed.push(record.runId);
    }
  }
  aliases.open();

  const reclaimTimers = new Set<NodeJS.Timeout>();
  let stopped = false;

  const backend: LocalBackend = {
    root,
    services,
    compute: localCompute,
    store,
    artifacts,
    s3,
    executions,
    router,
    imds,
    tokens,
    resumed,
    docker: dockerProbe,
    images,
    apiDeps,
    experimentDeps,
    modelDeps,
    sweepDeps: () => ({ submit: { ...sweeps.submitDeps(), secretsPrefix: LOCAL_SECRETS_PREFIX }, control: sweepControl, sweeps: sweepStore }),
    async submitSweep(body, owner = LOCAL_OWNER) {
      const { sweep } = await submitSweep({ owner, body }, { ...sweeps.submitDeps(), secretsPrefix: LOCAL_SECRETS_PREFIX });
      return sweep;
    },
    waitForSweep: (sweepId) => sweeps.waitForSweep(sweepId),
    async submit(body, owner = LOCAL_OWNER) {
      const { record } = await submitRun({ owner, body }, apiDeps());
      return record;
    },
    async waitForRun(runId) {
      const execution: LocalExecution | undefined = executions.execution(runId);
      if (execution !== undefined) await execution.outcome;
      const record = await store.get(runId);
      if (record === undefined) throw new NotFoundError(`Run ${runId} does not exist`);
      if (execution === undefined && !isTerminal(record.status)) {
        throw new Error(`Run ${runId} is ${record.status} but no execution of it runs in this process`);
      }
      return record;
    },
    async interrupt(runId, interruptOptions = {}) {
      const record = await store.get(runId);
      if (record === undefined) throw new NotFoundError(`Run ${runId} does not exist`);
      const attempt = record.attempts.at(-1);
      if (attempt?.instanceId === undefined || attempt.endedAt !== undefined) {
        throw new ConflictError(`Run ${runId} has no live instance to interrupt (it is ${record.status})`);
      }
      const node = interruptOptions.node === undefined ? undefined : attempt.nodes?.find((n) => n.rank === interruptOptions.node && n.releasedAt === undefined);
      if (interruptOptions.node !== undefined && node === undefined) {
        throw new ConflictError(`Run ${runId} has no live node ${interruptOptions.node} (its attempt ${attempt.attempt} has ${attempt.nodes?.length ?? 1})`);
      }
      const instanceId = node?.instanceId ?? attempt.instanceId;
      const graceMs = interruptOptions.graceMs ?? options.interruptGraceMs ?? 20_000;
      const reclaimAt = new Date(Date.now() + graceMs).toISOString().replace(/\.\d{3}Z$/, 'Z');
      // Both best-effort channels, as on EC2: the metadata notice and the EventBridge warning.
      imds.notice(instanceId, { action: 'terminate', time: reclaimAt });
      await router.emitSpotInterruptionWarning(instanceId);
      const timer = setTimeout(() => {
        reclaimTimers.delete(timer);
        localCompute.kill(instanceId).catch((error: unknown) => console.error(`local backend: reclaiming ${instanceId} failed`, error));
      }, graceMs);
      reclaimTimers.add(timer);
      return { runId, attempt: attempt.attempt, instanceId, reclaimAt };
    },
    cancel(runId, cancelOptions = {}) {
      return cancelRun(
        { owner: cancelOptions.owner ?? LOCAL_OWNER, runId, body: { force: cancelOptions.force ?? false } },
        apiDeps(),
      );
    },
    async stop(stopOptions = {}) {
      if (stopped) return;
      stopped = true;
      for (const timer of reclaimTimers) clearTimeout(timer);
      await sweeps.stop();
      for (const execution of [...executions.all(), ...preparing]) execution.abort();
      images?.abort();
      // An aborted execution settles at its next step; one stuck in a call must not keep the
      // instances running, so the wait is bounded.
      const settled = Promise.all([...executions.all(), ...preparing].map((e) => e.outcome.catch(() => undefined)));
      let bound: NodeJS.Timeout | undefined;
      const bounded = new Promise<void>((resolve) => (bound = setTimeout(resolve, STOP_SETTLE_MS)));
      await Promise.race([settled, bounded]);
      clearTimeout(bound);
      if (stopOptions.terminateInstances === true) {
        for (const instance of await localCompute.listTaggedInstances()) await localCompute.kill(instance.instanceId);
      }
      await closeAll();
    },
  };
  return backend;
}

/**
 * The train-run definition with one state in front: a Choice that enters the machine at the
 * state a resumed run was in (`{resumeAt, state}` → `state` at `resumeAt`). Everything after it
 * is the ASL file unchanged; the extra state costs one transition per resume.
 */
/** How long `stop` waits for aborted executions to settle before it terminates instances. */
const STOP_SETTLE_MS = 15_000;

function resumableDefinition(definition: AslDefinition): AslDefinition {
  const parsed = z.looseObject({ StartAt: z.string(), States: z.record(z.string(), z.unknown()) }).parse(definition);
  const entry = 'ResumeAfterRestart';
  return {
    ...parsed,
    StartAt: entry,
    States: {
      [entry]: {
        Type: 'Choice',
        Comment: 'Local backend only: re-enters the machine where the run was when the control plane stopped.',
        Choices: RESUME_ENTRY_STATES.map((state) => ({ Variable: '$.resumeAt', StringEquals: state, Next: state })),
        Default: parsed.StartAt,
        OutputPath: '$.state',
      },
      ...parsed.States,
    },
  };
}

/** Why the local backend has no engine to offer, and what to start. */
function dockerReason(probe: DockerProbe): string {
  return probe.available ? '' : probe.reason;
}

/** Every run in a live status. */
async function liveRuns(store: DynamoRunStore): Promise<RunRecord[]> {
  const found: RunRecord[] = [];
  for (const status of LIVE_STATUSES) {
    let nextToken: string | undefined;
    do {
      const page = await store.listByStatus(status, { nextToken });
      found.push(...page.items);
      nextToken = page.nextToken;
    } while (nextToken !== undefined);
  }
  return found;
}

/** The sandbox root of the local backend's instances, for tools that scan them. */
export function instancesDir(root: string): string {
  return join(resolve(root), 'instances');
}
