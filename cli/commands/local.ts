import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../errors';

/**
 * Commands of the embedded local backend: `runctl dev` serves the API on localhost with the
 * same handlers (until Ctrl-C), `runctl local interrupt RUN` simulates a spot interruption.
 * The backend is imported only here, so the other commands never load it.
 */

function parse<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

/** `runctl dev [--port 4567] [--root .runctl]`: runs until SIGINT/SIGTERM, then stops cleanly. */
export async function runDev(args: string[]): Promise<number> {
  const { values } = parse(args, { port: { type: 'string' }, root: { type: 'string' } });
  const port = values.port === undefined ? undefined : Number(values.port);
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    throw new UsageError(`--port must be a port number (got "${String(values.port)}")`);
  }
  const root = typeof values.root === 'string' ? values.root : undefined;
  const { startDev } = await import('../../local/dev');
  const dev = await startDev({ port, root });
  console.log('Press Ctrl-C to stop; live runs resume the next time runctl dev starts.');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await dev.close();
  return 0;
}

/** `runctl local interrupt RUN [--endpoint URL] [--root .runctl]`. */
export async function runLocal(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'interrupt') throw new UsageError('Usage: runctl local interrupt RUN  (simulates a spot interruption on runctl dev)');
  const { values, positionals } = parse(rest, { endpoint: { type: 'string' }, root: { type: 'string' } });
  const [runId, ...extra] = positionals;
  if (runId === undefined || extra.length > 0) throw new UsageError('Usage: runctl local interrupt RUN');
  const { interruptRun } = await import('../../local/interrupt');
  const result = await interruptRun(runId, {
    endpoint: typeof values.endpoint === 'string' ? values.endpoint : undefined,
    root: typeof values.root === 'string' ? values.root : undefined,
  });
  console.log(
    `Spot interruption warning delivered for ${result.instanceId} (run ${result.runId}, attempt ${result.attempt}); ` +
      `the instance is reclaimed at ${result.reclaimAt}.`,
  );
  return 0;
}
