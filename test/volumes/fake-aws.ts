/**
 * A small stateful EC2 + SSM + ECR behind aws-sdk-client-mock: volumes, snapshots, instances,
 * attachments, SSM commands and repositories behave as the real services answer them, so the
 * real adapters and handlers run unchanged, and each scenario can inject one failure.
 */
import {
  AttachVolumeCommand,
  CreateSnapshotCommand,
  CreateVolumeCommand,
  DeleteSnapshotCommand,
  DeleteVolumeCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  DescribeSubnetsCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
  EC2Client,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type DescribeInstancesCommandInput,
  type DescribeSnapshotsCommandInput,
  type DescribeVolumesCommandInput,
  type Filter,
  type Tag,
  type TerminateInstancesCommandInput,
} from '@aws-sdk/client-ec2';
import {
  CreateRepositoryCommand,
  DescribeImagesCommand as DescribeEcrImagesCommand,
  DescribeRepositoriesCommand,
  ECRClient,
  GetAuthorizationTokenCommand,
  PutImageTagMutabilityCommand,
  PutLifecyclePolicyCommand,
} from '@aws-sdk/client-ecr';
import {
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  GetParameterCommand,
  SendCommandCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';

export const ACCOUNT = '123456789012';
export const REGISTRY = `${ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com`;

interface FakeVolume {
  id: string;
  az: string;
  state: string;
  size: number;
  type: string;
  snapshotId?: string;
  tags: Record<string, string>;
  attachment?: { instanceId: string; device: string };
}

interface FakeRepository {
  uri: string;
  /** Tag → digest. */
  images: Map<string, string>;
  lifecycle?: string;
  scanOnPush?: boolean;
  mutability: 'MUTABLE' | 'IMMUTABLE';
}

interface FakeInstance {
  id: string;
  az: string;
  state: string;
  type: string;
  tags: Record<string, string>;
}

export interface CommandOutcome {
  status: 'Success' | 'Failed' | 'InProgress';
  exitCode?: number;
  stdout?: string;
  stderr?: string;
}

function awsError(name: string, message = name): Error {
  return Object.assign(new Error(message), { name, Code: name, $metadata: { httpStatusCode: 400 } });
}

function tagsOf(specs: { ResourceType?: string; Tags?: Tag[] }[] | undefined, type: string): Record<string, string> {
  const tags = specs?.find((s) => s.ResourceType === type)?.Tags ?? [];
  return Object.fromEntries(tags.map((t) => [t.Key ?? '', t.Value ?? '']));
}

function toTags(tags: Record<string, string>): Tag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

function matches(tags: Record<string, string>, state: string, filters: Filter[] | undefined): boolean {
  return (filters ?? []).every((f) => {
    const values = f.Values ?? [];
    if (f.Name === 'tag-key') return values.some((v) => v in tags);
    if (f.Name === 'instance-state-name') return values.includes(state);
    if (f.Name?.startsWith('tag:')) return values.includes(tags[f.Name.slice(4)] ?? '\0');
    return true;
  });
}

export class FakeAws {
  readonly ec2Client = new EC2Client({ region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  readonly ssmClient = new SSMClient({ region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  readonly ecrClient = new ECRClient({ region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  readonly ec2 = mockClient(this.ec2Client);
  readonly ssm = mockClient(this.ssmClient);
  readonly ecr = mockClient(this.ecrClient);

  readonly volumes = new Map<string, FakeVolume>();
  readonly snapshots = new Map<string, { id: string; state: string; volumeSize: number; tags: Record<string, string>; polls: number }>();
  readonly instances = new Map<string, FakeInstance>();
  readonly commands = new Map<string, { instanceId: string; script: string }>();
  readonly repositories = new Map<string, FakeRepository>();
  /** Every script sent through SSM, in order. */
  readonly scripts: string[] = [];

  /** Scenario knobs. */
  commandOutcome: (script: string) => CommandOutcome = () => ({ status: 'Success', stdout: '' });
  /** CheckSnapshot polls before a snapshot completes. */
  snapshotPolls = 1;
  /** Fail the next call of a command (by its class name) with this error. */
  failNext = new Map<string, Error>();
  private sequence = 0;

  constructor() {
    this.install();
  }

  private id(prefix: string): string {
    this.sequence += 1;
    return `${prefix}-${this.sequence.toString(16).padStart(17, '0')}`;
  }

  private injected(command: string): void {
    const error = this.failNext.get(command);
    if (error !== undefined) {
      this.failNext.delete(command);
      throw error;
    }
  }

  private describeVolume(v: FakeVolume) {
    return {
      VolumeId: v.id,
      AvailabilityZone: v.az,
      State: v.state,
      Size: v.size,
      VolumeType: v.type,
      SnapshotId: v.snapshotId ?? '',
      Tags: toTags(v.tags),
      Attachments: v.attachment === undefined ? [] : [{ InstanceId: v.attachment.instanceId, Device: v.attachment.device, State: 'attached', VolumeId: v.id }],
    };
  }

  private install(): void {
    const { ec2, ssm, ecr } = this;
    ec2.on(CreateVolumeCommand).callsFake((input) => {
      this.injected('CreateVolumeCommand');
      if (input.SnapshotId !== undefined && !this.snapshots.has(input.SnapshotId)) throw awsError('InvalidSnapshot.NotFound');
      const volume: FakeVolume = {
        id: this.id('vol'),
        az: input.AvailabilityZone ?? '',
        state: 'available',
        size: input.Size ?? 1,
        type: input.VolumeType ?? 'gp3',
        snapshotId: input.SnapshotId,
        tags: tagsOf(input.TagSpecifications, 'volume'),
      };
      this.volumes.set(volume.id, volume);
      return { ...this.describeVolume(volume), State: 'creating' };
    });
    ec2.on(DescribeVolumesCommand).callsFake((input: DescribeVolumesCommandInput) => {
      if (input.VolumeIds !== undefined) {
        const found = input.VolumeIds.map((id) => this.volumes.get(id));
        if (found.some((v) => v === undefined)) throw awsError('InvalidVolume.NotFound');
        return { Volumes: found.flatMap((v) => (v === undefined ? [] : [this.describeVolume(v)])) };
      }
      return { Volumes: [...this.volumes.values()].filter((v) => matches(v.tags, v.state, input.Filters)).map((v) => this.describeVolume(v)) };
    });
    ec2.on(AttachVolumeCommand).callsFake((input) => {
      this.injected('AttachVolumeCommand');
      const volume = this.volumes.get(input.VolumeId ?? '');
      const instance = this.instances.get(input.InstanceId ?? '');
      if (volume === undefined) throw awsError('InvalidVolume.NotFound');
      if (instance === undefined) throw awsError('InvalidInstanceID.NotFound');
      if (volume.attachment !== undefined) throw awsError('VolumeInUse');
      if (volume.az !== instance.az) throw awsError('InvalidVolume.ZoneMismatch');
      volume.attachment = { instanceId: instance.id, device: input.Device ?? '' };
      volume.state = 'in-use';
      return { State: 'attaching', VolumeId: volume.id, InstanceId: instance.id };
    });
    ec2.on(DetachVolumeCommand).callsFake((input) => {
      const volume = this.volumes.get(input.VolumeId ?? '');
      if (volume === undefined) throw awsError('InvalidVolume.NotFound');
      if (volume.attachment === undefined) throw awsError('IncorrectState');
      volume.attachment = undefined;
      volume.state = 'available';
      return { State: 'detaching', VolumeId: volume.id };
    });
    ec2.on(DeleteVolumeCommand).callsFake((input) => {
      const volume = this.volumes.get(input.VolumeId ?? '');
      if (volume === undefined) throw awsError('InvalidVolume.NotFound');
      if (volume.attachment !== undefined) throw awsError('VolumeInUse');
      this.volumes.delete(volume.id);
      return {};
    });
    ec2.on(CreateSnapshotCommand).callsFake((input) => {
      this.injected('CreateSnapshotCommand');
      const volume = this.volumes.get(input.VolumeId ?? '');
      if (volume === undefined) throw awsError('InvalidVolume.NotFound');
      const id = this.id('snap');
      this.snapshots.set(id, { id, state: 'pending', volumeSize: volume.size, tags: tagsOf(input.TagSpecifications, 'snapshot'), polls: 0 });
      return { SnapshotId: id, State: 'pending' };
    });
    ec2.on(DescribeSnapshotsCommand).callsFake((input: DescribeSnapshotsCommandInput) => {
      if (input.SnapshotIds !== undefined) {
        const found = input.SnapshotIds.map((id) => this.snapshots.get(id));
        if (found.some((s) => s === undefined)) throw awsError('InvalidSnapshot.NotFound');
        return {
          Snapshots: found.flatMap((s) => {
            if (s === undefined) return [];
            s.polls += 1;
            if (s.state === 'pending' && s.polls >= this.snapshotPolls) s.state = 'completed';
            return [{ SnapshotId: s.id, State: s.state, VolumeSize: s.volumeSize, Progress: s.state === 'completed' ? '100%' : '40%', Tags: toTags(s.tags) }];
          }),
        };
      }
      const list = [...this.snapshots.values()].filter((s) => matches(s.tags, s.state, input.Filters));
      return { Snapshots: list.map((s) => ({ SnapshotId: s.id, State: s.state, VolumeSize: s.volumeSize, Tags: toTags(s.tags) })) };
    });
    ec2.on(DeleteSnapshotCommand).callsFake((input) => {
      if (!this.snapshots.delete(input.SnapshotId ?? '')) throw awsError('InvalidSnapshot.NotFound');
      return {};
    });
    ec2.on(DescribeImagesCommand).resolves({ Images: [{ ImageId: 'ami-0123456789abcdef0', RootDeviceName: '/dev/xvda' }] });
    ec2.on(DescribeSubnetsCommand).resolves({
      Subnets: [
        { SubnetId: 'subnet-0aaa', AvailabilityZone: 'us-east-1a' },
        { SubnetId: 'subnet-0bbb', AvailabilityZone: 'us-east-1b' },
      ],
    });
    ec2.on(RunInstancesCommand).callsFake((input) => {
      this.injected('RunInstancesCommand');
      const az = input.SubnetId === 'subnet-0bbb' ? 'us-east-1b' : 'us-east-1a';
      const instance: FakeInstance = { id: this.id('i'), az, state: 'running', type: input.InstanceType ?? 'c6i.large', tags: tagsOf(input.TagSpecifications, 'instance') };
      this.instances.set(instance.id, instance);
      return { Instances: [this.describeInstance(instance)] };
    });
    ec2.on(DescribeInstancesCommand).callsFake((input: DescribeInstancesCommandInput) => {
      const list = input.InstanceIds !== undefined
        ? input.InstanceIds.flatMap((id) => { const i = this.instances.get(id); return i === undefined ? [] : [i]; })
        : [...this.instances.values()].filter((i) => matches(i.tags, i.state, input.Filters));
      return { Reservations: list.length === 0 ? [] : [{ Instances: list.map((i) => this.describeInstance(i)) }] };
    });
    ec2.on(TerminateInstancesCommand).callsFake((input: TerminateInstancesCommandInput) => {
      for (const id of input.InstanceIds ?? []) {
        const instance = this.instances.get(id);
        if (instance === undefined) throw awsError('InvalidInstanceID.NotFound');
        instance.state = 'terminated';
        // EC2 detaches every volume of a terminated instance.
        for (const v of this.volumes.values()) if (v.attachment?.instanceId === id) { v.attachment = undefined; v.state = 'available'; }
      }
      return { TerminatingInstances: (input.InstanceIds ?? []).map((InstanceId) => ({ InstanceId })) };
    });

    ssm.on(GetParameterCommand).resolves({ Parameter: { Value: 'ami-0123456789abcdef0' } });
    ssm.on(DescribeInstanceInformationCommand).callsFake((input) => {
      const id = input.Filters?.[0]?.Values?.[0] ?? '';
      const instance = this.instances.get(id);
      return { InstanceInformationList: instance?.state === 'running' ? [{ InstanceId: id, PingStatus: 'Online' }] : [] };
    });
    ssm.on(SendCommandCommand).callsFake((input) => {
      const id = this.id('cmd');
      const script = input.Parameters?.commands?.[0] ?? '';
      this.commands.set(id, { instanceId: input.InstanceIds?.[0] ?? '', script });
      this.scripts.push(script);
      return { Command: { CommandId: id } };
    });
    ssm.on(GetCommandInvocationCommand).callsFake((input) => {
      const command = this.commands.get(input.CommandId ?? '');
      if (command === undefined) throw awsError('InvocationDoesNotExist');
      const outcome = this.commandOutcome(command.script);
      return {
        Status: outcome.status,
        ResponseCode: outcome.exitCode ?? (outcome.status === 'Success' ? 0 : -1),
        StandardOutputContent: outcome.stdout ?? '',
        StandardErrorContent: outcome.stderr ?? '',
      };
    });

    ecr.on(DescribeRepositoriesCommand).callsFake((input) => {
      const name = input.repositoryNames?.[0] ?? '';
      const repo = this.repositories.get(name);
      if (repo === undefined) throw awsError('RepositoryNotFoundException');
      return { repositories: [{ repositoryName: name, repositoryUri: repo.uri, registryId: ACCOUNT, imageTagMutability: repo.mutability }] };
    });
    ecr.on(CreateRepositoryCommand).callsFake((input) => {
      const name = input.repositoryName ?? '';
      if (this.repositories.has(name)) throw awsError('RepositoryAlreadyExistsException');
      const repo: FakeRepository = {
        uri: `${REGISTRY}/${name}`,
        images: new Map<string, string>(),
        scanOnPush: input.imageScanningConfiguration?.scanOnPush,
        mutability: input.imageTagMutability === 'IMMUTABLE' ? 'IMMUTABLE' : 'MUTABLE',
      };
      this.repositories.set(name, repo);
      return { repository: { repositoryName: name, repositoryUri: repo.uri, registryId: ACCOUNT, imageTagMutability: repo.mutability } };
    });
    ecr.on(PutImageTagMutabilityCommand).callsFake((input) => {
      const repo = this.repositories.get(input.repositoryName ?? '');
      if (repo === undefined) throw awsError('RepositoryNotFoundException');
      repo.mutability = input.imageTagMutability === 'IMMUTABLE' ? 'IMMUTABLE' : 'MUTABLE';
      return { repositoryName: input.repositoryName, registryId: ACCOUNT, imageTagMutability: repo.mutability };
    });
    ecr.on(PutLifecyclePolicyCommand).callsFake((input) => {
      const repo = this.repositories.get(input.repositoryName ?? '');
      if (repo === undefined) throw awsError('RepositoryNotFoundException');
      repo.lifecycle = input.lifecyclePolicyText;
      return {};
    });
    ecr.on(DescribeEcrImagesCommand).callsFake((input) => {
      const repo = this.repositories.get(input.repositoryName ?? '');
      if (repo === undefined) throw awsError('RepositoryNotFoundException');
      const digest = repo.images.get(input.imageIds?.[0]?.imageTag ?? '');
      if (digest === undefined) throw awsError('ImageNotFoundException');
      return { imageDetails: [{ imageDigest: digest }] };
    });
    ecr.on(GetAuthorizationTokenCommand).resolves({
      authorizationData: [{ authorizationToken: 'QVdTOnNlY3JldA==', proxyEndpoint: `https://${REGISTRY}`, expiresAt: new Date('2030-01-01T00:00:00Z') }],
    });
  }

  /**
   * A push of `tag` as the registry takes it: an IMMUTABLE repository refuses a tag it holds
   * already, whatever the digest (ImageTagAlreadyExistsException, which `docker push` reports as
   * "tag invalid"); false then, and the tag keeps its digest.
   */
  push(repositoryName: string, tag: string, digest: string): boolean {
    const repo = this.repositories.get(repositoryName);
    if (repo === undefined) return false;
    if (repo.mutability === 'IMMUTABLE' && repo.images.has(tag)) return false;
    repo.images.set(tag, digest);
    return true;
  }

  private describeInstance(i: FakeInstance) {
    return {
      InstanceId: i.id,
      InstanceType: i.type,
      State: { Name: i.state },
      Placement: { AvailabilityZone: i.az },
      SubnetId: i.az === 'us-east-1b' ? 'subnet-0bbb' : 'subnet-0aaa',
      Tags: toTags(i.tags),
      LaunchTime: new Date(),
    };
  }
}
