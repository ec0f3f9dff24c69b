import { createHash } from 'node:crypto';

/**
 * What one run's credentials may touch, as the IAM session policy that the agent routes pass to
 * sts:AssumeRole when they vend the run's credentials. The run-access role's own policy is the
 * ceiling for every run (runs/*, bundles/*, the dataset bucket, the secrets prefix); this policy
 * narrows one session to one run, and AWS grants only what both allow.
 */

/** The IAM policy document (version 2012-10-17). */
export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: PolicyStatement[];
}

export interface PolicyStatement {
  Effect: 'Allow' | 'Deny';
  Action: string[];
  Resource: string[];
  Condition?: Record<string, Record<string, string[]>>;
}

export interface RunAccessInput {
  partition: string;
  region: string;
  accountId: string;
  /** The runs bucket: the run's prefix and its bundle live there. */
  runsBucket: string;
  runId: string;
  /** s3:// URI of the run's code bundle. */
  codeBundle: string;
  /** s3:// URIs of the run's data sources (object or prefix). */
  dataSources: readonly string[];
  /** The run's owner, as stored on the record. */
  owner: string;
  /** Path under which owners keep secrets (Parameter Store names, Secrets Manager names), e.g. `/runctl/dev/secrets`. */
  secretsPrefix: string;
}

/**
 * STS refuses an inline session policy over 2,048 characters, and counts every one: so the
 * statements carry no Sid, and their action lists lean on the ceiling (which names each action)
 * where a wildcard is shorter.
 */
export const MAX_SESSION_POLICY_CHARS = 2048;

/** A run whose session policy cannot be expressed within STS's limits (too many data sources). */
export class RunAccessTooLargeError extends Error {
  override name = 'RunAccess.TooLarge';
}

/**
 * The key of an owner's secrets in Parameter Store and Secrets Manager: `<secretsPrefix>/<ownerSecretsKey>/…`.
 * Owners are ARNs (":" is not allowed in parameter names), and a lossy character mapping could
 * let two owners share a path, so the key is a digest: 32 hex characters of sha256(owner).
 */
export function ownerSecretsKey(owner: string): string {
  return createHash('sha256').update(owner, 'utf8').digest('hex').slice(0, 32);
}

/** The path prefix (with trailing "/") of the parameters and secrets a run of `owner` may read. */
export function ownerSecretsPath(secretsPrefix: string, owner: string): string {
  return `${secretsPrefix.replace(/\/+$/, '')}/${ownerSecretsKey(owner)}/`;
}

function splitS3(uri: string): { bucket: string; key: string } | undefined {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (match?.[1] === undefined) return undefined;
  return { bucket: match[1], key: match[2] ?? '' };
}

/**
 * The session policy of one run: read/write under `runs/<runId>/` (and list only there; delete
 * only its live log chunks), read its bundle object, read and list its data sources, read its
 * owner's secrets (Parameter Store and Secrets Manager, decrypted through them), pull runctl
 * images. A data source inside the runs bucket is never granted here: another run's prefix is
 * not data (the ceiling allows runs/*, so this is where it must be refused).
 */
export function runSessionPolicy(input: RunAccessInput): PolicyDocument {
  const s3 = `arn:${input.partition}:s3:::`;
  const runPrefix = `runs/${input.runId}/`;
  const secrets = ownerSecretsPath(input.secretsPrefix, input.owner);
  const statements: PolicyStatement[] = [
    {
      Effect: 'Allow',
      Action: ['s3:GetObject', 's3:PutObject', 's3:PutObjectTagging'],
      Resource: [`${s3}${input.runsBucket}/${runPrefix}*`],
    },
    {
      Effect: 'Allow',
      Action: ['s3:DeleteObject'],
      Resource: [`${s3}${input.runsBucket}/${runPrefix}live/*`],
    },
    {
      Effect: 'Allow',
      Action: ['s3:ListBucket'],
      Resource: [`${s3}${input.runsBucket}`],
      Condition: { StringLike: { 's3:prefix': [`${runPrefix}*`] } },
    },
  ];
  const reads: string[] = [];
  const lists = new Map<string, string[]>();
  const bundle = splitS3(input.codeBundle);
  if (bundle !== undefined && bundle.key !== '' && !bundle.key.includes('*') && !(bundle.bucket === input.runsBucket && !bundle.key.startsWith('bundles/'))) {
    reads.push(`${s3}${bundle.bucket}/${bundle.key}`);
  }
  for (const source of input.dataSources) {
    const parsed = splitS3(source);
    if (parsed === undefined || parsed.bucket === input.runsBucket || /[*?]/.test(parsed.key)) continue;
    // A source names an object or a prefix: both the key itself and everything under it.
    const prefix = parsed.key.replace(/\/+$/, '');
    if (prefix === '') {
      reads.push(`${s3}${parsed.bucket}/*`);
      lists.set(parsed.bucket, [...(lists.get(parsed.bucket) ?? []), '*']);
      continue;
    }
    reads.push(`${s3}${parsed.bucket}/${prefix}`, `${s3}${parsed.bucket}/${prefix}/*`);
    lists.set(parsed.bucket, [...(lists.get(parsed.bucket) ?? []), prefix, `${prefix}/*`]);
  }
  if (reads.length > 0) statements.push({ Effect: 'Allow', Action: ['s3:GetObject'], Resource: [...new Set(reads)] });
  for (const [bucket, prefixes] of lists) {
    statements.push({
      Effect: 'Allow',
      Action: ['s3:ListBucket'],
      Resource: [`${s3}${bucket}`],
      Condition: { StringLike: { 's3:prefix': [...new Set(prefixes)] } },
    });
  }
  statements.push(
    {
      // The owner's secrets, in Parameter Store and in Secrets Manager.
      Effect: 'Allow',
      // GetParameter, GetParameters, GetParametersByPath: the ceiling grants no other GetParameter* action.
      Action: ['ssm:GetParameter*', 'secretsmanager:GetSecretValue'],
      Resource: [
        `arn:${input.partition}:ssm:${input.region}:${input.accountId}:parameter${secrets}*`,
        `arn:${input.partition}:secretsmanager:${input.region}:${input.accountId}:secret:${secrets}*`,
      ],
    },
    {
      // SecureStrings and secrets are encrypted: the two services decrypt with the caller's own
      // kms:Decrypt, which a session policy bounds like any other permission. The ceiling allows it
      // only through those two services (kms:ViaService), whose grants above are the owner's path;
      // spelling that condition here too would cost the session policy's scarce characters.
      Effect: 'Allow',
      Action: ['kms:Decrypt'],
      Resource: ['*'],
    },
    {
      Effect: 'Allow',
      Action: ['ecr:GetAuthorizationToken', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability'],
      Resource: ['*'],
    },
  );
  const policy: PolicyDocument = { Version: '2012-10-17', Statement: statements };
  const size = JSON.stringify(policy).length;
  if (size > MAX_SESSION_POLICY_CHARS) {
    throw new RunAccessTooLargeError(
      `The run's data sources need a ${size}-character access policy; STS allows ${MAX_SESSION_POLICY_CHARS}. Use fewer data sources (a common prefix instead of many objects).`,
    );
  }
  return policy;
}
