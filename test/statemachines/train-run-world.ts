import {
  AttachVolumeCommand,
  CreateVolumeCommand,
  DeleteVolumeCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  DescribeSubnetsCommand,
  DescribeTagsCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
  EC2Client,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type Instance,
  type Tag,
} from '@aws-sdk/client-ec2';
import { ECRClient } from '@aws-sdk/client-ecr';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  SendCommandCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import * as awaitReplacement from '../../functions/steps/await-replacement';
import * as checkInstance from '../../functions/steps/check-instance';
import * as decideRecovery from '../../functions/steps/decide-recovery';
import * as ensureImage from '../../functions/steps/ensure-image';
import * as finalizeArtifacts from '../../functions/steps/finalize-artifacts';
import * as finishRun from '../../functions/steps/finish-run';
import * as launchTraining from '../../functions/steps/launch-training';
import * as prefetchData from '../../functions/steps/prefetch-data';
import * as provisionInstance from '../../functions/steps/provision-instance';
import * as releaseResources from '../../functions/steps/release-resources';
import * as validateRun from '../../functions/steps/validate-run';
import * as runVolume from '../../functions/volumes/run-volume';
import type { LocalLambda } from '../../local/state-machine-runner';
import { DynamoCatalog } from '../../shared/adapters/dynamo-catalog';
import { DynamoRunStore } from '../../shared/adapters/dynamo-run-store';
import { Ec2Compute } from '../../shared/adapters/ec2-compute';
import { Ec2Volumes } from '../../shared/adapters/ec2-volumes';
import { EcrImages } from '../../shared/adapters/ecr-images';
import { DEFAULT_VOLUME_TUNING, type VolumeDeps } from '../../shared/composition/volumes';
import type { Catalog } from '../../shared/ports/catalog';
import { S3Artifacts } from '../../shared/adapters/s3-artifacts';
import type { RunStore } from '../../shared/ports/run-store';
import type { StepDeps } from '../../shared/usecases/step-deps';
import { TaskTokens } from '../../local/task-tokens';
import { createRunsTable, dynamoClient, dynamoDocumentClient, localClientConfig } from '../support/aws-clients';
import { startDynalite } from '../support/dynalite';
import { TEST_STACK } from '../support/stack';

/**
 * A simulated AWS account for the train-run machine tests: EC2 and SSM are aws-sdk-client-mock
 * clients whose fakes keep instance and command state and answer like the real APIs; DynamoDB is
 * dynalite and S3 is moto, both through the real adapters. The "agent" answers the task token
 * (read from the run record, as the real agent does) when the launch command is sent.
 */

export type AgentBehaviour =
  | { kind: 'succeed' }
  | { kind: 'fail'; exitCode: number }
  | { kind: 'interrupt' }
  /** Never calls back (the heartbeat timeout ends the wait). */
  | { kind: 'silent' };

/** An EBS volume as EC2 reports it; `history` is every instance it was ever attached to. */
export interface SimVolume {
  id: string;
  az: string;
  state: string;
  size: number;
  snapshotId?: string;
  tags: Record<string, string>;
  attachment?: string;
  history: string[];
  deleted: boolean;
}

const SUBNET_AZ: Record<string, string> = { 'subnet-0aaa1111': 'us-east-1a', 'subnet-0bbb2222': 'us-east-1b' };

function tagsOf(tags: Tag[] | undefined): Record<string, string> {
  return Object.fromEntries((tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
}

interface SimInstance {
  id: string;
  type: string;
  subnetId: string;
  az: string;
  state: string;
  tags: Record<string, string>;
  spot: boolean;
}

export function awsError(name: string, message: string, status = 400): Error {
  return Object.assign(new Error(message), { name, $fault: 'client', $metadata: { httpStatusCode: status } });
}

export interface WorldOptions {
  dynamoEndpoint: string;
  motoEndpoint: string;
  table: string;
  bucket: string;
  tokens: TaskTokens;
}

export class SimulatedAccount {
  readonly ec2 = new EC2Client(localClientConfig('http://127.0.0.1:9'));
  readonly ssm = new SSMClient(localClientConfig('http://127.0.0.1:9'));
  readonly s3: S3Client;
  readonly store: RunStore;
  readonly catalog: Catalog;
  readonly volumes = new Map<string, SimVolume>();
  readonly snapshots = new Set<string>();
  /** Scripts of the mount commands, in order. */
  readonly mountScripts: Array<{ instanceId: string; script: string }> = [];
  readonly instances = new Map<string, SimInstance>();
  readonly terminated: string[] = [];
  readonly launchScripts: Array<{ instanceId: string; script: string; comment?: string }> = [];
  /** Types with no capacity (RunInstances answers InsufficientInstanceCapacity). */
  noCapacity = new Set<string>();
  /** RunInstances calls to answer with RequestLimitExceeded before accepting. */
  throttleRunInstances = 0;
  ssmOnline = true;
  /** How the prefetch command ends. */
  prefetch: { status: 'Success' | 'Failed'; exitCode: number; stderr: string } = { status: 'Success', exitCode: 0, stderr: '' };
  /** The agent of attempt n (1-based); the last entry serves later attempts. */
  agent: AgentBehaviour[] = [{ kind: 'succeed' }];
  /** Runs when an agent has started, before it does anything (a spot warning arriving mid-training, say). */
  onAgentStart?: (run: { runId: string; attempt: number; instanceId: string }) => Promise<void>;
  /** What DescribeInstanceInformation throws, when set (a failing SSM call). */
  ssmDescribeError?: Error;
  /** Every SSM command sent, in order. */
  readonly commandLog: Array<{ instanceId: string; comment?: string }> = [];
  private seq = 0;
  private readonly commands = new Map<string, { status: string; exitCode: number; stdout: string; stderr: string }>();

  constructor(private readonly options: WorldOptions) {
    this.s3 = new S3Client({ ...localClientConfig(options.motoEndpoint), forcePathStyle: true });
    this.store = new DynamoRunStore(dynamoDocumentClient(options.dynamoEndpoint), options.table);
    this.catalog = new DynamoCatalog(dynamoDocumentClient(options.dynamoEndpoint), options.table);
    this.mockEc2();
    this.mockSsm();
  }

  async setUp(): Promise<void> {
    await createRunsTable(dynamoClient(this.options.dynamoEndpoint), this.options.table);
    await this.s3.send(new CreateBucketCommand({ Bucket: this.options.bucket }));
  }

  deps(clock: () => Date = () => new Date()): StepDeps {
    return {
      store: this.store,
      compute: new Ec2Compute({
        ec2: this.ec2,
        ssm: this.ssm,
        stack: TEST_STACK,
        defaultSubnets: ['subnet-0aaa1111', 'subnet-0bbb2222'],
        throttleRetry: { attempts: 3, baseMs: 1, sleep: async () => undefined },
      }),
      artifacts: new S3Artifacts(this.s3, this.options.bucket),
      clock,
      config: {
        bucket: this.options.bucket,
        table: this.options.table,
        region: 'us-east-1',
        controlEndpoint: 'https://agentapi01.execute-api.us-east-1.amazonaws.com',
        heartbeatSeconds: 60,
        readinessMaxChecks: 3,
        capacityRetrySeconds: 60,
        prefetchMaxPolls: 5,
      },
    };
  }

  /** The run-volume handler's dependencies over the same simulated account. */
  volumeDeps(): VolumeDeps {
    const once = { attempts: 1, baseMs: 1, sleep: async () => undefined };
    return {
      volumes: new Ec2Volumes({ ec2: this.ec2, stack: TEST_STACK, throttleRetry: once, waiterDelay: { min: 1, max: 1 } }),
      compute: new Ec2Compute({ ec2: this.ec2, ssm: this.ssm, stack: TEST_STACK, throttleRetry: once }),
      catalog: this.catalog,
      registry: new EcrImages(new ECRClient(localClientConfig('http://127.0.0.1:9'))),
      store: this.store,
      clock: () => new Date(),
      config: { ...DEFAULT_VOLUME_TUNING, region: 'us-east-1', runsBucket: this.options.bucket, waiterSeconds: 5 },
    };
  }

  /** Catalogues a pre-warmed dataset of `owner`: its volume (free, in `az`) and a completed snapshot. */
  async catalogue(datasetUri: string, az: string, owner = 'arn:aws:iam::123456789012:user/alice'): Promise<SimVolume> {
    this.seq += 1;
    const volume: SimVolume = {
      id: `vol-0${String(this.seq).padStart(16, '0')}`, az, state: 'available', size: 200,
      tags: { 'runctl:volume': 'prewarm:p1' }, history: [], deleted: false,
    };
    const snapshotId = `snap-0${String(this.seq).padStart(16, '0')}`;
    this.volumes.set(volume.id, volume);
    this.snapshots.add(snapshotId);
    await this.catalog.putVolume({
      owner, datasetUri, sizeGiB: 200, az, volumeId: volume.id, snapshotId, volumeType: 'gp3', bytes: 1234, files: 3,
      createdAt: new Date().toISOString(), prewarmId: 'p1',
    });
    return volume;
  }

  /** Live (not terminated) instances. */
  live(): SimInstance[] {
    return [...this.instances.values()].filter((i) => i.state !== 'terminated');
  }

  async put(key: string, body: string): Promise<void> {
    await this.s3.send(new PutObjectCommand({ Bucket: this.options.bucket, Key: key, Body: body }));
  }

  /** Writes a checkpoint the way the agent does: files, `_COMPLETE.json`, then `latest.json`. */
  async writeCheckpoint(runId: string, attempt: number, seq: number): Promise<string> {
    const id = `${String(attempt).padStart(4, '0')}-${String(seq).padStart(6, '0')}`;
    const uri = `s3://${this.options.bucket}/runs/${runId}/checkpoints/${id}/`;
    await this.put(`runs/${runId}/checkpoints/${id}/model.pt`, `weights ${id}`);
    await this.put(`runs/${runId}/checkpoints/${id}/_COMPLETE.json`, JSON.stringify({ uri, attempt, seq, id }));
    await this.put(
      `runs/${runId}/checkpoints/latest.json`,
      JSON.stringify({ uri, attempt, seq, createdAt: new Date().toISOString(), files: 1, bytes: 10 }),
    );
    return uri;
  }

  private describe(instances: SimInstance[]): Instance[] {
    return instances.map((i) => ({
      InstanceId: i.id,
      InstanceType: i.type as Instance['InstanceType'],
      SubnetId: i.subnetId,
      Placement: { AvailabilityZone: i.az },
      State: { Name: i.state as NonNullable<Instance['State']>['Name'] },
      Tags: Object.entries(i.tags).map(([Key, Value]) => ({ Key, Value })),
      InstanceLifecycle: i.spot ? 'spot' : undefined,
      LaunchTime: new Date(),
    }));
  }

  private mockEc2(): void {
    const ec2 = mockClient(this.ec2);
    ec2.on(DescribeImagesCommand).callsFake((input) => ({
      Images: (input.ImageIds ?? []).map((ImageId: string) => ({ ImageId, RootDeviceName: '/dev/sda1' })),
    }));
    ec2.on(DescribeInstancesCommand).callsFake((input) => {
      let found = [...this.instances.values()];
      if (input.InstanceIds) {
        const missing = input.InstanceIds.find((id: string) => !this.instances.has(id));
        if (missing) throw awsError('InvalidInstanceID.NotFound', `The instance ID '${missing}' does not exist`);
        found = found.filter((i) => input.InstanceIds.includes(i.id));
      }
      for (const filter of input.Filters ?? []) {
        const values: string[] = filter.Values ?? [];
        if (filter.Name === 'instance-state-name') found = found.filter((i) => values.includes(i.state));
        else if (filter.Name === 'tag-key') found = found.filter((i) => values.some((k) => k in i.tags));
        else if (filter.Name?.startsWith('tag:')) {
          const key = filter.Name.slice(4);
          found = found.filter((i) => values.includes(i.tags[key] ?? ''));
        }
      }
      return { Reservations: found.length === 0 ? [] : [{ Instances: this.describe(found) }] };
    });
    ec2.on(RunInstancesCommand).callsFake((input) => {
      if (this.throttleRunInstances > 0) {
        this.throttleRunInstances -= 1;
        throw awsError('RequestLimitExceeded', 'Request limit exceeded.', 503);
      }
      const type: string = input.InstanceType;
      if (this.noCapacity.has(type)) {
        throw awsError('InsufficientInstanceCapacity', `We currently do not have sufficient ${type} capacity in the Availability Zone you requested.`, 500);
      }
      this.seq += 1;
      const id = `i-0${String(this.seq).padStart(16, '0')}`;
      const tags = Object.fromEntries(
        (input.TagSpecifications?.[0]?.Tags ?? []).map((t: { Key: string; Value: string }) => [t.Key, t.Value]),
      );
      const instance: SimInstance = {
        id,
        type,
        subnetId: input.SubnetId,
        az: SUBNET_AZ[input.SubnetId] ?? 'us-east-1b',
        state: 'running',
        tags,
        spot: input.InstanceMarketOptions?.MarketType === 'spot',
      };
      this.instances.set(id, instance);
      return { Instances: this.describe([instance]) };
    });
    ec2.on(TerminateInstancesCommand).callsFake((input) => {
      for (const id of input.InstanceIds ?? []) {
        const instance = this.instances.get(id);
        if (!instance) throw awsError('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
        instance.state = 'terminated';
        this.terminated.push(id);
        // EC2 detaches the volumes of a terminated instance.
        for (const v of this.volumes.values()) if (v.attachment === id) { v.attachment = undefined; v.state = 'available'; }
      }
      return { TerminatingInstances: [] };
    });
    ec2.on(DescribeTagsCommand).callsFake((input) => {
      const ids: string[] = input.Filters?.find((f: { Name?: string }) => f.Name === 'resource-id')?.Values ?? [];
      const keys: string[] | undefined = input.Filters?.find((f: { Name?: string }) => f.Name === 'key')?.Values;
      return {
        Tags: ids.flatMap((id) =>
          Object.entries(this.instances.get(id)?.tags ?? {})
            .filter(([Key]) => keys === undefined || keys.includes(Key))
            .map(([Key, Value]) => ({ ResourceId: id, ResourceType: 'instance', Key, Value })),
        ),
      };
    });
    ec2.on(DescribeSubnetsCommand).callsFake((input) => ({
      Subnets: (input.SubnetIds ?? Object.keys(SUBNET_AZ)).map((SubnetId: string) => ({ SubnetId, AvailabilityZone: SUBNET_AZ[SubnetId] })),
    }));
    const describeVolume = (v: SimVolume) => ({
      VolumeId: v.id, AvailabilityZone: v.az, State: v.state, Size: v.size, VolumeType: 'gp3', SnapshotId: v.snapshotId ?? '',
      Tags: Object.entries(v.tags).map(([Key, Value]) => ({ Key, Value })),
      Attachments: v.attachment === undefined ? [] : [{ InstanceId: v.attachment, Device: '/dev/sdf', State: 'attached', VolumeId: v.id }],
    });
    const live = () => [...this.volumes.values()].filter((v) => !v.deleted);
    ec2.on(CreateVolumeCommand).callsFake((input) => {
      if (input.SnapshotId !== undefined && !this.snapshots.has(input.SnapshotId)) throw awsError('InvalidSnapshot.NotFound', 'no such snapshot');
      this.seq += 1;
      const volume: SimVolume = {
        id: `vol-0${String(this.seq).padStart(16, '0')}`, az: input.AvailabilityZone, state: 'available', size: input.Size ?? 1,
        snapshotId: input.SnapshotId, tags: tagsOf(input.TagSpecifications?.[0]?.Tags), history: [], deleted: false,
      };
      this.volumes.set(volume.id, volume);
      return { ...describeVolume(volume), State: 'creating' };
    });
    ec2.on(DescribeVolumesCommand).callsFake((input) => {
      if (input.VolumeIds !== undefined) {
        const found = input.VolumeIds.map((id: string) => this.volumes.get(id));
        if (found.some((v: SimVolume | undefined) => v === undefined || v.deleted)) throw awsError('InvalidVolume.NotFound', 'no such volume');
        return { Volumes: found.map((v: SimVolume) => describeVolume(v)) };
      }
      let found = live();
      for (const filter of input.Filters ?? []) {
        const values: string[] = filter.Values ?? [];
        if (filter.Name?.startsWith('tag:')) found = found.filter((v) => values.includes(v.tags[filter.Name.slice(4)] ?? ''));
      }
      return { Volumes: found.map(describeVolume) };
    });
    ec2.on(DescribeSnapshotsCommand).callsFake((input) => {
      const ids: string[] = input.SnapshotIds ?? [...this.snapshots];
      if (ids.some((id) => !this.snapshots.has(id))) throw awsError('InvalidSnapshot.NotFound', 'no such snapshot');
      return { Snapshots: ids.map((SnapshotId) => ({ SnapshotId, State: 'completed', Progress: '100%', VolumeSize: 200, Tags: [] })) };
    });
    ec2.on(AttachVolumeCommand).callsFake((input) => {
      const volume = this.volumes.get(input.VolumeId);
      const instance = this.instances.get(input.InstanceId);
      if (volume === undefined || volume.deleted) throw awsError('InvalidVolume.NotFound', 'no such volume');
      if (instance === undefined) throw awsError('InvalidInstanceID.NotFound', 'no such instance');
      if (volume.attachment !== undefined) throw awsError('VolumeInUse', `${volume.id} is already attached`);
      if (volume.az !== instance.az) throw awsError('InvalidVolume.ZoneMismatch', 'zone mismatch');
      volume.attachment = instance.id;
      volume.history.push(instance.id);
      volume.state = 'in-use';
      return { State: 'attaching' };
    });
    ec2.on(DetachVolumeCommand).callsFake((input) => {
      const volume = this.volumes.get(input.VolumeId);
      if (volume === undefined || volume.deleted) throw awsError('InvalidVolume.NotFound', 'no such volume');
      if (volume.attachment === undefined) throw awsError('IncorrectState', 'not attached');
      volume.attachment = undefined;
      volume.state = 'available';
      return { State: 'detaching' };
    });
    ec2.on(DeleteVolumeCommand).callsFake((input) => {
      const volume = this.volumes.get(input.VolumeId);
      if (volume === undefined || volume.deleted) throw awsError('InvalidVolume.NotFound', 'no such volume');
      if (volume.attachment !== undefined) throw awsError('VolumeInUse', 'attached');
      volume.deleted = true;
      volume.state = 'deleted';
      return {};
    });
  }

  private mockSsm(): void {
    const ssm = mockClient(this.ssm);
    ssm.on(DescribeInstanceInformationCommand).callsFake((input) => {
      if (this.ssmDescribeError !== undefined) throw this.ssmDescribeError;
      const ids: string[] = input.Filters?.[0]?.Values ?? [];
      return {
        InstanceInformationList: this.ssmOnline ? ids.map((InstanceId) => ({ InstanceId, PingStatus: 'Online' })) : [],
      };
    });
    ssm.on(SendCommandCommand).callsFake((input) => {
      const instanceId: string = input.InstanceIds[0];
      const instance = this.instances.get(instanceId);
      if (!instance || instance.state !== 'running') throw awsError('InvalidInstanceId', 'Instances not in a valid state');
      this.seq += 1;
      const commandId = `cmd-${this.seq}`;
      const script: string = input.Parameters.commands[0];
      const comment: string | undefined = input.Comment;
      this.commandLog.push({ instanceId, comment });
      if (comment?.startsWith('runctl checkpoint')) {
        // "Checkpoint now": the scenario's agent decides when it calls back.
        this.commands.set(commandId, { status: 'Success', exitCode: 0, stdout: '', stderr: '' });
      } else if (comment?.startsWith('runctl mount')) {
        this.mountScripts.push({ instanceId, script });
        this.commands.set(commandId, { status: 'Success', exitCode: 0, stdout: '{"device":"/dev/nvme1n1","mountPath":"/mnt/dataset","initialized":false}\n', stderr: '' });
      } else if (comment?.startsWith('runctl prefetch')) {
        const p = this.prefetch;
        const stdout = p.status === 'Success' ? '{"source":"s3://datasets/mnist/","target":"/data","bytes":1048576,"seconds":3}\n' : '';
        this.commands.set(commandId, { status: p.status, exitCode: p.exitCode, stdout, stderr: p.stderr });
      } else {
        this.commands.set(commandId, { status: 'Success', exitCode: 0, stdout: '', stderr: '' });
        this.launchScripts.push({ instanceId, script, comment });
        const runId = instance.tags['runctl:run'] ?? '';
        const attempt = Number(instance.tags['runctl:attempt']);
        // The agent starts detached: it calls back after SendCommand has returned.
        setTimeout(() => void this.runAgent(runId, attempt, instanceId), 5);
      }
      return { Command: { CommandId: commandId, Status: 'Pending' } };
    });
    ssm.on(GetCommandInvocationCommand).callsFake((input) => {
      const command = this.commands.get(input.CommandId);
      if (!command) throw awsError('InvocationDoesNotExist', 'no such invocation');
      return {
        Status: command.status,
        ResponseCode: command.exitCode,
        StandardOutputContent: command.stdout,
        StandardErrorContent: command.stderr,
      };
    });
  }

  private async runAgent(runId: string, attempt: number, instanceId: string): Promise<void> {
    await this.onAgentStart?.({ runId, attempt, instanceId });
    const behaviour = this.agent[attempt - 1] ?? this.agent.at(-1) ?? { kind: 'succeed' };
    // Like the real agent: the token of this attempt comes from the run record.
    const record = await this.store.get(runId);
    const token = record?.taskTokenAttempt === attempt ? record.taskToken : undefined;
    if (token === undefined) throw new Error(`agent of ${runId} attempt ${attempt} found no task token`);
    const { tokens } = this.options;
    switch (behaviour.kind) {
      case 'succeed': {
        // The first heartbeat goes out before the uploads, as the agent's supervisor loop does.
        tokens.heartbeat(token);
        await this.writeCheckpoint(runId, attempt, 9);
        await this.put(
          `runs/${runId}/outputs/_manifest.json`,
          JSON.stringify({ runId, attempt, uri: `s3://${this.options.bucket}/runs/${runId}/outputs/`, files: [{ key: 'model.onnx', bytes: 42 }], bytes: 42 }),
        );
        tokens.heartbeat(token);
        tokens.success(token, JSON.stringify({ exitCode: 0, outputs: `s3://${this.options.bucket}/runs/${runId}/outputs/_manifest.json` }));
        return;
      }
      case 'fail':
        tokens.failure(token, 'Training.Failed', JSON.stringify({ exitCode: behaviour.exitCode, logTail: 'Traceback\nValueError: bad batch' }));
        return;
      case 'interrupt': {
        const checkpoint = await this.writeCheckpoint(runId, attempt, 3);
        tokens.failure(token, 'Spot.Interrupted', JSON.stringify({ checkpoint: { uri: checkpoint }, reason: 'spot-warning' }));
        return;
      }
      case 'silent':
        return;
    }
  }
}

/** A simulated account on a dynalite of its own, set up (runs table and bucket created), with the task tokens its agents answer. */
export interface RunningAccount {
  world: SimulatedAccount;
  tokens: TaskTokens;
  /** The dynalite holding the runs table (for adapters a test builds beside the world's). */
  dynamoEndpoint: string;
  close(): Promise<void>;
}

/** Starts what each state-machine test file runs its scenarios in; `close` stops its dynalite. */
export async function startSimulatedAccount(options: { motoEndpoint: string; bucket: string; table?: string }): Promise<RunningAccount> {
  const dynalite = await startDynalite();
  const tokens = new TaskTokens();
  const world = new SimulatedAccount({ dynamoEndpoint: dynalite.endpoint, motoEndpoint: options.motoEndpoint, table: options.table ?? 'runs', bucket: options.bucket, tokens });
  try {
    await world.setUp();
  } catch (error) {
    await dynalite.close();
    throw error;
  }
  return { world, tokens, dynamoEndpoint: dynalite.endpoint, close: () => dynalite.close() };
}

/** The task of train-run that runs build-image as a nested execution (bound by its resource ARN). */
export const START_BUILD = 'arn:aws:states:::states:startExecution.sync:2';

/**
 * Every task of train-run bound to its real handler over `deps`, as the deployed machine's Lambda
 * ARNs are; BuildImage, a nested execution of build-image, to `buildImage`.
 */
export function trainRunLambdas(world: SimulatedAccount, deps: StepDeps, buildImage: LocalLambda): Record<string, LocalLambda> {
  return {
    ValidateRunLambdaFunction: validateRun.createHandler(deps),
    EnsureImageLambdaFunction: ensureImage.createHandler(deps),
    [START_BUILD]: buildImage,
    ProvisionInstanceLambdaFunction: provisionInstance.createHandler(deps),
    AwaitReplacementLambdaFunction: awaitReplacement.createHandler(deps),
    CheckInstanceLambdaFunction: checkInstance.createHandler(deps),
    PrefetchDataLambdaFunction: prefetchData.createHandler(deps),
    LaunchTrainingLambdaFunction: launchTraining.createHandler(deps),
    FinalizeArtifactsLambdaFunction: finalizeArtifacts.createHandler(deps),
    ReleaseResourcesLambdaFunction: releaseResources.createHandler(deps),
    DecideRecoveryLambdaFunction: decideRecovery.createHandler(deps),
    FinishRunLambdaFunction: finishRun.createHandler(deps),
    // The same store as the steps, so the volume steps' transitions are recorded too.
    RunVolumeLambdaFunction: runVolume.createHandler({ ...world.volumeDeps(), store: deps.store }),
  };
}
