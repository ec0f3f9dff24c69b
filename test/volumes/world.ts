/** The volume and image step dependencies over the fake EC2/SSM/ECR and a dynalite table. */
import { DynamoCatalog } from '../../shared/adapters/dynamo-catalog';
import { DynamoRunStore } from '../../shared/adapters/dynamo-run-store';
import { Ec2Compute } from '../../shared/adapters/ec2-compute';
import { Ec2Volumes } from '../../shared/adapters/ec2-volumes';
import { EcrImages } from '../../shared/adapters/ecr-images';
import { DEFAULT_VOLUME_TUNING, HELPER_AMI_PARAMETER, type VolumeDeps } from '../../shared/composition/volumes';
import { createRunsTable, dynamoClient, dynamoDocumentClient } from '../support/aws-clients';
import type { FakeAws } from './fake-aws';
import { TEST_STACK } from '../support/stack';

const once = { attempts: 1, baseMs: 1 };

/** Creates a fresh runs table on `endpoint` and returns deps over it and `fake`. */
export async function volumeDeps(fake: FakeAws, endpoint: string, name: string): Promise<VolumeDeps> {
  const table = `${name}-${Date.now()}`;
  await createRunsTable(dynamoClient(endpoint), table);
  const documents = dynamoDocumentClient(endpoint);
  return {
    volumes: new Ec2Volumes({ ec2: fake.ec2Client, stack: TEST_STACK, throttleRetry: once, waiterDelay: { min: 1, max: 1 } }),
    compute: new Ec2Compute({ ec2: fake.ec2Client, ssm: fake.ssmClient, stack: TEST_STACK, throttleRetry: once, amiParameter: HELPER_AMI_PARAMETER }),
    catalog: new DynamoCatalog(documents, table),
    registry: new EcrImages(fake.ecrClient, { throttleRetry: once }),
    store: new DynamoRunStore(documents, table),
    clock: () => new Date('2026-11-25T12:00:00Z'),
    config: {
      ...DEFAULT_VOLUME_TUNING,
      region: 'us-east-1',
      runsBucket: 'runctl-runs',
      helperInstanceProfile: 'runctl-helper',
      builderInstanceProfile: 'runctl-builder',
      helperMaxChecks: 3,
      fillMaxPolls: 5,
      buildMaxPolls: 5,
      snapshotMaxPolls: 5,
      waiterSeconds: 5,
    },
  };
}
