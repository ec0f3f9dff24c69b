import { ECRClient } from '@aws-sdk/client-ecr';
import { z } from 'zod';
import * as cleanupBuild from '../functions/images/build-cleanup';
import * as buildImage from '../functions/images/build-image';
import * as prepareBuild from '../functions/images/build-prepare';
import * as recordImage from '../functions/images/build-record-image';
import * as helperInstance from '../functions/volumes/helper-instance';
import { EcrImages } from '../shared/adapters/ecr-images';
import { DEFAULT_VOLUME_TUNING, type VolumeDeps } from '../shared/composition/volumes';
import { PrecheckFailedError } from '../shared/errors';
import type { Catalog } from '../shared/ports/catalog';
import type { Compute } from '../shared/ports/compute';
import type { RunStore } from '../shared/ports/run-store';
import type { Volumes } from '../shared/ports/volumes';
import { loadAsl, localLambdaArn } from './asl';
import type { LocalDocker } from './docker-env';
import { LocalStateMachine, type ExecutionOutcome, type LocalExecution, type LocalLambda } from './state-machine-runner';

/**
 * The build-image machine on the local backend: the same ASL and handlers as on AWS, with the
 * builder a local instance whose SSM command (the same text) builds with the local engine and
 * pushes to the local registry, which ECR's API fronts (local/ecr.ts). train-run's BuildImage
 * task (`startExecution.sync:2`) runs it as a nested execution and answers as Step Functions does.
 */

export interface LocalImageBuildsOptions {
  docker: LocalDocker;
  /** The local ECR endpoint (local/ecr.ts). */
  ecrEndpoint: string;
  compute: Compute;
  catalog: Catalog;
  store: RunStore;
  region: string;
  /** The runs bucket: the builder takes only its content-addressed `bundles/`. */
  bucket: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Scales Retry pauses as the train-run machine's are. */
  retryIntervalScale?: number;
}

/** What `startExecution.sync:2` passes: the machine, the execution name and its input. */
const NestedStartSchema = z.object({ StateMachineArn: z.string(), Name: z.string().min(1), Input: z.unknown() });

/** EBS is not part of the local backend; the build machine never asks for it. */
class NoVolumes implements Volumes {
  private refuse(): never {
    throw new PrecheckFailedError('EBS volumes are not part of the local backend');
  }
  create = async () => this.refuse();
  describe = async () => this.refuse();
  findTagged = async () => this.refuse();
  waitAvailable = async () => this.refuse();
  attach = async () => this.refuse();
  waitAttached = async () => this.refuse();
  detach = async () => this.refuse();
  delete = async () => this.refuse();
  createSnapshot = async () => this.refuse();
  describeSnapshot = async () => this.refuse();
  findTaggedSnapshots = async () => this.refuse();
  deleteSnapshot = async () => this.refuse();
}

export class LocalImageBuilds {
  readonly deps: VolumeDeps;
  private readonly machine: LocalStateMachine;
  private readonly ecr: ECRClient;
  private readonly running = new Map<string, LocalExecution>();

  constructor(options: LocalImageBuildsOptions) {
    this.ecr = new ECRClient({ endpoint: options.ecrEndpoint, region: options.region, credentials: options.credentials });
    this.deps = {
      volumes: new NoVolumes(),
      compute: options.compute,
      catalog: options.catalog,
      registry: new EcrImages(this.ecr),
      store: options.store,
      clock: () => new Date(),
      config: {
        ...DEFAULT_VOLUME_TUNING,
        region: options.region,
        runsBucket: options.bucket,
        // Polled every second here, not every 30 s: the same 2 h budget.
        buildMaxPolls: 7200,
        // Every local build starts FROM the base image the start script pushed.
        defaultBuildArgs: { BASE_IMAGE: options.docker.baseImage },
      },
    };
    const deps = this.deps;
    this.machine = new LocalStateMachine({
      definition: loadAsl('build-image', localLambdaArn),
      lambdas: {
        BuildPrepareLambdaFunction: prepareBuild.createHandler(deps),
        HelperInstanceLambdaFunction: helperInstance.createHandler(deps),
        BuildImageLambdaFunction: buildImage.createHandler(deps),
        BuildRecordImageLambdaFunction: recordImage.createHandler(deps),
        BuildCleanupLambdaFunction: cleanupBuild.createHandler(deps),
      },
      stateMachineName: 'build-image',
      region: options.region,
      // A local instance boots in milliseconds and a build takes seconds: poll accordingly.
      waitOverridesMs: { WaitForBuilder: 250, WaitForBuild: 1000 },
      retryIntervalScale: options.retryIntervalScale ?? 0.05,
    });
  }

  /** Starts a build-image execution (as POST /images does); one execution per name. */
  start(input: unknown, name: string): LocalExecution {
    const known = this.running.get(name);
    if (known !== undefined) return known;
    const execution = this.machine.start(input, name);
    this.running.set(name, execution);
    return execution;
  }

  /** Runs a build to its end. */
  async run(input: unknown, name: string): Promise<ExecutionOutcome> {
    return this.start(input, name).outcome;
  }

  /** train-run's BuildImage task: waits for the nested execution and answers as `.sync:2` does. */
  readonly nestedBuild: LocalLambda = async (event) => {
    const request = NestedStartSchema.parse(event);
    const execution = this.start(request.Input, request.Name);
    const outcome = await execution.outcome;
    const description = { ExecutionArn: execution.executionArn, Status: outcome.status === 'SUCCEEDED' ? 'SUCCEEDED' : outcome.status === 'ABORTED' ? 'ABORTED' : 'FAILED' };
    if (outcome.status === 'SUCCEEDED') return { ...description, Output: outcome.output };
    const failure = outcome.status === 'FAILED' ? { Error: outcome.error, Cause: outcome.cause } : { Error: 'States.Aborted', Cause: 'The build was stopped' };
    throw Object.assign(new Error(JSON.stringify({ ...description, ...failure })), { name: 'States.TaskFailed' });
  };

  /** Stops running builds (their CleanUp does not run: the builders go with the instances). */
  abort(): void {
    for (const execution of this.running.values()) execution.abort();
  }

  close(): void {
    this.ecr.destroy();
  }
}
