import { z } from 'zod';
import type { FieldIssue } from '../errors';
import { ownerSecretsPath } from './run-access';

/**
 * Where a run's secrets come from: `spec.secrets` maps an environment variable of the script to
 * a reference, either `ssm:<parameter name>` (Parameter Store, SecureString or String) or the ARN
 * of a Secrets Manager secret. Only references are ever stored, shipped or logged; the agent
 * resolves them on the instance with the run's own credentials (docs/run-spec.md).
 */

/** A parsed reference: a Parameter Store name, or a Secrets Manager ARN and the name inside it. */
export type SecretRef =
  | { service: 'ssm'; name: string }
  | { service: 'secretsmanager'; arn: string; region: string; accountId: string; name: string };

/** Parameter Store names: letters, digits, `_.-/`; fully qualified (leading "/"), at most 1,011 characters. */
const SSM_REF = /^ssm:(\/[A-Za-z0-9_.\-/]{1,1010})$/;

/**
 * A Secrets Manager secret ARN, complete (`…:secret:<name>-AbCdEf`) or partial (`…:secret:<name>`):
 * GetSecretValue takes both. Names hold letters, digits and `/_+=.@-`, at most 512 characters.
 */
const SECRETS_MANAGER_REF = /^arn:(aws[a-z-]*):secretsmanager:([a-z]{2}(?:-[a-z]+)+-\d):(\d{12}):secret:([A-Za-z0-9/_+=.@-]{1,512})$/;

/** `ssm:/runctl/dev/secrets/…` or `arn:aws:secretsmanager:…:secret:…` → its parts; undefined for anything else. */
export function parseSecretRef(text: string): SecretRef | undefined {
  const ssm = SSM_REF.exec(text);
  if (ssm?.[1] !== undefined) return { service: 'ssm', name: ssm[1] };
  const arn = SECRETS_MANAGER_REF.exec(text);
  if (arn?.[2] !== undefined && arn[3] !== undefined && arn[4] !== undefined) {
    return { service: 'secretsmanager', arn: text, region: arn[2], accountId: arn[3], name: arn[4] };
  }
  return undefined;
}

/** One reference of `spec.secrets`: its form only (where it may point depends on the owner; see `secretRefIssues`). */
export const SecretRefSchema = z
  .string()
  .refine(
    (text) => parseSecretRef(text) !== undefined,
    'must be a Parameter Store reference like "ssm:/runctl/<stage>/secrets/<owner key>/wandb-key" or a Secrets Manager ARN like "arn:aws:secretsmanager:us-east-1:123456789012:secret:/runctl/<stage>/secrets/<owner key>/wandb-key"',
  );

/** What a spec's secrets are checked against: the stack's prefix and the run's owner. */
export interface SecretsScope {
  /** The stack's secrets prefix, e.g. `/runctl/dev/secrets` (`custom.secretsPrefix`). */
  prefix: string;
  owner: string;
}

/** The secrets a run of `owner` may name, when the stack has a secrets prefix. */
export function secretsScope(prefix: string | undefined, owner: string): SecretsScope | undefined {
  return prefix === undefined ? undefined : { prefix, owner };
}

/**
 * The references of `secrets` that point outside the owner's secrets path (the only place the
 * run's credentials may read), each naming the path that is allowed. Without a scope (a stack
 * with no secrets prefix) every secret is refused: nothing could read it.
 */
export function secretRefIssues(secrets: Readonly<Record<string, string>>, scope: SecretsScope | undefined): FieldIssue[] {
  const issues: FieldIssue[] = [];
  for (const [variable, text] of Object.entries(secrets)) {
    const path = `secrets.${variable}`;
    if (scope === undefined) {
      issues.push({ path, message: 'this runctl stack has no secrets prefix configured (SECRETS_PREFIX): runs cannot read secrets' });
      continue;
    }
    const ref = parseSecretRef(text);
    if (ref === undefined) continue; // the schema has reported it
    const allowed = ownerSecretsPath(scope.prefix, scope.owner);
    // The name must go past the owner's path: `<allowed>` itself names no secret.
    if (ref.name.startsWith(allowed) && ref.name.length > allowed.length) continue;
    issues.push({
      path,
      message:
        ref.service === 'ssm'
          ? `must name a parameter under your secrets path: "ssm:${allowed}<name>" (runs may read nothing else)`
          : `must name a secret under your secrets path: "arn:…:secretsmanager:<region>:<account>:secret:${allowed}<name>" (runs may read nothing else)`,
    });
  }
  return issues;
}
