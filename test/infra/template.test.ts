import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { runsTableDefinition } from '../../shared/adapters/runs-table';
import { REPLACEMENT_TRIGGER_ACTIONS } from '../../shared/usecases/instance-event';
import { functionLogicalId, readServerlessYml } from '../../scripts/validate-asl';

// Reads serverless.yml as data (no osls, no packaging): the properties that security and the
// adapters rely on, checked on every test run. The packaged template is linted by .ci/run.

const StatementSchema = z.object({
  Effect: z.enum(['Allow', 'Deny']),
  Action: z.union([z.string(), z.array(z.string())]),
  Resource: z.unknown(),
  Condition: z.record(z.string(), z.record(z.string(), z.unknown())).optional(),
});
type Statement = z.infer<typeof StatementSchema>;

const FunctionSchema = z.object({
  handler: z.string(),
  events: z.array(z.record(z.string(), z.unknown())).optional(),
  iamRoleStatements: z.array(StatementSchema).optional(),
});

const HttpApiEventSchema = z.object({
  method: z.string(),
  path: z.string(),
  authorizer: z.object({ type: z.string() }).loose().optional(),
});

const ResourceSchema = z.object({ Type: z.string(), Properties: z.record(z.string(), z.unknown()) }).loose();

const ServerlessSchema = z.object({
  service: z.string(),
  frameworkVersion: z.string(),
  plugins: z.array(z.string()),
  provider: z.object({
    name: z.literal('aws'),
    runtime: z.string(),
    architecture: z.string(),
    logRetentionInDays: z.number(),
    environment: z.record(z.string(), z.unknown()),
  }).loose(),
  functions: z.record(z.string(), FunctionSchema),
  stepFunctions: z.object({ stateMachines: z.record(z.string(), z.record(z.string(), z.unknown())) }).loose(),
  resources: z.object({
    Resources: z.record(z.string(), ResourceSchema),
    Outputs: z.record(z.string(), z.unknown()),
  }),
});

/** Substitutes whole-string `${self:custom.name}` references, as osls does, so statements show their ARNs. */
function resolveCustomReferences(value: unknown, custom: Record<string, unknown>): unknown {
  if (typeof value === 'string') {
    const match = /^\$\{self:custom\.(\w+)\}$/.exec(value);
    return match?.[1] !== undefined && match[1] in custom ? custom[match[1]] : value;
  }
  if (Array.isArray(value)) return value.map((item) => resolveCustomReferences(item, custom));
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveCustomReferences(v, custom)]));
}

const raw = z.object({ custom: z.record(z.string(), z.unknown()) }).loose().parse(readServerlessYml());
const config = ServerlessSchema.parse(resolveCustomReferences(raw, raw.custom));
const resources = config.resources.Resources;

function resource(logicalId: string, type: string): Record<string, unknown> {
  const found = resources[logicalId];
  expect(found, `resource ${logicalId}`).toBeDefined();
  expect(found?.Type).toBe(type);
  return found?.Properties ?? {};
}

function actionsOf(statement: Statement): string[] {
  return Array.isArray(statement.Action) ? statement.Action : [statement.Action];
}

/** Every IAM statement in the file: per-function roles and the policies of declared resources. */
function allStatements(): { where: string; statement: Statement }[] {
  const found: { where: string; statement: Statement }[] = [];
  for (const [key, fn] of Object.entries(config.functions)) {
    for (const statement of fn.iamRoleStatements ?? []) found.push({ where: `function ${key}`, statement });
  }
  const visit = (value: unknown, where: string): void => {
    if (Array.isArray(value)) return value.forEach((item) => visit(item, where));
    if (typeof value !== 'object' || value === null) return;
    const asStatement = StatementSchema.safeParse(value);
    if (asStatement.success && 'Effect' in value) {
      found.push({ where, statement: asStatement.data });
      return;
    }
    for (const child of Object.values(value)) visit(child, where);
  };
  for (const [logicalId, declared] of Object.entries(resources)) visit(declared, `resource ${logicalId}`);
  return found;
}

const EXPECTED_ROUTES = [
  { method: 'POST', path: '/runs', handler: 'functions/api/create-run.handler' },
  { method: 'GET', path: '/runs', handler: 'functions/api/list-runs.handler' },
  { method: 'GET', path: '/runs/{id}', handler: 'functions/api/get-run.handler' },
  { method: 'POST', path: '/runs/{id}/cancel', handler: 'functions/api/cancel-run.handler' },
  { method: 'POST', path: '/uploads', handler: 'functions/api/create-upload.handler' },
  { method: 'GET', path: '/me', handler: 'functions/api/get-me.handler' },
  { method: 'GET', path: '/runs/{id}/logs', handler: 'functions/api/get-logs.handler' },
  { method: 'GET', path: '/runs/{id}/metrics', handler: 'functions/api/get-metrics.handler' },
  { method: 'GET', path: '/runs/{id}/checkpoints', handler: 'functions/api/list-checkpoints.handler' },
  { method: 'GET', path: '/runs/{id}/outputs', handler: 'functions/api/list-outputs.handler' },
  { method: 'GET', path: '/experiments', handler: 'functions/api/list-experiments.handler' },
  { method: 'GET', path: '/experiments/{name}/runs', handler: 'functions/api/list-experiment-runs.handler' },
  { method: 'POST', path: '/sweeps', handler: 'functions/api/create-sweep.handler' },
  { method: 'GET', path: '/sweeps/{id}', handler: 'functions/api/get-sweep.handler' },
  { method: 'POST', path: '/sweeps/{id}/stop', handler: 'functions/api/stop-sweep.handler' },
  { method: 'POST', path: '/models/{name}/versions', handler: 'functions/api/register-model.handler' },
  { method: 'GET', path: '/models', handler: 'functions/api/list-models.handler' },
  { method: 'GET', path: '/models/{name}', handler: 'functions/api/get-model.handler' },
  { method: 'POST', path: '/models/{name}/promote', handler: 'functions/api/promote-model.handler' },
  { method: 'GET', path: '/models/{name}/versions/{version}/download', handler: 'functions/api/download-model.handler' },
];

const STEP_HANDLERS = [
  'validate-run', 'provision-instance', 'check-instance', 'prefetch-data', 'launch-training',
  'finalize-artifacts', 'release-resources', 'decide-recovery', 'finish-run', 'prepare-replacement', 'await-replacement',
];

describe('serverless.yml', () => {
  it('runs every function on Node 22 arm64 with the plugins the build relies on', () => {
    expect(config.service).toBe('runctl');
    expect(config.provider.runtime).toBe('nodejs22.x');
    expect(config.provider.architecture).toBe('arm64');
    expect(config.provider.logRetentionInDays).toBeGreaterThan(0);
    expect(config.plugins).toEqual(
      expect.arrayContaining(['serverless-esbuild', 'serverless-step-functions', 'serverless-iam-roles-per-function']),
    );
    expect(Object.keys(config.provider.environment)).toEqual(
      expect.arrayContaining(['RUNS_TABLE', 'RUNS_BUCKET', 'TRAIN_RUN_STATE_MACHINE_ARN', 'POWERTOOLS_SERVICE_NAME', 'LOG_LEVEL']),
    );
  });

  it('has as many functions as docs/deploy.md says', () => {
    const documented = /\| (\d+) Lambda functions \|/.exec(readFileSync(new URL('../../docs/deploy.md', import.meta.url), 'utf8'))?.[1];
    expect(Number(documented)).toBe(Object.keys(config.functions).length);
  });

  it('names each function after its handler file, so ASL logical ids follow from file names', () => {
    for (const [key, fn] of Object.entries(config.functions)) {
      const match = /^functions\/(api|steps|events|volumes|images)\/([a-z0-9-]+)\.handler$/.exec(fn.handler);
      expect(match, `${key}: ${fn.handler}`).not.toBeNull();
      const camel = (match?.[2] ?? '').replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
      expect(key).toBe(camel);
    }
    for (const step of STEP_HANDLERS) {
      expect(Object.values(config.functions).map((f) => f.handler)).toContain(`functions/steps/${step}.handler`);
    }
    expect(functionLogicalId('validateRun')).toBe('ValidateRunLambdaFunction');
  });

  it('serves the runs routes, each behind IAM authorization', () => {
    const routes = Object.values(config.functions).flatMap((fn) =>
      (fn.events ?? []).flatMap((event) => {
        if (!('httpApi' in event)) return [];
        return [{ handler: fn.handler, ...HttpApiEventSchema.parse(event.httpApi) }];
      }),
    );
    expect(routes.map(({ method, path, handler }) => ({ method, path, handler }))).toEqual(
      expect.arrayContaining(EXPECTED_ROUTES),
    );
    for (const route of routes) {
      expect(route.authorizer?.type, `${route.method} ${route.path}`).toBe('aws_iam');
    }
  });

  it('grants no wildcard action, and uses Resource "*" only for actions that cannot be scoped', () => {
    const unscopable = new Set([
      'ec2:DescribeInstances', 'ec2:DescribeTags', 'ec2:DescribeSnapshots', 'ec2:DescribeInstanceStatus', 'ec2:DescribeSubnets', 'ec2:DescribeImages',
      'ec2:DescribeSpotPriceHistory', 'ec2:DescribeVolumes', 'ssm:DescribeInstanceInformation',
      // A multi-node run's network (docs/multi-node.md): EC2's Describe calls take no resource.
      'ec2:DescribeVpcs', 'ec2:DescribeSecurityGroups', 'ec2:DescribePlacementGroups',
      'ssm:GetCommandInvocation', 'ecr:GetAuthorizationToken',
      // No resource type: a task token is the capability (the Service Authorization Reference lists none).
      'states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat',
      // The SSM agent's own calls (SsmAgentPolicy): registration and the message channels.
      'ssm:UpdateInstanceInformation', 'ssm:ListInstanceAssociations', 'ssm:DescribeAssociation', 'ssm:UpdateInstanceAssociationStatus',
      'ssm:GetDocument', 'ssm:DescribeDocument', 'ssmmessages:CreateControlChannel', 'ssmmessages:CreateDataChannel',
      'ssmmessages:OpenControlChannel', 'ssmmessages:OpenDataChannel', 'ec2messages:AcknowledgeMessage', 'ec2messages:DeleteMessage',
      'ec2messages:FailMessage', 'ec2messages:GetEndpoint', 'ec2messages:GetMessages', 'ec2messages:SendReply',
    ]);
    const statements = allStatements();
    expect(statements.length).toBeGreaterThan(20);
    for (const { where, statement } of statements) {
      if (statement.Effect !== 'Allow') continue;
      for (const action of actionsOf(statement)) {
        expect(action, where).not.toBe('*');
        expect(action, where).not.toMatch(/:\*$|^\*:/);
      }
      const resourceList = Array.isArray(statement.Resource) ? statement.Resource : [statement.Resource];
      if (resourceList.includes('*')) {
        for (const action of actionsOf(statement)) expect(unscopable.has(action), `${where}: ${action} on "*"`).toBe(true);
      }
    }
  });

  it("requires this stack's tag wherever it requires a runctl tag, with the name the functions tag with", () => {
    const stack = raw.custom.stackTag;
    expect(stack).toBe('${self:service}-${sls:stage}');
    expect(config.provider.environment.RUNCTL_STACK).toBe(stack);
    const conditionKeys = (statement: Statement) => Object.values(statement.Condition ?? {}).flatMap((operator) => Object.keys(operator));
    const tagPrefixes = (statement: Statement) =>
      new Set(conditionKeys(statement).flatMap((key) => /^(aws:ResourceTag|aws:RequestTag|ssm:resourceTag)\/runctl:/.exec(key)?.[1] ?? []));

    const tagScoped = allStatements().filter(({ statement }) => tagPrefixes(statement).size > 0);
    expect(tagScoped.length).toBeGreaterThan(30);
    for (const { where, statement } of tagScoped) {
      for (const prefix of tagPrefixes(statement)) {
        expect(statement.Condition?.StringEquals?.[`${prefix}/runctl:stack`], `${where}: ${prefix}`).toBe(stack);
      }
    }

    // Every call that changes an instance, a volume or a snapshot is among them (reading a snapshot to restore it is not a change).
    const changes = allStatements().filter(({ statement }) => {
      const resource = JSON.stringify(statement.Resource);
      const actions = actionsOf(statement).filter((a) => a.startsWith('ec2:') || a === 'ssm:SendCommand');
      if (actions.length === 0) return false;
      if (/:instance\/\*|:volume\/\*/.test(resource)) return true;
      return /::snapshot\/\*/.test(resource) && actions.some((a) => a !== 'ec2:CreateVolume');
    });
    expect(changes.length).toBeGreaterThan(30);
    for (const { where, statement } of changes) {
      expect(conditionKeys(statement).filter((key) => key.endsWith('/runctl:stack')), `${where}: ${actionsOf(statement).join(', ')}`).not.toEqual([]);
    }
  });

  it('only lets EC2 and SSM mutations touch resources that carry the runctl:run tag', () => {
    const conditionKeys = (statement: Statement) =>
      Object.values(statement.Condition ?? {}).flatMap((operator) => Object.keys(operator));
    const mutations = allStatements().filter(({ statement }) =>
      actionsOf(statement).some((a) =>
        ['ec2:TerminateInstances', 'ec2:StopInstances', 'ec2:AttachVolume', 'ec2:DetachVolume'].includes(a),
      ),
    );
    expect(mutations.length).toBeGreaterThanOrEqual(2);
    for (const { where, statement } of mutations) {
      expect(conditionKeys(statement), where).toContain('aws:ResourceTag/runctl:run');
    }

    const tagging = allStatements().filter(({ statement }) => actionsOf(statement).includes('ec2:CreateTags'));
    expect(tagging.length).toBeGreaterThan(0);
    for (const { where, statement } of tagging) {
      const action = statement.Condition?.StringEquals?.['ec2:CreateAction'];
      if (action === undefined) {
        // After creation, only a fleet node's rank and a kept node's attempt, on this stack's run instances.
        expect(statement.Condition?.['ForAllValues:StringEquals']?.['aws:TagKeys'], where).toEqual(['runctl:rank', 'runctl:attempt']);
        expect(conditionKeys(statement), where).toContain('aws:ResourceTag/runctl:run');
        continue;
      }
      // Else tags only at creation: of instances (RunInstances), dataset volumes (CreateVolume) and
      // their snapshots, and a multi-node run's security group and placement group.
      for (const created of [action].flat()) {
        expect(['RunInstances', 'CreateVolume', 'CreateSnapshot', 'CreateSecurityGroup', 'CreatePlacementGroup'], where).toContain(created);
      }
      const creation = action === 'CreateSnapshot' ? 'aws:RequestTag/runctl:volume' : 'aws:RequestTag/runctl:run';
      expect(conditionKeys(statement), where).toContain(creation);
    }

    const launches = allStatements().filter(({ statement }) => actionsOf(statement).includes('ec2:RunInstances'));
    const taggedLaunch = launches.filter(({ statement }) => conditionKeys(statement).includes('aws:RequestTag/runctl:run'));
    expect(JSON.stringify(taggedLaunch.map(({ statement }) => statement.Resource))).toMatch(/instance\/\*/);

    const commandsToInstances = allStatements().filter(
      ({ statement }) => actionsOf(statement).includes('ssm:SendCommand') && JSON.stringify(statement.Resource).includes(':instance/*'),
    );
    expect(commandsToInstances.length).toBeGreaterThan(0);
    for (const { where, statement } of commandsToInstances) {
      expect(conditionKeys(statement), where).toContain('ssm:resourceTag/runctl:run');
    }

    const passRoles = allStatements().filter(({ statement }) => actionsOf(statement).includes('iam:PassRole'));
    // Only the training instance role (to EC2) and the scheduler's invoke role (to EventBridge Scheduler).
    expect(passRoles.map(({ statement }) => statement.Resource)).toEqual(
      expect.arrayContaining([{ 'Fn::GetAtt': ['TrainingInstanceRole', 'Arn'] }, { 'Fn::GetAtt': ['SchedulerInvokeRole', 'Arn'] }]),
    );
    for (const { where, statement } of passRoles) {
      expect(JSON.stringify(statement.Resource), where).toMatch(/TrainingInstanceRole|SchedulerInvokeRole|VolumeHelperInstanceRole|ImageBuilderInstanceRole/);
      expect(JSON.stringify(statement.Resource), where).not.toMatch(/\*/);
    }
  });

  it('declares the runs table exactly as the DynamoDB adapter expects it', () => {
    const table = resource('RunsTable', 'AWS::DynamoDB::Table');
    const expected = runsTableDefinition('unused');
    const byName = <T extends { AttributeName?: string }>(items: T[]) =>
      [...items].sort((a, b) => (a.AttributeName ?? '').localeCompare(b.AttributeName ?? ''));
    const AttributeList = z.array(z.object({ AttributeName: z.string(), AttributeType: z.string() }));
    expect(byName(AttributeList.parse(table.AttributeDefinitions))).toEqual(byName(expected.AttributeDefinitions ?? []));
    expect(table.KeySchema).toEqual(expected.KeySchema);
    expect(table.KeySchema).toEqual([
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ]);
    const IndexList = z.array(z.object({ IndexName: z.string() }).loose());
    const sortIndexes = <T extends { IndexName?: string }>(items: T[]) =>
      [...items].sort((a, b) => (a.IndexName ?? '').localeCompare(b.IndexName ?? ''));
    expect(sortIndexes(IndexList.parse(table.GlobalSecondaryIndexes))).toEqual(
      sortIndexes(expected.GlobalSecondaryIndexes ?? []),
    );
    expect(IndexList.parse(table.GlobalSecondaryIndexes).map((i) => i.IndexName).sort()).toEqual(
      ['byExperiment', 'byOwner', 'byOwnerStatus', 'byStatus'],
    );
    expect(table.BillingMode).toBe('PAY_PER_REQUEST');
    expect(table.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
    expect(table.SSESpecification).toEqual({ SSEEnabled: true });
  });

  it('keeps the runs bucket private, encrypted, versioned and reachable over TLS only', () => {
    const bucket = resource('RunsBucket', 'AWS::S3::Bucket');
    expect(bucket.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(JSON.stringify(bucket.BucketEncryption)).toMatch(/"SSEAlgorithm":"(AES256|aws:kms)"/);
    expect(bucket.VersioningConfiguration).toEqual({ Status: 'Enabled' });

    const Rules = z.object({ Rules: z.array(z.record(z.string(), z.unknown())) });
    const rules = Rules.parse(bucket.LifecycleConfiguration).Rules;
    expect(rules.some((r) => r.AbortIncompleteMultipartUpload !== undefined && r.Status === 'Enabled')).toBe(true);
    expect(rules.some((r) => r.ExpirationInDays === 90 && JSON.stringify(r).includes('log'))).toBe(true);

    const policy = resource('RunsBucketPolicy', 'AWS::S3::BucketPolicy');
    expect(policy.Bucket).toEqual({ Ref: 'RunsBucket' });
    const tlsOnly = allStatements().filter(
      ({ where, statement }) =>
        where === 'resource RunsBucketPolicy' &&
        statement.Effect === 'Deny' &&
        statement.Condition?.Bool?.['aws:SecureTransport'] === 'false',
    );
    expect(tlsOnly).toHaveLength(1);
    expect(JSON.stringify(tlsOnly[0]?.statement.Resource)).toContain('/*');
  });

  it('gives training instances the SSM agent and the agent routes only, and no inbound network', () => {
    // What each role may reach is proven by evaluation in iam-simulation.test.ts; here, the shape.
    for (const id of ['TrainingInstanceRole', 'VolumeHelperInstanceRole', 'ImageBuilderInstanceRole']) {
      expect(resource(id, 'AWS::IAM::Role').ManagedPolicyArns, id).toEqual([{ Ref: 'SsmAgentPolicy' }]);
    }
    const agentActions = allStatements()
      .filter(({ where }) => where === 'resource TrainingInstanceRole')
      .flatMap(({ statement }) => actionsOf(statement));
    expect(agentActions).toEqual(['execute-api:Invoke']);
    expect(resource('TrainingInstanceProfile', 'AWS::IAM::InstanceProfile').Roles).toEqual([{ Ref: 'TrainingInstanceRole' }]);
    const group = resource('TrainingSecurityGroup', 'AWS::EC2::SecurityGroup');
    expect(group.SecurityGroupIngress).toBeUndefined();
    expect(Array.isArray(group.SecurityGroupEgress) && group.SecurityGroupEgress.length > 0).toBe(true);
  });

  it('starts prepare-replacement on the same handler answers as the local backend does', () => {
    const machine = z
      .object({ events: z.array(z.object({ eventBridge: z.object({ event: z.object({ detail: z.object({ responsePayload: z.object({ action: z.array(z.string()) }) }) }) }) })) })
      .parse(config.stepFunctions.stateMachines.prepareReplacement);
    expect(machine.events.map((e) => e.eventBridge.event.detail.responsePayload.action)).toEqual([[...REPLACEMENT_TRIGGER_ACTIONS]]);
  });

  it('defines the train-run state machine from its ASL file, with logs that never hold execution data', () => {
    const machine = config.stepFunctions.stateMachines.trainRun;
    expect(machine?.name).toBe('runctl-${sls:stage}-train-run');
    expect(machine?.definition).toBe('${file(statemachines/train-run.asl.json)}');
    expect(machine?.loggingConfig).toMatchObject({ includeExecutionData: false });
    expect(machine?.tracingConfig).toEqual({ enabled: true });
    expect(Object.keys(config.resources.Outputs)).toEqual(
      expect.arrayContaining(['RunsBucketName', 'RunsTableName', 'TrainRunStateMachineArn']),
    );
  });
});
