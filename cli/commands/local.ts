import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { z } from 'zod';
import { CliError, UsageError } from '../errors';

/**
 * Commands of the embedded local backend: `runctl dev` serves the API on localhost with the
 * same handlers (until Ctrl-C), `runctl local interrupt RUN` simulates a spot interruption,
 * `runctl local secrets` keeps the secrets its runs may name (local-secrets.ts).
 * The backend is imported only here, so the other commands never load it.
 */

/** The file under the root where `runctl dev` writes its URL (local/dev.ts writes it). */
const DEV_FILE = 'dev.json';

function parse<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

/** `runctl dev [--port 4567] [--root .runctl]`: runs until SIGINT/SIGTERM, then stops cleanly. */
export async function runDev(args: string[], options: { parseOnly?: boolean } = {}): Promise<number> {
  const { values, positionals } = parse(args, { port: { type: 'string' }, root: { type: 'string' }, debug: { type: 'boolean' } });
  if (positionals.length > 0) throw new UsageError(`Unexpected arguments: ${positionals.join(' ')}`);
  const port = values.port === undefined ? undefined : Number(values.port);
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    throw new UsageError(`--port must be a port number (got "${String(values.port)}")`);
  }
  const root = typeof values.root === 'string' ? values.root : undefined;
  if (options.parseOnly === true) return 0;
  const { startDev } = await import('../../local/dev');
  const dev = await startDev({ port, root }).catch((error: unknown) => {
    if (error instanceof Error && 'code' in error && error.code === 'EADDRINUSE') {
      throw new CliError(`Port ${port ?? 4567} is in use (another runctl dev?): stop it, or pass --port with a free port`, 1, { cause: error });
    }
    throw error;
  });
  console.log('Press Ctrl-C to stop; live runs resume the next time runctl dev starts.');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await dev.close();
  return 0;
}

const DevFileSchema = z.object({ url: z.url() });
const InterruptedSchema = z.object({ runId: z.string(), attempt: z.number(), instanceId: z.string(), reclaimAt: z.string() });

/** `runctl local interrupt RUN [--endpoint URL] [--root .runctl]`: the endpoint as every command finds it, else the dev.json under the root. */
export async function runLocal(args: string[], env: NodeJS.ProcessEnv, options: { parseOnly?: boolean } = {}): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'secrets') return (await import('./local-secrets')).runLocalSecrets(rest, env, options);
  if (sub !== 'interrupt') {
    throw new UsageError('Usage: runctl local interrupt RUN  (simulates a spot interruption on runctl dev) | runctl local secrets set|ls|rm');
  }
  const { values, positionals } = parse(rest, {
    endpoint: { type: 'string' },
    root: { type: 'string' },
    json: { type: 'boolean', default: false },
    debug: { type: 'boolean' },
  });
  const [runId, ...extra] = positionals;
  if (runId === undefined) throw new UsageError('runctl local interrupt needs a run id, e.g. runctl local interrupt r-0123abcd (see runctl ls)');
  if (extra.length > 0) throw new UsageError(`Unexpected arguments: ${extra.join(' ')}`);
  if (options.parseOnly === true) return 0;
  const root = typeof values.root === 'string' ? values.root : '.runctl';
  const endpoint = (values.endpoint ?? (env.RUNCTL_ENDPOINT || undefined) ?? (await devEndpoint(root))).replace(/\/$/, '');

  let response: Response;
  try {
    response = await fetch(`${endpoint}/local/runs/${encodeURIComponent(runId)}/interrupt`, { method: 'POST' });
  } catch (error) {
    throw new CliError(`Cannot reach runctl dev at ${endpoint}: start it with \`runctl dev\`, or pass the URL it prints with --endpoint`, 1, { cause: error });
  }
  const body: unknown = await response.json().catch(() => undefined);
  if (!response.ok) {
    const message = z.object({ message: z.string() }).safeParse(body);
    if (response.status === 404 && (!message.success || message.data.message === 'Not Found')) {
      throw new CliError(`${endpoint} does not simulate interruptions: \`runctl local interrupt\` works only against \`runctl dev\``);
    }
    const text = message.success ? message.data.message : `runctl dev answered HTTP ${response.status}`;
    if (response.status === 404) throw new CliError(`${text}. \`runctl ls\` lists your runs.`);
    if (response.status === 409) throw new CliError(`${text}: only a run with a live instance can be interrupted`);
    throw new CliError(text);
  }
  const result = InterruptedSchema.safeParse(body);
  if (!result.success) throw new CliError(`${endpoint} answered the interruption with something runctl does not understand; is it runctl dev of the same version?`);
  if (values.json) {
    console.log(JSON.stringify(result.data, null, 2));
    return 0;
  }
  console.log(
    `Spot interruption warning delivered for ${result.data.instanceId} (run ${result.data.runId}, attempt ${result.data.attempt}); ` +
      `the instance is reclaimed at ${result.data.reclaimAt}.`,
  );
  return 0;
}

async function devEndpoint(root: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(join(resolve(root), DEV_FILE), 'utf8');
  } catch {
    throw new CliError(`No runctl dev is running under ${root}: start one with \`runctl dev\`, or give its URL with --endpoint or RUNCTL_ENDPOINT`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  const parsed = DevFileSchema.safeParse(value);
  if (!parsed.success) throw new CliError(`${join(root, DEV_FILE)} is damaged: restart runctl dev, or give its URL with --endpoint`);
  return parsed.data.url;
}
