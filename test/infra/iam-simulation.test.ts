import { runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import { beforeAll, describe, expect, it } from 'vitest';
import { ownerSecretsPath, runSessionPolicy, type PolicyDocument } from '../../shared/domain/run-access';
import { ensurePackagedTemplate, FAKE, fakeName, packagedRoles, type PackagedRole } from './packaged-template';

/**
 * IAM proven by evaluation, not by reading: every role of the packaged CloudFormation template
 * (osls package output, intrinsics resolved against a fake account) and the session policy the
 * agent routes really build are evaluated with an IAM policy simulator, as instance B of run B
 * trying to reach run A — and as B on its own run.
 */

let roles: Map<string, PackagedRole>;
let bucket: string;
let table: string;
const account = FAKE.accountId;
const region = FAKE.region;
const SECRETS_PREFIX = `/runctl/${FAKE.stage}/secrets`;
const OWNER_A = `arn:aws:iam::${account}:user/alice`;
const OWNER_B = `arn:aws:iam::${account}:role/bob`;
const DATASETS = 'datasets-bucket';

beforeAll(() => {
  ensurePackagedTemplate();
  roles = packagedRoles();
  bucket = fakeName('RunsBucket');
  table = fakeName('RunsTable');
}, 900_000);

function role(logicalId: string): PackagedRole {
  const found = roles.get(logicalId);
  if (found === undefined) throw new Error(`no role ${logicalId} in the packaged template`);
  return found;
}

interface Request {
  action: string;
  resource: string;
  context?: Record<string, string | string[]>;
}

/** Allowed / ImplicitlyDenied / ExplicitlyDenied for one request by a session of `who`. */
async function decide(
  who: PackagedRole,
  request: Request,
  sessionPolicy?: PolicyDocument,
  session = 'i-0bbbbbbbbbbbbbbbb',
  resourcePolicy?: unknown,
): Promise<string> {
  const simulation: Simulation = {
    request: {
      principal: `arn:aws:sts::${account}:assumed-role/${who.name}/${session}`,
      action: request.action,
      resource: { resource: request.resource, accountId: account },
      contextVariables: request.context ?? {},
    },
    identityPolicies: who.policies,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    sessionPolicy,
    resourcePolicy,
  };
  const result = await runSimulation(simulation, {});
  if (result.resultType === 'error') throw new Error(`simulation refused ${request.action} ${request.resource}: ${JSON.stringify(result.errors)}`);
  if (result.resultType !== 'single') throw new Error(`expected one result for ${request.resource}`);
  return result.overallResult;
}

/** The session policy of a run, built by the code the agent routes run. */
function sessionPolicyOf(runId: string, owner: string, dataSources: string[] = []): PolicyDocument {
  return runSessionPolicy({
    partition: 'aws',
    region,
    accountId: account,
    runsBucket: bucket,
    runId,
    codeBundle: `s3://${bucket}/bundles/${'b'.repeat(64)}.tar.gz`,
    dataSources,
    owner,
    secretsPrefix: SECRETS_PREFIX,
  });
}

const RUN_REQUESTS = [
  'read its checkpoint',
  'overwrite its checkpoint',
  'list its prefix',
  "read its owner's secret",
  "read its owner's Secrets Manager secret",
] as const;

/** One of RUN_REQUESTS against a run (built when a test runs: the bucket is known only after packaging). */
function against(name: (typeof RUN_REQUESTS)[number], runId: string, owner: string): Request {
  const request = requestsAgainst(runId, owner)[name];
  if (request === undefined) throw new Error(name);
  return request;
}

/** What a hostile script of run B tries against run A (and the account), and what B's own run needs. */
function requestsAgainst(runId: string, owner: string): Record<string, Request> {
  return {
    'read its checkpoint': { action: 's3:GetObject', resource: `arn:aws:s3:::${bucket}/runs/${runId}/checkpoints/0001-000001/model.pt` },
    'overwrite its checkpoint': { action: 's3:PutObject', resource: `arn:aws:s3:::${bucket}/runs/${runId}/checkpoints/0001-000001/model.pt` },
    'list its prefix': { action: 's3:ListBucket', resource: `arn:aws:s3:::${bucket}`, context: { 's3:prefix': `runs/${runId}/` } },
    "read its owner's secret": {
      action: 'ssm:GetParameter',
      resource: `arn:aws:ssm:${region}:${account}:parameter${ownerSecretsPath(SECRETS_PREFIX, owner)}wandb-key`,
    },
    "read its owner's Secrets Manager secret": {
      action: 'secretsmanager:GetSecretValue',
      resource: `arn:aws:secretsmanager:${region}:${account}:secret:${ownerSecretsPath(SECRETS_PREFIX, owner)}mlflow-AbCdEf`,
    },
  };
}

const ACCOUNT_WIDE: Record<string, Request> = {
  'read a run record or its task token': { action: 'dynamodb:GetItem', resource: '' },
  // SendTask* have no resource type (the token is the capability): the request is on "*".
  'complete a task with a token': { action: 'states:SendTaskSuccess', resource: '*' },
  'read a parameter outside the secrets prefix': { action: 'ssm:GetParameter', resource: `arn:aws:ssm:${region}:${account}:parameter/prod/db-password` },
  'read a Secrets Manager secret outside the secrets prefix': {
    action: 'secretsmanager:GetSecretValue',
    resource: `arn:aws:secretsmanager:${region}:${account}:secret:prod/db-password-AbCdEf`,
  },
  'call KMS Decrypt directly': { action: 'kms:Decrypt', resource: `arn:aws:kms:${region}:${account}:key/1234abcd-12ab-34cd-56ef-1234567890ab` },
  'decrypt through another service than the secret stores': {
    action: 'kms:Decrypt',
    resource: `arn:aws:kms:${region}:${account}:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
    context: { 'kms:ViaService': `s3.${region}.amazonaws.com` },
  },
  'list every run': { action: 's3:ListBucket', resource: '', context: { 's3:prefix': 'runs/' } },
  'terminate an instance': { action: 'ec2:TerminateInstances', resource: `arn:aws:ec2:${region}:${account}:instance/i-0aaaaaaaaaaaaaaaa` },
  'push to an image repository': { action: 'ecr:PutImage', resource: `arn:aws:ecr:${region}:${account}:repository/runctl/someone-else` },
};

function accountWide(name: string): Request {
  const request = ACCOUNT_WIDE[name];
  if (request === undefined) throw new Error(name);
  if (request.action === 'dynamodb:GetItem') return { ...request, resource: `arn:aws:dynamodb:${region}:${account}:table/${table}` };
  if (request.action === 's3:ListBucket') return { ...request, resource: `arn:aws:s3:::${bucket}` };
  return request;
}

describe('the packaged template', () => {
  it('attaches no AWS managed policy to any role (each would be unevaluated, and the SSM one reads every parameter)', () => {
    for (const r of roles.values()) expect(r.awsManaged, r.logicalId).toEqual([]);
    expect(roles.size).toBeGreaterThan(10);
  });
});

describe('instance B (the training instance role itself)', () => {
  const B = () => role('TrainingInstanceRole');

  it.each(RUN_REQUESTS)('cannot %s of run A', async (name) => {
    expect(await decide(B(), against(name, 'run-a', OWNER_A))).not.toBe('Allowed');
  });

  it.each(RUN_REQUESTS)('cannot %s of its own run B either (only run credentials can)', async (name) => {
    expect(await decide(B(), against(name, 'run-b', OWNER_B))).not.toBe('Allowed');
  });

  it.each(Object.keys(ACCOUNT_WIDE))('cannot %s', async (name) => {
    expect(await decide(B(), accountWide(name))).not.toBe('Allowed');
  });

  it('may call the agent routes of its own stack, and no other API route', async () => {
    const api = `arn:aws:execute-api:${region}:${account}:${FAKE.httpApiId}`;
    expect(await decide(B(), { action: 'execute-api:Invoke', resource: `${api}/$default/POST/agent/credentials` })).toBe('Allowed');
    expect(await decide(B(), { action: 'execute-api:Invoke', resource: `${api}/$default/POST/agent/heartbeat` })).toBe('Allowed');
    expect(await decide(B(), { action: 'execute-api:Invoke', resource: `${api}/$default/POST/runs` })).not.toBe('Allowed');
    expect(await decide(B(), { action: 'execute-api:Invoke', resource: `${api}/$default/GET/runs/run-a` })).not.toBe('Allowed');
  });

  it('keeps the SSM agent working: registration and Run Command messages', async () => {
    expect(await decide(B(), { action: 'ssm:UpdateInstanceInformation', resource: `arn:aws:ec2:${region}:${account}:instance/i-0bbbbbbbbbbbbbbbb` })).toBe('Allowed');
    expect(await decide(B(), { action: 'ec2messages:GetMessages', resource: '*' })).toBe('Allowed');
    expect(await decide(B(), { action: 'ssmmessages:OpenDataChannel', resource: '*' })).toBe('Allowed');
  });
});

describe("run B's credentials (the run-access role under B's session policy, as the agent routes vend them)", () => {
  const R = () => role('RunAccessRole');
  const policyB = () => sessionPolicyOf('run-b', OWNER_B, [`s3://${DATASETS}/imagenet/`, `s3://${bucket}/runs/run-a/outputs/`]);

  it.each(RUN_REQUESTS)('may %s of its own run', async (name) => {
    expect(await decide(R(), against(name, 'run-b', OWNER_B), policyB(), 'run-b-1')).toBe('Allowed');
  });

  it.each(RUN_REQUESTS)('cannot %s of run A', async (name) => {
    expect(await decide(R(), against(name, 'run-a', OWNER_A), policyB(), 'run-b-1')).not.toBe('Allowed');
  });

  it("reads its owner's secrets in Secrets Manager, and no other owner's, nor any outside the prefix", async () => {
    const read = (name: string) =>
      decide(R(), { action: 'secretsmanager:GetSecretValue', resource: `arn:aws:secretsmanager:${region}:${account}:secret:${name}` }, policyB(), 'run-b-1');
    expect(await read(`${ownerSecretsPath(SECRETS_PREFIX, OWNER_B)}wandb-AbCdEf`)).toBe('Allowed');
    expect(await read(`${ownerSecretsPath(SECRETS_PREFIX, OWNER_B)}team/mlflow-AbCdEf`)).toBe('Allowed');
    expect(await read(`${ownerSecretsPath(SECRETS_PREFIX, OWNER_A)}wandb-AbCdEf`)).not.toBe('Allowed');
    expect(await read(`${SECRETS_PREFIX}/shared-AbCdEf`)).not.toBe('Allowed');
    expect(await read('/runctl/prod/secrets/x/wandb-AbCdEf')).not.toBe('Allowed');
    expect(await read('wandb-AbCdEf')).not.toBe('Allowed');
    // The owner's path in another region: not this stack's.
    const other = await decide(
      R(),
      { action: 'secretsmanager:GetSecretValue', resource: `arn:aws:secretsmanager:eu-west-1:${account}:secret:${ownerSecretsPath(SECRETS_PREFIX, OWNER_B)}wandb-AbCdEf` },
      policyB(),
      'run-b-1',
    );
    expect(other).not.toBe('Allowed');
  });

  // What Parameter Store and Secrets Manager ask KMS on the caller's behalf (GetParameter
  // --with-decryption, GetSecretValue), under the policy of the AWS managed key (aws/ssm,
  // aws/secretsmanager: any principal of the account, through that service) and of a customer key
  // that leaves access to IAM (the default key policy).
  const KEY = `arn:aws:kms:${region}:${account}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
  const managedKeyPolicy = (service: string) => ({
    Version: '2012-10-17',
    Statement: [{
      Effect: 'Allow',
      Principal: { AWS: '*' },
      Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:CreateGrant', 'kms:DescribeKey'],
      Resource: '*',
      Condition: { StringEquals: { 'kms:CallerAccount': account, 'kms:ViaService': `${service}.${region}.amazonaws.com` } },
    }],
  });
  const iamKeyPolicy = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'kms:*', Resource: '*' }] };
  const decrypt = (via: string | undefined, keyPolicy: unknown, policy: PolicyDocument = policyB(), key = KEY) =>
    decide(
      R(),
      { action: 'kms:Decrypt', resource: key, context: { 'kms:CallerAccount': account, ...(via === undefined ? {} : { 'kms:ViaService': via }) } },
      policy,
      'run-b-1',
      keyPolicy,
    );

  it.each(['ssm', 'secretsmanager'])('decrypts through %s with its AWS managed key, or a key left to IAM', async (service) => {
    expect(await decrypt(`${service}.${region}.amazonaws.com`, managedKeyPolicy(service))).toBe('Allowed');
    expect(await decrypt(`${service}.${region}.amazonaws.com`, iamKeyPolicy)).toBe('Allowed');
  });

  it('needs the kms:Decrypt of its session policy even for an AWS managed key: a session policy bounds what a key policy grants to "*"', async () => {
    const withoutDecrypt: PolicyDocument = { ...policyB(), Statement: policyB().Statement.filter((s) => !s.Action.includes('kms:Decrypt')) };
    expect(await decrypt(`ssm.${region}.amazonaws.com`, managedKeyPolicy('ssm'), withoutDecrypt)).not.toBe('Allowed');
  });

  it('never decrypts by calling KMS itself, through another service or region, or with a key of another account', async () => {
    expect(await decrypt(undefined, iamKeyPolicy)).not.toBe('Allowed');
    expect(await decrypt(undefined, managedKeyPolicy('ssm'))).not.toBe('Allowed');
    expect(await decrypt(`s3.${region}.amazonaws.com`, iamKeyPolicy)).not.toBe('Allowed');
    expect(await decrypt(`ssm.eu-west-1.amazonaws.com`, iamKeyPolicy)).not.toBe('Allowed');
    expect(await decrypt(`ssm.${region}.amazonaws.com`, iamKeyPolicy, policyB(), KEY.replace(account, '210987654321'))).not.toBe('Allowed');
  });

  it('cannot do the same with the ceiling alone for another run: the session policy is what narrows it', async () => {
    // Without the session policy the run-access role reaches every run: the agent routes never vend it bare.
    expect(await decide(R(), against('read its checkpoint', 'run-a', OWNER_A), undefined, 'run-b-1')).toBe('Allowed');
  });

  it.each(Object.keys(ACCOUNT_WIDE))('cannot %s', async (name) => {
    expect(await decide(R(), accountWide(name), policyB(), 'run-b-1')).not.toBe('Allowed');
  });

  it('reads its bundle and its own data source, no other dataset and no other run named as data', async () => {
    const read = (resource: string) => decide(R(), { action: 's3:GetObject', resource }, policyB(), 'run-b-1');
    expect(await read(`arn:aws:s3:::${bucket}/bundles/${'b'.repeat(64)}.tar.gz`)).toBe('Allowed');
    expect(await read(`arn:aws:s3:::${bucket}/bundles/${'c'.repeat(64)}.tar.gz`)).not.toBe('Allowed');
    expect(await read(`arn:aws:s3:::${DATASETS}/imagenet/train/0001.jpg`)).toBe('Allowed');
    expect(await read(`arn:aws:s3:::${DATASETS}/private-medical/scan.dcm`)).not.toBe('Allowed');
    // The spec named run A's outputs as data: the session policy grants no data in the runs bucket.
    expect(await read(`arn:aws:s3:::${bucket}/runs/run-a/outputs/model.pt`)).not.toBe('Allowed');
    const list = (prefix: string) =>
      decide(R(), { action: 's3:ListBucket', resource: `arn:aws:s3:::${DATASETS}`, context: { 's3:prefix': prefix } }, policyB(), 'run-b-1');
    expect(await list('imagenet/train/')).toBe('Allowed');
    expect(await list('private-medical/')).not.toBe('Allowed');
  });

  it('deletes only its own live log chunks: no checkpoint, no log, nothing of run A', async () => {
    const remove = (key: string) => decide(R(), { action: 's3:DeleteObject', resource: `arn:aws:s3:::${bucket}/${key}` }, policyB(), 'run-b-1');
    expect(await remove('runs/run-b/live/attempt-1/log-000000000000')).toBe('Allowed');
    expect(await remove('runs/run-b/checkpoints/0001-000001/model.pt')).not.toBe('Allowed');
    expect(await remove('runs/run-b/logs/attempt-1.log')).not.toBe('Allowed');
    expect(await remove('runs/run-a/live/attempt-1/log-000000000000')).not.toBe('Allowed');
  });

  it('is only assumable by the agent routes function', async () => {
    const template = role('RunAccessRole');
    expect(template.name).toBe(`runctl-${FAKE.stage}-run-access`);
    const control = role('AgentControlIamRoleLambdaExecution');
    expect(await decide(control, { action: 'sts:AssumeRole', resource: template.arn })).toBe('Allowed');
    for (const other of roles.values()) {
      if (other.logicalId === control.logicalId) continue;
      expect(await decide(other, { action: 'sts:AssumeRole', resource: template.arn }), other.logicalId).not.toBe('Allowed');
    }
  });
});

describe('the control plane keeps answering tasks', () => {
  it('lets the agent routes, the cancel route, the instance-state handler and the reconciler answer waiting tasks', async () => {
    for (const id of ['AgentControlIamRoleLambdaExecution', 'CancelRunIamRoleLambdaExecution', 'InstanceStateIamRoleLambdaExecution', 'ReconcileIamRoleLambdaExecution']) {
      expect(await decide(role(id), { action: 'states:SendTaskFailure', resource: '*' }), id).toBe('Allowed');
    }
    expect(await decide(role('AgentControlIamRoleLambdaExecution'), { action: 'states:SendTaskSuccess', resource: '*' })).toBe('Allowed');
    expect(await decide(role('AgentControlIamRoleLambdaExecution'), { action: 'states:SendTaskHeartbeat', resource: '*' })).toBe('Allowed');
  });

  it("lets the agent routes record beats, node outcomes and upload progress on the runs table, and read the nodes' instance states, nothing more of EC2", async () => {
    const control = role('AgentControlIamRoleLambdaExecution');
    const runs = `arn:aws:dynamodb:${region}:${account}:table/${table}`;
    expect(await decide(control, { action: 'dynamodb:UpdateItem', resource: runs })).toBe('Allowed');
    expect(await decide(control, { action: 'dynamodb:DeleteItem', resource: runs })).not.toBe('Allowed');
    expect(await decide(control, { action: 'ec2:DescribeInstances', resource: '*' })).toBe('Allowed');
    for (const action of ['ec2:TerminateInstances', 'ec2:RunInstances', 'ec2:CreateTags']) {
      expect(await decide(control, { action, resource: `arn:aws:ec2:${region}:${account}:instance/i-0aaaaaaaaaaaaaaaa` }), action).not.toBe('Allowed');
    }
  });

  it('lets prepare-replacement answer and heartbeat the run waiting for its replacement, and AwaitReplacement store that wait on the record only', async () => {
    const prepare = role('PrepareReplacementIamRoleLambdaExecution');
    expect(await decide(prepare, { action: 'states:SendTaskSuccess', resource: '*' })).toBe('Allowed');
    expect(await decide(prepare, { action: 'states:SendTaskHeartbeat', resource: '*' })).toBe('Allowed');
    expect(await decide(prepare, { action: 'states:SendTaskFailure', resource: '*' })).not.toBe('Allowed');
    const wait = role('AwaitReplacementIamRoleLambdaExecution');
    const runsTable = `arn:aws:dynamodb:${region}:${account}:table/${table}`;
    expect(await decide(wait, { action: 'dynamodb:UpdateItem', resource: runsTable })).toBe('Allowed');
    for (const action of ['dynamodb:GetItem', 'dynamodb:Scan', 'states:SendTaskSuccess']) {
      expect(await decide(wait, { action, resource: action.startsWith('dynamodb') ? runsTable : '*' }), action).not.toBe('Allowed');
    }
  });
});

describe('no role of the stack but the control plane reads run records or answers tasks', () => {
  it('keeps the instance roles (training, volume helper, image builder) away from records, tokens and parameters', async () => {
    for (const id of ['TrainingInstanceRole', 'VolumeHelperInstanceRole', 'ImageBuilderInstanceRole']) {
      for (const name of ['read a run record or its task token', 'complete a task with a token', 'read a parameter outside the secrets prefix', 'terminate an instance']) {
        expect(await decide(role(id), accountWide(name)), `${id}: ${name}`).not.toBe('Allowed');
      }
    }
  });
});

/**
 * Stack-scoped tags: two stages in one account share EC2, and only the `runctl:stack` tag tells
 * their resources apart. Every change the control plane makes to an instance, volume or snapshot
 * is evaluated on one of this stack's (allowed), one of another stack's and one without the
 * stack tag (both denied), with the tags runctl really puts on it.
 */
const STACK = `runctl-${FAKE.stage}`;
const OTHER_STACK = 'runctl-prod';
const INSTANCE = `arn:aws:ec2:${region}:${account}:instance/i-0cccccccccccccccc`;
const VOLUME = `arn:aws:ec2:${region}:${account}:volume/vol-0cccccccccccccccc`;
const SNAPSHOT = `arn:aws:ec2:${region}::snapshot/snap-0cccccccccccccccc`;
const RUN_ID = 'r-0123456789abcdef';
const TRAINING = { 'runctl:run': RUN_ID, 'runctl:attempt': '1' };
/** A multi-node run's node security group and placement group (shared/adapters/ec2-node-networks.ts). */
const SECURITY_GROUP = `arn:aws:ec2:${region}:${account}:security-group/sg-0dddddddddddddddd`;
const PLACEMENT_GROUP = `arn:aws:ec2:${region}:${account}:placement-group/runctl-${FAKE.stage}-${RUN_ID}`;
const RUN_NETWORK = { 'runctl:run': RUN_ID };
/** The rank tag put on each node of a fleet after its launch (shared/adapters/ec2-compute.ts). */
const RANK_TAG_REQUEST = { 'aws:TagKeys': ['runctl:rank'], 'aws:RequestTag/runctl:rank': '1' };

interface TagScopedRequest {
  role: string;
  action: string;
  resource: string;
  /** How the policy names the tags: the resource's (`aws:ResourceTag`, `ssm:resourceTag` for SSM) or the request's. */
  prefix: 'aws:ResourceTag' | 'ssm:resourceTag' | 'aws:RequestTag';
  tags: Record<string, string>;
  context?: Record<string, string | string[]>;
}

/** The request with `stack` as its stack tag (null: none). */
function withStack(request: TagScopedRequest, stack: string | null): Request {
  const tags = stack === null ? request.tags : { ...request.tags, 'runctl:stack': stack };
  const context = Object.fromEntries(Object.entries(tags).map(([key, value]) => [`${request.prefix}/${key}`, value]));
  return { action: request.action, resource: request.resource, context: { ...context, ...request.context } };
}

const STACK_CHANGES: [string, TagScopedRequest][] = [
  ['the reconciler terminates an instance', { role: 'ReconcileIamRoleLambdaExecution', action: 'ec2:TerminateInstances', resource: INSTANCE, prefix: 'aws:ResourceTag', tags: TRAINING }],
  ['the reconciler tells an agent to stop', { role: 'ReconcileIamRoleLambdaExecution', action: 'ssm:SendCommand', resource: INSTANCE, prefix: 'ssm:resourceTag', tags: TRAINING }],
  ['ReleaseResources terminates an instance', { role: 'ReleaseResourcesIamRoleLambdaExecution', action: 'ec2:TerminateInstances', resource: INSTANCE, prefix: 'aws:ResourceTag', tags: TRAINING }],
  ['ReleaseResources stops an instance', { role: 'ReleaseResourcesIamRoleLambdaExecution', action: 'ec2:StopInstances', resource: INSTANCE, prefix: 'aws:ResourceTag', tags: TRAINING }],
  ['ReleaseResources detaches a volume', { role: 'ReleaseResourcesIamRoleLambdaExecution', action: 'ec2:DetachVolume', resource: VOLUME, prefix: 'aws:ResourceTag', tags: TRAINING }],
  ['cancel asks an agent to checkpoint', { role: 'CancelRunIamRoleLambdaExecution', action: 'ssm:SendCommand', resource: INSTANCE, prefix: 'ssm:resourceTag', tags: TRAINING }],
  ['LaunchTraining starts an agent', { role: 'LaunchTrainingIamRoleLambdaExecution', action: 'ssm:SendCommand', resource: INSTANCE, prefix: 'ssm:resourceTag', tags: TRAINING }],
  ['the spot-warning handler asks an agent to checkpoint', { role: 'SpotWarningIamRoleLambdaExecution', action: 'ssm:SendCommand', resource: INSTANCE, prefix: 'ssm:resourceTag', tags: TRAINING }],
  ['PrefetchData attaches a dataset volume', { role: 'PrefetchDataIamRoleLambdaExecution', action: 'ec2:AttachVolume', resource: VOLUME, prefix: 'aws:ResourceTag', tags: TRAINING }],
  ['prepare-replacement terminates an unwanted replacement', { role: 'PrepareReplacementIamRoleLambdaExecution', action: 'ec2:TerminateInstances', resource: INSTANCE, prefix: 'aws:ResourceTag', tags: TRAINING }],
  ['the helper function terminates a prewarm helper', { role: 'HelperInstanceIamRoleLambdaExecution', action: 'ec2:TerminateInstances', resource: INSTANCE, prefix: 'aws:ResourceTag', tags: { 'runctl:run': 'p-1', 'runctl:helper': 'prewarm-volume' } }],
  ['build cleanup terminates an image builder', { role: 'BuildCleanupIamRoleLambdaExecution', action: 'ec2:TerminateInstances', resource: INSTANCE, prefix: 'aws:ResourceTag', tags: { 'runctl:run': 'b-1', 'runctl:helper': 'build-image' } }],
  ['a prewarm fills its volume through its helper', { role: 'PrewarmFillVolumeIamRoleLambdaExecution', action: 'ssm:SendCommand', resource: INSTANCE, prefix: 'ssm:resourceTag', tags: { 'runctl:run': 'p-1', 'runctl:helper': 'prewarm-volume' } }],
  ['a prewarm snapshots its volume', { role: 'PrewarmSnapshotVolumeIamRoleLambdaExecution', action: 'ec2:CreateSnapshot', resource: VOLUME, prefix: 'aws:ResourceTag', tags: { 'runctl:run': 'p-1', 'runctl:volume': 'prewarm:p-1' } }],
  ['prewarm cleanup deletes a dataset volume', { role: 'PrewarmCleanupIamRoleLambdaExecution', action: 'ec2:DeleteVolume', resource: VOLUME, prefix: 'aws:ResourceTag', tags: { 'runctl:run': 'p-1', 'runctl:volume': 'prewarm:p-1' } }],
  // A dataset snapshot carries the prewarm's tags and no run tag (shared/usecases/volume-prewarm.ts).
  ['prewarm cleanup deletes a dataset snapshot', { role: 'PrewarmCleanupIamRoleLambdaExecution', action: 'ec2:DeleteSnapshot', resource: SNAPSHOT, prefix: 'aws:ResourceTag', tags: { 'runctl:volume': 'prewarm:p-1', 'runctl:prewarm': 'p-1' } }],
  ["run-volume deletes a run's restored volume", { role: 'RunVolumeIamRoleLambdaExecution', action: 'ec2:DeleteVolume', resource: VOLUME, prefix: 'aws:ResourceTag', tags: { 'runctl:run': RUN_ID, 'runctl:volume': `run:${RUN_ID}` } }],
  ['ProvisionInstance launches an instance', { role: 'ProvisionInstanceIamRoleLambdaExecution', action: 'ec2:RunInstances', resource: INSTANCE, prefix: 'aws:RequestTag', tags: TRAINING }],
  ['ProvisionInstance launches its root volume', { role: 'ProvisionInstanceIamRoleLambdaExecution', action: 'ec2:RunInstances', resource: VOLUME, prefix: 'aws:RequestTag', tags: TRAINING }],
  ['ProvisionInstance tags an instance at launch', { role: 'ProvisionInstanceIamRoleLambdaExecution', action: 'ec2:CreateTags', resource: INSTANCE, prefix: 'aws:RequestTag', tags: TRAINING, context: { 'ec2:CreateAction': 'RunInstances' } }],
  ['ProvisionInstance tags a fleet node with its rank', { role: 'ProvisionInstanceIamRoleLambdaExecution', action: 'ec2:CreateTags', resource: INSTANCE, prefix: 'aws:ResourceTag', tags: TRAINING, context: RANK_TAG_REQUEST }],
  ['ProvisionInstance terminates the survivors of a fleet that lost a node', { role: 'ProvisionInstanceIamRoleLambdaExecution', action: 'ec2:TerminateInstances', resource: INSTANCE, prefix: 'aws:ResourceTag', tags: TRAINING }],
  ["ProvisionInstance launches into a run's placement group", { role: 'ProvisionInstanceIamRoleLambdaExecution', action: 'ec2:RunInstances', resource: PLACEMENT_GROUP, prefix: 'aws:ResourceTag', tags: RUN_NETWORK }],
  ["ProvisionInstance launches with a run's node security group", { role: 'ProvisionInstanceIamRoleLambdaExecution', action: 'ec2:RunInstances', resource: SECURITY_GROUP, prefix: 'aws:ResourceTag', tags: RUN_NETWORK }],
  ["prepare-replacement launches a node into its run's placement group", { role: 'PrepareReplacementIamRoleLambdaExecution', action: 'ec2:RunInstances', resource: PLACEMENT_GROUP, prefix: 'aws:ResourceTag', tags: RUN_NETWORK }],
  ["prepare-replacement launches a node with its run's node security group", { role: 'PrepareReplacementIamRoleLambdaExecution', action: 'ec2:RunInstances', resource: SECURITY_GROUP, prefix: 'aws:ResourceTag', tags: RUN_NETWORK }],
  ["ProvisionInstance creates a run's node security group", { role: 'ProvisionInstanceIamRoleLambdaExecution', action: 'ec2:CreateSecurityGroup', resource: SECURITY_GROUP, prefix: 'aws:RequestTag', tags: RUN_NETWORK }],
  ["ProvisionInstance creates a run's placement group", { role: 'ProvisionInstanceIamRoleLambdaExecution', action: 'ec2:CreatePlacementGroup', resource: PLACEMENT_GROUP, prefix: 'aws:RequestTag', tags: RUN_NETWORK }],
  ["ProvisionInstance tags a run's security group at creation", { role: 'ProvisionInstanceIamRoleLambdaExecution', action: 'ec2:CreateTags', resource: SECURITY_GROUP, prefix: 'aws:RequestTag', tags: RUN_NETWORK, context: { 'ec2:CreateAction': 'CreateSecurityGroup' } }],
  ["ProvisionInstance tags a run's placement group at creation", { role: 'ProvisionInstanceIamRoleLambdaExecution', action: 'ec2:CreateTags', resource: PLACEMENT_GROUP, prefix: 'aws:RequestTag', tags: RUN_NETWORK, context: { 'ec2:CreateAction': 'CreatePlacementGroup' } }],
  ["ProvisionInstance opens a run's group to its own nodes", { role: 'ProvisionInstanceIamRoleLambdaExecution', action: 'ec2:AuthorizeSecurityGroupIngress', resource: SECURITY_GROUP, prefix: 'aws:ResourceTag', tags: RUN_NETWORK }],
  ["ProvisionInstance lets a run's nodes send to each other", { role: 'ProvisionInstanceIamRoleLambdaExecution', action: 'ec2:AuthorizeSecurityGroupEgress', resource: SECURITY_GROUP, prefix: 'aws:ResourceTag', tags: RUN_NETWORK }],
  ["ProvisionInstance revokes the allow-all egress of a run's new group", { role: 'ProvisionInstanceIamRoleLambdaExecution', action: 'ec2:RevokeSecurityGroupEgress', resource: SECURITY_GROUP, prefix: 'aws:ResourceTag', tags: RUN_NETWORK }],
  ["ProvisionInstance revokes a stray ingress rule of a run's group", { role: 'ProvisionInstanceIamRoleLambdaExecution', action: 'ec2:RevokeSecurityGroupIngress', resource: SECURITY_GROUP, prefix: 'aws:ResourceTag', tags: RUN_NETWORK }],
  ["ReleaseResources deletes a run's node security group", { role: 'ReleaseResourcesIamRoleLambdaExecution', action: 'ec2:DeleteSecurityGroup', resource: SECURITY_GROUP, prefix: 'aws:ResourceTag', tags: RUN_NETWORK }],
  ["ReleaseResources deletes a run's placement group", { role: 'ReleaseResourcesIamRoleLambdaExecution', action: 'ec2:DeletePlacementGroup', resource: PLACEMENT_GROUP, prefix: 'aws:ResourceTag', tags: RUN_NETWORK }],
  ["the reconciler deletes a run's node security group", { role: 'ReconcileIamRoleLambdaExecution', action: 'ec2:DeleteSecurityGroup', resource: SECURITY_GROUP, prefix: 'aws:ResourceTag', tags: RUN_NETWORK }],
  ["the reconciler deletes a run's placement group", { role: 'ReconcileIamRoleLambdaExecution', action: 'ec2:DeletePlacementGroup', resource: PLACEMENT_GROUP, prefix: 'aws:ResourceTag', tags: RUN_NETWORK }],
  ['prepare-replacement launches a replacement', { role: 'PrepareReplacementIamRoleLambdaExecution', action: 'ec2:RunInstances', resource: INSTANCE, prefix: 'aws:RequestTag', tags: TRAINING }],
  ['the helper function launches a builder', { role: 'HelperInstanceIamRoleLambdaExecution', action: 'ec2:RunInstances', resource: INSTANCE, prefix: 'aws:RequestTag', tags: { 'runctl:run': 'b-1', 'runctl:helper': 'build-image' } }],
  ['run-volume restores a dataset copy', { role: 'RunVolumeIamRoleLambdaExecution', action: 'ec2:CreateVolume', resource: VOLUME, prefix: 'aws:RequestTag', tags: { 'runctl:run': RUN_ID, 'runctl:volume': `run:${RUN_ID}` } }],
  ['a prewarm creates its volume', { role: 'PrewarmCreateVolumeIamRoleLambdaExecution', action: 'ec2:CreateVolume', resource: VOLUME, prefix: 'aws:RequestTag', tags: { 'runctl:run': 'p-1', 'runctl:volume': 'prewarm:p-1' } }],
  ['a prewarm creates its snapshot', { role: 'PrewarmSnapshotVolumeIamRoleLambdaExecution', action: 'ec2:CreateSnapshot', resource: SNAPSHOT, prefix: 'aws:RequestTag', tags: { 'runctl:volume': 'prewarm:p-1' } }],
  ['a prewarm tags its snapshot at creation', { role: 'PrewarmSnapshotVolumeIamRoleLambdaExecution', action: 'ec2:CreateTags', resource: SNAPSHOT, prefix: 'aws:RequestTag', tags: { 'runctl:volume': 'prewarm:p-1' }, context: { 'ec2:CreateAction': 'CreateSnapshot' } }],
];

describe("stack-scoped tags: a stack's control plane changes only its own stack's instances, volumes and snapshots", () => {
  it.each(STACK_CHANGES)('allowed: %s of this stack', async (_name, request) => {
    expect(await decide(role(request.role), withStack(request, STACK))).toBe('Allowed');
  });

  it.each(STACK_CHANGES)("denied: %s of another stack in the same account", async (_name, request) => {
    expect(await decide(role(request.role), withStack(request, OTHER_STACK))).not.toBe('Allowed');
  });

  it.each(STACK_CHANGES)('denied: %s without the stack tag', async (_name, request) => {
    expect(await decide(role(request.role), withStack(request, null))).not.toBe('Allowed');
  });

  it('lets no function tag an existing resource into its stack (tags are only given at creation)', async () => {
    const retag = { action: 'ec2:CreateTags', resource: INSTANCE, context: { 'aws:RequestTag/runctl:stack': STACK, 'aws:RequestTag/runctl:run': RUN_ID } };
    for (const r of roles.values()) expect(await decide(r, retag), r.logicalId).not.toBe('Allowed');
  });
});

describe("a multi-node run's instances and network", () => {
  const provision = () => role('ProvisionInstanceIamRoleLambdaExecution');
  const ours = (tags: Record<string, string>) =>
    Object.fromEntries(Object.entries({ ...tags, 'runctl:stack': STACK }).map(([key, value]) => [`aws:ResourceTag/${key}`, value]));

  it("lets ProvisionInstance tag only the rank and attempt onto this stack's instances: not the stack or run tags, and not a request naming no keys", async () => {
    const retag = (context: Record<string, string | string[]>) =>
      decide(provision(), { action: 'ec2:CreateTags', resource: INSTANCE, context: { ...ours(TRAINING), ...context } });
    expect(await retag(RANK_TAG_REQUEST)).toBe('Allowed');
    // A node kept across a recovery is re-tagged with the attempt it now serves.
    expect(await retag({ 'aws:TagKeys': ['runctl:attempt'], 'aws:RequestTag/runctl:attempt': '2' })).toBe('Allowed');
    expect(await retag({ 'aws:TagKeys': ['runctl:rank', 'runctl:stack'], 'aws:RequestTag/runctl:rank': '1', 'aws:RequestTag/runctl:stack': OTHER_STACK })).not.toBe('Allowed');
    expect(await retag({ 'aws:TagKeys': ['runctl:run'], 'aws:RequestTag/runctl:run': 'r-someone-else' })).not.toBe('Allowed');
    expect(await retag({})).not.toBe('Allowed');
    // A volume is never retagged.
    expect(await decide(provision(), { action: 'ec2:CreateTags', resource: VOLUME, context: { ...ours(TRAINING), ...RANK_TAG_REQUEST } })).not.toBe('Allowed');
  });

  it("lets ProvisionInstance create a run's security group in the training VPC", async () => {
    expect(await decide(provision(), { action: 'ec2:CreateSecurityGroup', resource: `arn:aws:ec2:${region}:${account}:vpc/vpc-0123456789abcdef0` })).toBe('Allowed');
  });

  it("lets no role open, close or delete a group that is not a run's network, such as the stack's own training group", async () => {
    const training = `arn:aws:ec2:${region}:${account}:security-group/sg-0123456789abcdef0`;
    const stackTags = { 'aws:ResourceTag/app': 'runctl', 'aws:ResourceTag/aws:cloudformation:stack-name': STACK };
    for (const r of roles.values()) {
      for (const action of ['ec2:AuthorizeSecurityGroupIngress', 'ec2:AuthorizeSecurityGroupEgress', 'ec2:RevokeSecurityGroupEgress', 'ec2:DeleteSecurityGroup']) {
        expect(await decide(r, { action, resource: training, context: stackTags }), `${r.logicalId}: ${action}`).not.toBe('Allowed');
      }
    }
  });

  it("lets only ProvisionInstance make a run's network, and only ReleaseResources and the reconciler delete one", async () => {
    const make = { action: 'ec2:CreatePlacementGroup', resource: PLACEMENT_GROUP, context: { 'aws:RequestTag/runctl:run': RUN_ID, 'aws:RequestTag/runctl:stack': STACK } };
    const remove = { action: 'ec2:DeletePlacementGroup', resource: PLACEMENT_GROUP, context: ours(RUN_NETWORK) };
    const deleters = ['ReleaseResourcesIamRoleLambdaExecution', 'ReconcileIamRoleLambdaExecution'];
    for (const r of roles.values()) {
      expect(await decide(r, make), r.logicalId).toBe(r.logicalId === 'ProvisionInstanceIamRoleLambdaExecution' ? 'Allowed' : 'ImplicitlyDenied');
      expect(await decide(r, remove), r.logicalId).toBe(deleters.includes(r.logicalId) ? 'Allowed' : 'ImplicitlyDenied');
    }
  });
});

describe('restoring a volume from a snapshot (CreateVolume on snapshot/*)', () => {
  const SNAPSHOT = `arn:aws:ec2:${region}::snapshot/snap-0123456789abcdef0`;
  /** The tags CreateSnapshot puts on a prewarm's snapshot (shared/usecases/volume-prewarm.ts). */
  const RUNCTL_SNAPSHOT = {
    'aws:ResourceTag/runctl:volume': 'prewarm:prewarm-0123456789abcdef',
    'aws:ResourceTag/runctl:prewarm': 'prewarm-0123456789abcdef',
    'aws:ResourceTag/runctl:stack': STACK,
    'ec2:Owner': account,
  };
  const restore = (context: Record<string, string>): Request => ({ action: 'ec2:CreateVolume', resource: SNAPSHOT, context });
  const RESTORERS = ['PrewarmCreateVolumeIamRoleLambdaExecution', 'RunVolumeIamRoleLambdaExecution'];

  it.each(RESTORERS)('%s may restore a snapshot a prewarm of this account took', async (id) => {
    expect(await decide(role(id), restore(RUNCTL_SNAPSHOT))).toBe('Allowed');
  });

  it.each(RESTORERS.flatMap((id) => [
    [id, 'an untagged snapshot of the account', { 'ec2:Owner': account }],
    [id, 'a snapshot tagged by something else', { 'aws:ResourceTag/runctl:volume': 'backup', 'ec2:Owner': account }],
    [id, "a run's restored copy's tag value", { 'aws:ResourceTag/runctl:volume': 'run:r-1', 'ec2:Owner': account }],
    [id, 'a snapshot shared by another account, tagged as runctl tags', { ...RUNCTL_SNAPSHOT, 'ec2:Owner': '210987654321' }],
    [id, "another stack's prewarm snapshot", { ...RUNCTL_SNAPSHOT, 'aws:ResourceTag/runctl:stack': OTHER_STACK }],
  ]))('%s cannot restore %s', async (id, _label, context) => {
    expect(await decide(role(id), restore(context))).not.toBe('Allowed');
  });

  it('no other role of the stack may restore any snapshot at all', async () => {
    for (const r of roles.values()) {
      if (RESTORERS.includes(r.logicalId)) continue;
      expect(await decide(r, restore(RUNCTL_SNAPSHOT)), r.logicalId).not.toBe('Allowed');
    }
  });
});

describe('image repositories', () => {
  const REPOSITORY = `arn:aws:ecr:${region}:${account}:repository/runctl/training`;

  it('lets the build steps make tags immutable and read a tag\'s digest, and no function push or re-tag an image', async () => {
    expect(await decide(role('BuildPrepareIamRoleLambdaExecution'), { action: 'ecr:PutImageTagMutability', resource: REPOSITORY })).toBe('Allowed');
    expect(await decide(role('BuildRecordImageIamRoleLambdaExecution'), { action: 'ecr:DescribeImages', resource: REPOSITORY })).toBe('Allowed');
    for (const r of roles.values()) {
      if (r.logicalId === 'ImageBuilderInstanceRole') continue;
      expect(await decide(r, { action: 'ecr:PutImage', resource: REPOSITORY }), r.logicalId).not.toBe('Allowed');
    }
  });
});
