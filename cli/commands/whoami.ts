import { CallerSchema, type Caller } from '../api-types';
import { printJson, type CommandContext } from '../context';

/**
 * `runctl whoami`: the owner the API records for the signing identity, its owner key, and the
 * secrets path its runs may read (`GET /me`), with the command that puts a tracker key there.
 * The owner of an assumed-role session is its role, which the session's own credentials do not
 * spell out, so this is how a user on AWS learns where `spec.secrets` may point.
 */

export interface WhoAmIOptions {
  /** A loopback endpoint: secrets are kept with `runctl local secrets`, not in Parameter Store. */
  local: boolean;
  /** The API's region: Parameter Store is regional, and a run reads its stack's region only. */
  region?: string;
}

/** The lines `runctl whoami` prints for an answer of `GET /me`. */
export function describeWhoAmI(caller: Caller, options: WhoAmIOptions): string[] {
  const lines = [`Signed in as  ${caller.principal}`];
  const shared = caller.owner !== caller.principal;
  lines.push(`Owner         ${caller.owner}${shared ? '  (the role of your session: everyone who may assume it shares its runs and secrets)' : ''}`);
  lines.push(`Owner key     ${caller.ownerKey}`);
  if (caller.secretsPrefix === null) {
    lines.push('Secrets path  none: this stack has no secrets prefix, so runs cannot read secrets');
    return lines;
  }
  const name = `${caller.secretsPrefix}wandb-key`;
  lines.push(`Secrets path  ${caller.secretsPrefix}`, '', 'Keep a tracker key there and name it in the run spec, e.g.:');
  if (options.local) {
    lines.push('  runctl local secrets set wandb-key --from-env WANDB_API_KEY   # runctl dev keeps secrets in its own file');
  } else {
    const region = options.region === undefined ? '' : ` --region ${options.region}`;
    lines.push(`  aws ssm put-parameter --type SecureString --name ${name} --value "$WANDB_API_KEY"${region}`);
  }
  lines.push(`  secrets: { WANDB_API_KEY: "ssm:${name}" }`);
  return lines;
}

/** `runctl whoami [--json]`. */
export async function whoAmI(context: CommandContext, options: WhoAmIOptions): Promise<number> {
  const caller = await context.client.call('GET', '/me', CallerSchema);
  if (context.json) printJson(context, caller);
  else context.out(describeWhoAmI(caller, options).join('\n'));
  return 0;
}
