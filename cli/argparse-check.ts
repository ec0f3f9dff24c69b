import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { describeUnknown, unknownHyperparameters, type ScriptFlags } from '../shared/domain/script-flags';
import { CliError } from './errors';

/**
 * `runctl submit`'s hyperparameter check: the entrypoint's argparse flags, read by
 * argparse-flags.py with Python's `ast` (the script is parsed, never run), against the
 * hyperparameters, before anything is uploaded or paid for.
 */

// dist/ sits one level below the root like cli/, so this is the same file from the bundle.
const READER = fileURLToPath(new URL('../cli/argparse-flags.py', import.meta.url));
/** Reading a script's syntax tree takes milliseconds; a stuck interpreter must not hold up the submit. */
const READ_TIMEOUT_MS = 10_000;

const ReportSchema = z.union([
  z.object({ error: z.string() }),
  z.object({ argparse: z.literal(false) }),
  z.object({ argparse: z.literal(true), open: z.string() }),
  z.object({ argparse: z.literal(true), flags: z.array(z.string()), allowAbbrev: z.boolean() }),
]);
export type FlagsReport = z.infer<typeof ReportSchema>;

/** The script's flags as argparse-flags.py reports them; undefined when python3 cannot be run. */
export function readScriptFlags(script: string, python = 'python3'): Promise<FlagsReport | undefined> {
  return new Promise((resolve) => {
    // -I: the script's directory, PYTHONPATH and user site-packages stay off sys.path, so no
    // module of the user's can stand in for the standard library the reader imports.
    const child = spawn(python, ['-I', READER, script], { stdio: ['ignore', 'pipe', 'ignore'], timeout: READ_TIMEOUT_MS });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
    });
    child.on('error', () => resolve(undefined));
    child.on('close', (code) => {
      if (code !== 0) return resolve(undefined);
      try {
        const parsed = ReportSchema.safeParse(JSON.parse(out));
        resolve(parsed.success ? parsed.data : undefined);
      } catch {
        resolve(undefined);
      }
    });
  });
}

/**
 * Refuses hyperparameters the entrypoint's argparse would refuse (exit code 2), naming the
 * closest declared flag. Silent when there is nothing to check against: no `.py` entrypoint in
 * the code directory, no argparse in it, flags it cannot list, or no python3.
 */
export async function checkHyperparametersAgainstScript(
  input: { codeDir: string; entrypoint: string | undefined; hyperparameters: Readonly<Record<string, string>> },
  warn: (text: string) => void,
  python?: string,
): Promise<void> {
  const { entrypoint, hyperparameters } = input;
  if (entrypoint === undefined || !entrypoint.endsWith('.py') || Object.keys(hyperparameters).length === 0) return;
  const script = join(input.codeDir, entrypoint);
  if (!existsSync(script)) return;
  const report = await readScriptFlags(script, python);
  if (report === undefined || !('argparse' in report)) {
    if (report !== undefined) warn(`runctl: hyperparameters not checked: ${entrypoint} could not be read (${report.error})`);
    return;
  }
  if (!report.argparse || !('flags' in report)) return;
  const flags: ScriptFlags = { flags: report.flags, allowAbbrev: report.allowAbbrev };
  const unknown = unknownHyperparameters(hyperparameters, flags);
  if (unknown.length === 0) return;
  const lines = unknown.map((item) => describeUnknown(item, report.flags));
  throw new CliError(`${lines.join('\n')}\n(read from the argparse definitions of ${entrypoint}; --no-check-args submits without this check)`, 2);
}
