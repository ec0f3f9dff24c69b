import { EC2Client } from '@aws-sdk/client-ec2';
import { S3Client } from '@aws-sdk/client-s3';
import { ExecutionAlreadyExists, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { DynamoCatalog } from '../../shared/adapters/dynamo-catalog';
import { DynamoExperiments } from '../../shared/adapters/dynamo-experiments';
import { DynamoModels } from '../../shared/adapters/dynamo-models';
import { DynamoRunStore } from '../../shared/adapters/dynamo-run-store';
import { Ec2Compute } from '../../shared/adapters/ec2-compute';
import { S3ModelBlobs } from '../../shared/adapters/s3-model-blobs';
import { SfnExecutions } from '../../shared/adapters/sfn-executions';
import { apiLogger } from '../../shared/composition/api';
import type { VolumeApiDeps } from '../../shared/composition/volumes';
import { startHttpApi, type LocalApiDeps, type RunningHttpApi } from '../../local/http-api';
import { createRunsTable, dynamoClient, dynamoDocumentClient } from '../support/aws-clients';
import { startDynalite, type RunningDynalite } from '../support/dynalite';
import { startS3rver, type S3rverHandle } from '../support/s3rver';
import { TEST_STACK } from '../support/stack';

export const LOCAL_OWNER = 'arn:aws:iam::000000000000:user/local';
const STATE_MACHINE = 'arn:aws:states:us-east-1:000000000000:stateMachine:runctl-local-train-run';
export const PREWARM_MACHINE = 'arn:aws:states:us-east-1:000000000000:stateMachine:runctl-local-prewarm-volume';
export const BUILD_MACHINE = 'arn:aws:states:us-east-1:000000000000:stateMachine:runctl-local-build-image';

/** A prewarm-volume or build-image execution the volume routes started. */
export interface StartedMachineExecution {
  stateMachineArn: string;
  name: string;
  input: unknown;
}

/** The API handlers over dynalite and s3rver, with Step Functions mocked (nothing trains). */
export interface LocalStack {
  api: RunningHttpApi;
  deps: LocalApiDeps;
  s3: S3Client;
  bucket: string;
  sfn: ReturnType<typeof mockClient>;
  /** The volume and image routes' dependencies: the catalog over the same table, their executions mocked. */
  volumes: VolumeApiDeps;
  /** Every prewarm and build execution started, in order; a repeated name is refused as Step Functions does. */
  machineExecutions: StartedMachineExecution[];
  stop(): Promise<void>;
}

export async function startLocalStack(options: { bucket?: string; identity?: string } = {}): Promise<LocalStack> {
  const bucket = options.bucket ?? 'runctl-local-runs';
  const [dynalite, s3rver]: [RunningDynalite, S3rverHandle] = await Promise.all([startDynalite(), startS3rver([bucket])]);
  const table = `runs-${Date.now()}`;
  await createRunsTable(dynamoClient(dynalite.endpoint), table);
  const s3 = new S3Client({ endpoint: s3rver.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: s3rver.credentials });
  const sfnClient = new SFNClient({ region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  const sfn = mockClient(sfnClient);
  sfn.on(StartExecutionCommand).callsFake((input: { name?: string }) => ({
    executionArn: `${STATE_MACHINE.replace(':stateMachine:', ':execution:')}:${input.name}`,
    startDate: new Date(),
  }));
  const deps: LocalApiDeps = {
    store: new DynamoRunStore(dynamoDocumentClient(dynalite.endpoint), table),
    executions: new SfnExecutions(sfnClient, STATE_MACHINE),
    compute: new Ec2Compute({ ec2: new EC2Client({ region: 'us-east-1' }), ssm: new SSMClient({ region: 'us-east-1' }), stack: TEST_STACK }),
    clock: () => new Date(),
    logger: apiLogger,
    s3,
    runsBucket: bucket,
  };
  const machineExecutions: StartedMachineExecution[] = [];
  const machinesClient = new SFNClient({ region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  const machines = mockClient(machinesClient);
  machines.on(StartExecutionCommand).callsFake((input: { stateMachineArn?: string; name?: string; input?: string }) => {
    const stateMachineArn = input.stateMachineArn ?? '';
    const name = input.name ?? '';
    if (machineExecutions.some((e) => e.stateMachineArn === stateMachineArn && e.name === name)) {
      throw new ExecutionAlreadyExists({ message: `Execution Already Exists: '${name}'`, $metadata: {} });
    }
    machineExecutions.push({ stateMachineArn, name, input: JSON.parse(input.input ?? 'null') });
    return { executionArn: `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`, startDate: new Date() };
  });
  const volumes: VolumeApiDeps = {
    catalog: new DynamoCatalog(dynamoDocumentClient(dynalite.endpoint), table),
    prewarms: new SfnExecutions(machinesClient, PREWARM_MACHINE),
    builds: new SfnExecutions(machinesClient, BUILD_MACHINE),
    clock: () => new Date(),
    runsBucket: bucket,
  };
  const experiments = { store: deps.store, experiments: new DynamoExperiments(dynamoDocumentClient(dynalite.endpoint), table) };
  const models = { store: deps.store, models: new DynamoModels(dynamoDocumentClient(dynalite.endpoint), table), blobs: new S3ModelBlobs(s3, bucket), clock: () => new Date() };
  const api = await startHttpApi({ deps, volumes, experiments, models, identity: options.identity ?? LOCAL_OWNER });
  return {
    api,
    deps,
    s3,
    bucket,
    sfn,
    volumes,
    machineExecutions,
    stop: async () => {
      await api.close();
      s3.destroy();
      sfn.restore();
      machines.restore();
      await Promise.all([dynalite.close(), s3rver.stop()]);
    },
  };
}
