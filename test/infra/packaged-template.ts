import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/**
 * The CloudFormation template `osls package` writes, with its intrinsic functions resolved
 * against a fake account (Ref, Fn::GetAtt, Fn::Sub, Fn::Join), so tests evaluate the real
 * policies of the real roles. The template is packaged when it is missing or older than
 * serverless.yml (every IAM statement comes from serverless.yml); .ci/run packages first, so
 * there the tests reuse its output.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const TEMPLATE_PATH = `${ROOT}.serverless/cloudformation-template-update-stack.json`;

export const FAKE = {
  partition: 'aws',
  region: 'us-east-1',
  accountId: '123456789012',
  stage: 'ci',
  httpApiId: 'agentapi01',
} as const;

const ResourceSchema = z.object({ Type: z.string(), Properties: z.record(z.string(), z.unknown()).optional() }).loose();
const TemplateSchema = z.object({ Resources: z.record(z.string(), ResourceSchema) }).loose();
export type Resource = z.infer<typeof ResourceSchema>;

/** Packages the service (offline, dummy credentials) unless a fresh template is there. */
export function ensurePackagedTemplate(): void {
  const source = statSync(`${ROOT}serverless.yml`).mtimeMs;
  if (existsSync(TEMPLATE_PATH) && statSync(TEMPLATE_PATH).mtimeMs >= source) return;
  const result = spawnSync('npm', ['run', '-s', 'package'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: {
      ...process.env,
      AWS_ACCESS_KEY_ID: 'ci-dummy-access-key',
      AWS_SECRET_ACCESS_KEY: 'ci-dummy-secret-key',
      AWS_PROFILE: '',
      AWS_SESSION_TOKEN: '',
      SLS_TELEMETRY_DISABLED: '1',
      SLS_TRACKING_DISABLED: '1',
      SLS_NOTIFICATIONS_MODE: 'off',
      NO_UPDATE_NOTIFIER: '1',
      CI: 'true',
    },
  });
  if (result.status !== 0) throw new Error(`osls package failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
}

/** Physical names the fake stack gives its resources. */
function physicalName(logicalId: string, resource: Resource): string {
  const props = resource.Properties ?? {};
  switch (resource.Type) {
    case 'AWS::S3::Bucket':
      return `runctl-ci-${logicalId.toLowerCase()}-1a2b3c`;
    case 'AWS::DynamoDB::Table':
      return `runctl-ci-${logicalId}-1A2B3C`;
    case 'AWS::IAM::Role':
      return typeof props.RoleName === 'string' ? props.RoleName : `runctl-ci-${logicalId}`.slice(0, 64);
    case 'AWS::ApiGatewayV2::Api':
      return FAKE.httpApiId;
    case 'AWS::StepFunctions::StateMachine':
      return `arn:aws:states:${FAKE.region}:${FAKE.accountId}:stateMachine:${typeof props.StateMachineName === 'string' ? props.StateMachineName : logicalId}`;
    case 'AWS::IAM::ManagedPolicy':
      return `arn:aws:iam::${FAKE.accountId}:policy/runctl-ci-${logicalId}`;
    case 'AWS::EC2::SecurityGroup':
      return 'sg-0123456789abcdef0';
    default:
      return `runctl-ci-${logicalId}`;
  }
}

function attribute(logicalId: string, resource: Resource, name: string): string {
  const physical = physicalName(logicalId, resource);
  const a = `${FAKE.region}:${FAKE.accountId}`;
  switch (`${resource.Type}.${name}`) {
    case 'AWS::S3::Bucket.Arn':
      return `arn:aws:s3:::${physical}`;
    case 'AWS::DynamoDB::Table.Arn':
      return `arn:aws:dynamodb:${a}:table/${physical}`;
    case 'AWS::IAM::Role.Arn':
      return `arn:aws:iam::${FAKE.accountId}:role/${physical}`;
    case 'AWS::IAM::Role.RoleId':
      return `AROA${logicalId.toUpperCase().replace(/[^A-Z0-9]/g, '').slice(0, 17)}`;
    case 'AWS::IAM::InstanceProfile.Arn':
      return `arn:aws:iam::${FAKE.accountId}:instance-profile/${physical}`;
    case 'AWS::Lambda::Function.Arn':
      return `arn:aws:lambda:${a}:function:${physical}`;
    case 'AWS::Logs::LogGroup.Arn':
      return `arn:aws:logs:${a}:log-group:${physical}:*`;
    case 'AWS::EC2::SecurityGroup.GroupId':
      return physical;
    case 'AWS::StepFunctions::StateMachine.Arn':
      return physical;
    default:
      throw new Error(`no fake value for ${logicalId}.${name} (${resource.Type})`);
  }
}

const PSEUDO: Record<string, string> = {
  'AWS::Partition': FAKE.partition,
  'AWS::Region': FAKE.region,
  'AWS::AccountId': FAKE.accountId,
  'AWS::URLSuffix': 'amazonaws.com',
  'AWS::StackName': `runctl-${FAKE.stage}`,
};

/** Resolves the intrinsic functions the template uses; throws on any it does not know. */
export function resolve(value: unknown, resources: Record<string, Resource>): unknown {
  const ref = (name: string): string => {
    if (name in PSEUDO) return PSEUDO[name] ?? '';
    const resource = resources[name];
    if (resource === undefined) throw new Error(`Ref to unknown ${name}`);
    return physicalName(name, resource);
  };
  const getAtt = (logicalId: string, name: string): string => {
    const resource = resources[logicalId];
    if (resource === undefined) throw new Error(`GetAtt of unknown ${logicalId}`);
    return attribute(logicalId, resource, name);
  };
  const sub = (text: string, vars: Record<string, unknown>): string =>
    text.replace(/\$\{([^}]+)\}/g, (_, name: string) => {
      if (name in vars) return String(resolve(vars[name], resources));
      const dot = name.indexOf('.');
      return dot > 0 && !name.startsWith('AWS::') ? getAtt(name.slice(0, dot), name.slice(dot + 1)) : ref(name);
    });
  if (Array.isArray(value)) return value.map((v) => resolve(v, resources));
  if (typeof value !== 'object' || value === null) return value;
  const entries = Object.entries(value);
  const [key, arg] = entries[0] ?? [];
  if (entries.length === 1 && key !== undefined) {
    if (key === 'Ref') return ref(String(arg));
    if (key === 'Fn::GetAtt') {
      const [logicalId, name] = Array.isArray(arg) ? arg.map(String) : String(arg).split('.');
      return getAtt(logicalId ?? '', name ?? '');
    }
    if (key === 'Fn::Sub') {
      if (typeof arg === 'string') return sub(arg, {});
      const [text, vars] = z.tuple([z.string(), z.record(z.string(), z.unknown())]).parse(arg);
      return sub(text, vars);
    }
    if (key === 'Fn::Join') {
      const [separator, parts] = z.tuple([z.string(), z.array(z.unknown())]).parse(arg);
      return parts.map((p) => String(resolve(p, resources))).join(separator);
    }
    if (key.startsWith('Fn::')) throw new Error(`unsupported intrinsic ${key}`);
  }
  return Object.fromEntries(entries.map(([k, v]) => [k, resolve(v, resources)]));
}

export interface PackagedRole {
  logicalId: string;
  name: string;
  arn: string;
  /** Inline policies and customer managed policies of this stack, resolved. */
  policies: Array<{ name: string; policy: unknown }>;
  /** AWS managed policy ARNs attached (none allowed: they cannot be evaluated here). */
  awsManaged: string[];
}

/** Every IAM role of the packaged template, with its policies resolved. */
export function packagedRoles(): Map<string, PackagedRole> {
  const template = TemplateSchema.parse(JSON.parse(readFileSync(TEMPLATE_PATH, 'utf8')));
  const resources = template.Resources;
  const roles = new Map<string, PackagedRole>();
  const PolicySchema = z.object({ PolicyName: z.unknown(), PolicyDocument: z.unknown() });
  for (const [logicalId, resource] of Object.entries(resources)) {
    if (resource.Type !== 'AWS::IAM::Role') continue;
    const props = resource.Properties ?? {};
    const policies = z.array(PolicySchema).parse(props.Policies ?? []).map((p) => ({
      name: String(resolve(p.PolicyName, resources)),
      policy: resolve(p.PolicyDocument, resources),
    }));
    const awsManaged: string[] = [];
    for (const arn of z.array(z.unknown()).parse(props.ManagedPolicyArns ?? [])) {
      const refName = z.object({ Ref: z.string() }).safeParse(arn);
      const managed = refName.success ? resources[refName.data.Ref] : undefined;
      if (managed?.Type === 'AWS::IAM::ManagedPolicy') {
        policies.push({ name: refName.success ? refName.data.Ref : 'managed', policy: resolve(managed.Properties?.PolicyDocument, resources) });
      } else {
        awsManaged.push(String(resolve(arn, resources)));
      }
    }
    const name = physicalName(logicalId, resource);
    roles.set(logicalId, { logicalId, name, arn: `arn:aws:iam::${FAKE.accountId}:role/${name}`, policies, awsManaged });
  }
  return roles;
}

/** The physical name of a template resource in the fake stack (e.g. the runs bucket's name). */
export function fakeName(logicalId: string): string {
  const template = TemplateSchema.parse(JSON.parse(readFileSync(TEMPLATE_PATH, 'utf8')));
  const resource = template.Resources[logicalId];
  if (resource === undefined) throw new Error(`no resource ${logicalId}`);
  return physicalName(logicalId, resource);
}

/** A role id of the fake stack, as API Gateway reports it in `userId` (`<role id>:<session>`). */
export function fakeRoleId(logicalId: string): string {
  const template = TemplateSchema.parse(JSON.parse(readFileSync(TEMPLATE_PATH, 'utf8')));
  const resource = template.Resources[logicalId];
  if (resource === undefined) throw new Error(`no resource ${logicalId}`);
  return attribute(logicalId, resource, 'RoleId');
}
