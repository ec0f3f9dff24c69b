import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { localSecretsPath } from '../../local/secrets';
import { runCli, type CliResult } from './run-cli';

const BIN = new URL('../../bin/runctl.mjs', import.meta.url).pathname;

/** `runctl …` with `input` on its stdin, as `printf %s "$VALUE" | runctl …` gives it. */
function runCliWithStdin(args: string[], input: string): Promise<CliResult> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  child.stdin.end(input);
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

describe('runctl local secrets', () => {
  const root = mkdtempSync(join(tmpdir(), 'runctl-cli-secrets-'));
  const path = localSecretsPath();
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('sets a secret from an environment variable and prints the reference to name it by, never the value', async () => {
    const value = `wandb-${Date.now()}-value`;
    const result = await runCli(['local', 'secrets', 'set', 'wandb-key', '--from-env', 'MY_WANDB', '--root', root], { MY_WANDB: value });

    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`ssm:${path}wandb-key`);
    expect(result.stdout + result.stderr).not.toContain(value);
    const file = join(root, 'secrets.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ secrets: { [`${path}wandb-key`]: value } });
  });

  it('sets a secret from stdin, without the newline echo adds', async () => {
    const result = await runCliWithStdin(['local', 'secrets', 'set', 'team/mlflow-password', '--root', root, '--json'], 'pa ss\n');

    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ name: 'team/mlflow-password', reference: `ssm:${path}team/mlflow-password` });
    expect(JSON.parse(readFileSync(join(root, 'secrets.json'), 'utf8')).secrets[`${path}team/mlflow-password`]).toBe('pa ss');
  });

  it('lists names and references, never values', async () => {
    const result = await runCli(['local', 'secrets', 'ls', '--root', root, '--json'], {});

    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([
      { name: 'team/mlflow-password', reference: `ssm:${path}team/mlflow-password` },
      { name: 'wandb-key', reference: `ssm:${path}wandb-key` },
    ]);
    expect(result.stdout).not.toContain('pa ss');
  });

  it('removes a secret, and says so when there is none of that name', async () => {
    expect((await runCli(['local', 'secrets', 'rm', 'wandb-key', '--root', root], {})).code).toBe(0);
    const again = await runCli(['local', 'secrets', 'rm', 'wandb-key', '--root', root], {});
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('No secret wandb-key');
    expect(Object.keys(JSON.parse(readFileSync(join(root, 'secrets.json'), 'utf8')).secrets)).toEqual([`${path}team/mlflow-password`]);
  });

  it.each<[string[], Record<string, string>, number, RegExp]>([
    [['local', 'secrets'], {}, 2, /Usage: runctl local secrets set NAME/],
    [['local', 'secrets', 'set'], {}, 2, /needs a NAME/],
    [['local', 'secrets', 'set', '../escape', '--from-env', 'X'], { X: 'v' }, 2, /NAME must be a name like wandb-key or team\/mlflow-password \(no "\." or "\.\." segments\)/],
    [['local', 'secrets', 'set', 'k', '--from-env', 'RUNCTL_TEST_UNSET_VAR'], {}, 1, /RUNCTL_TEST_UNSET_VAR: that environment variable is not set/],
    [['local', 'secrets', 'ls', '--from-env', 'X'], {}, 2, /--from-env goes with runctl local secrets set/],
  ])('refuses %j', async (args, env, code, message) => {
    const result = await runCli([...args, '--root', root], env);
    expect(result.code).toBe(code);
    expect(result.stderr).toMatch(message);
  });
});
