import { EC2Client } from '@aws-sdk/client-ec2';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { DynamoRunStore } from '../../shared/adapters/dynamo-run-store';
import { Ec2Compute } from '../../shared/adapters/ec2-compute';
import { SfnExecutions } from '../../shared/adapters/sfn-executions';
import { apiLogger } from '../../shared/composition/api';
import { startHttpApi, type LocalApiDeps, type RunningHttpApi } from '../../local/http-api';
import { createRunsTable, dynamoClient, dynamoDocumentClient } from '../support/aws-clients';
import { startDynalite, type RunningDynalite } from '../support/dynalite';
import { startS3rver, type S3rverHandle } from '../support/s3rver';

export const LOCAL_OWNER = 'arn:aws:iam::000000000000:user/local';
const STATE_MACHINE = 'arn:aws:states:us-east-1:000000000000:stateMachine:runctl-local-train-run';

/** The API handlers over dynalite and s3rver, with Step Functions mocked (nothing trains). */
export interface LocalStack {
  api: RunningHttpApi;
  deps: LocalApiDeps;
  s3: S3Client;
  bucket: string;
  sfn: ReturnType<typeof mockClient>;
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
    compute: new Ec2Compute({ ec2: new EC2Client({ region: 'us-east-1' }), ssm: new SSMClient({ region: 'us-east-1' }) }),
    clock: () => new Date(),
    logger: apiLogger,
    s3,
    runsBucket: bucket,
  };
  const api = await startHttpApi({ deps, identity: options.identity ?? LOCAL_OWNER });
  return {
    api,
    deps,
    s3,
    bucket,
    sfn,
    stop: async () => {
      await api.close();
      s3.destroy();
      sfn.restore();
      await Promise.all([dynalite.close(), s3rver.stop()]);
    },
  };
}
