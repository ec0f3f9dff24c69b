import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CliError, UsageError } from '../errors';

/**
 * `runctl local secrets set|ls|rm`: the local backend's stand-in for Parameter Store, a file
 * under the root (`<root>/secrets.json`, 0600) that `runctl dev` serves to its instances
 * (local/secrets.ts). Names are short (`wandb-key`); each lives under the local owner's secrets
 * path, and `set` prints the reference a spec names it by. A value is read from stdin or from an
 * environment variable, never from the command line (shell history, the process list), and no
 * command prints one.
 */

const USAGE =
  'Usage: runctl local secrets set NAME [--from-env VAR] | ls | rm NAME  [--root .runctl] [--json]  (the value of set comes from stdin, or from the variable --from-env names)';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8');
}

/** Runs one `runctl local secrets …` command line (after `secrets`). */
export async function runLocalSecrets(args: string[], env: NodeJS.ProcessEnv, options: { parseOnly?: boolean } = {}): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { root: { type: 'string' }, 'from-env': { type: 'string' }, json: { type: 'boolean', default: false }, debug: { type: 'boolean' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  const [action, name, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`Unexpected arguments: ${extra.join(' ')}`);
  if (action === 'ls' && name !== undefined) throw new UsageError(`Unexpected argument: ${name}`);
  if ((action === 'set' || action === 'rm') && name === undefined) throw new UsageError(`runctl local secrets ${action} needs a NAME, e.g. wandb-key`);
  if (action !== 'set' && action !== 'ls' && action !== 'rm') throw new UsageError(USAGE);
  if (action !== 'set' && values['from-env'] !== undefined) throw new UsageError('--from-env goes with runctl local secrets set');
  if (options.parseOnly === true) return 0;

  const { LocalSecretsFile, localSecretsPath, SecretNameSchema } = await import('../../local/secrets');
  const root = resolve(typeof values.root === 'string' ? values.root : '.runctl');
  const file = new LocalSecretsFile(root);
  const path = localSecretsPath();
  const print = (text: string, json: unknown) => console.log(values.json ? JSON.stringify(json, null, 2) : text);

  if (action === 'ls') {
    const names = Object.keys(await file.read())
      .filter((full) => full.startsWith(path))
      .sort();
    const rows = names.map((full) => ({ name: full.slice(path.length), reference: `ssm:${full}` }));
    print(rows.length === 0 ? `No secrets under ${root}: add one with \`runctl local secrets set NAME\`` : rows.map((r) => `${r.name}\t${r.reference}`).join('\n'), rows);
    return 0;
  }
  const short = SecretNameSchema.safeParse(name);
  if (!short.success) throw new UsageError(`NAME ${short.error.issues[0]?.message ?? 'is not valid'}`);
  const full = `${path}${short.data}`;
  if (action === 'rm') {
    if (!(await file.remove(full))) throw new CliError(`No secret ${short.data} under ${root} (\`runctl local secrets ls\` lists them)`);
    print(`Removed secret ${short.data}`, { name: short.data, removed: true });
    return 0;
  }
  const from = values['from-env'];
  let value: string;
  if (typeof from === 'string') {
    const found = env[from];
    if (found === undefined) throw new CliError(`--from-env ${from}: that environment variable is not set`);
    value = found;
  } else {
    if (process.stdin.isTTY) throw new CliError('Pipe the value in (printf %s "$WANDB_API_KEY" | runctl local secrets set NAME) or pass --from-env VAR');
    // `echo value |` adds one newline that is not part of the secret.
    value = (await readStdin()).replace(/\r?\n$/, '');
  }
  if (value === '') throw new CliError('The value is empty: a secret needs one');
  if (value.includes('\0')) throw new CliError('The value holds a NUL character, which no environment variable can');
  await file.set(full, value);
  const reference = `ssm:${full}`;
  print(`Set secret ${short.data}; name it in a run spec as\n  secrets: { MY_VAR: "${reference}" }`, { name: short.data, reference });
  return 0;
}
