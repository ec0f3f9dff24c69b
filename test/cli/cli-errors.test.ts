import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from './run-cli';
import { startLocalStack, type LocalStack } from './local-stack';

/**
 * Every command driven into its failure paths: each answers with a message on stderr that starts
 * with `runctl:` and says what to do, nothing on stdout, a non-zero exit code, and no stack
 * trace unless --debug asks for one.
 */

const STACK_FRAME = /^\s+at .+/m;

describe('runctl errors are one message that says what to do', () => {
  let stack: LocalStack;
  let dir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    stack = await startLocalStack();
    dir = await mkdtemp(join(tmpdir(), 'runctl-errors-'));
    await writeFile(join(dir, 'train.py'), 'print("hi")\n');
    await writeFile(join(dir, 'bad.yaml'), 'name: [unclosed\n');
    await writeFile(join(dir, 'config.json'), '{ not json');
    env = {
      HOME: dir,
      RUNCTL_ENDPOINT: stack.api.url,
      RUNCTL_CONFIG: join(dir, 'none.json'),
      AWS_PROFILE: '',
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: '',
      AWS_SECRET_ACCESS_KEY: '',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: join(dir, 'none'),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none'),
    };
  });
  afterAll(async () => {
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** [the command line, extra env, exit code, what the message must say] */
  const cases = (): Array<[string[], Record<string, string>, number, RegExp]> => [
    [['frobnicate'], {}, 2, /Unknown command "frobnicate"/],
    [['status'], {}, 2, /needs a run id/],
    [['status', 'r-1', 'r-2'], {}, 2, /Unexpected arguments: r-2/],
    [['ls', '--bogus'], {}, 2, /Unknown option '--bogus'/],
    [['ls', '--limit', '0'], {}, 2, /--limit must be a positive whole number/],
    [['logs', 'r-1', '--attempt', 'two'], {}, 2, /--attempt must be a positive whole number/],
    [['logs', 'r-1', '-f', '--json'], {}, 2, /cannot follow/],
    [['submit', join(dir, 'missing'), '--entrypoint', 'train.py'], {}, 2, /code directory .*missing does not exist/],
    [['submit', dir], {}, 2, /Say what to run: --entrypoint train.py/],
    [['submit', dir, '--entrypoint', 'train.py', '--spot', '--on-demand'], {}, 2, /Choose --spot or --on-demand/],
    [['submit', dir, '--entrypoint', 'train.py', '--max-cost', 'lots'], {}, 2, /--max-cost must be an amount in USD/],
    [['submit', dir, '--entrypoint', 'train.py', '--instance-type', 'G5 XL'], {}, 2, /instance\.types\.0: must be an EC2 instance type/],
    [['submit', '-f', join(dir, 'none.yaml')], {}, 1, /Cannot read the spec file/],
    [['submit', '-f', join(dir, 'bad.yaml')], {}, 1, /bad\.yaml is not valid YAML/],
    [['submit', dir, '--entrypoint', 'train.py', '--instance-type', 'g5.xlarge'], { RUNCTL_ENDPOINT: 'https://abc123.execute-api.us-east-1.amazonaws.com' }, 1, /No AWS credentials found/],
    [['volumes'], {}, 2, /runctl volumes needs one of: volumes prewarm, volumes ls/],
    [['volumes', 'prewarm', '--dataset', 'bucket/x', '--az', 'us-east-1', '--size', 'big'], {}, 2, /Invalid volume request:/],
    [['images', 'build', join(dir, 'missing')], {}, 2, /code directory .*missing does not exist/],
    [['images', 'build', dir, '--dockerfile', '../Dockerfile'], {}, 2, /Invalid image request:/],
    [['dev', '--port', 'eighty'], {}, 2, /--port must be a port number/],
    [['dev', 'extra'], {}, 2, /Unexpected arguments: extra/],
    [['local'], {}, 2, /Usage: runctl local interrupt RUN/],
    [['local', 'interrupt'], {}, 2, /needs a run id/],
    [['local', 'interrupt', 'r-1', '--root', join(dir, 'nowhere')], { RUNCTL_ENDPOINT: '' }, 1, /No runctl dev is running under .*nowhere/],
    [['local', 'interrupt', 'r-1'], { RUNCTL_ENDPOINT: 'http://127.0.0.1:9' }, 1, /Cannot reach runctl dev at http:\/\/127\.0\.0\.1:9/],
    [['local', 'interrupt', 'r-1'], {}, 1, /does not simulate interruptions: `runctl local interrupt` works only against `runctl dev`/],
    [['ls'], { RUNCTL_ENDPOINT: '' }, 1, /No runctl API endpoint is configured/],
    [['ls', '--endpoint', 'not a url'], {}, 1, /The endpoint "not a url" is not a URL/],
    [['ls'], { RUNCTL_ENDPOINT: '', RUNCTL_CONFIG: join(dir, 'config.json') }, 1, /config\.json is not valid JSON/],
    [['status', 'r-00000000deadbeef'], { RUNCTL_ENDPOINT: 'http://127.0.0.1:9' }, 1, /Cannot reach the runctl API at http:\/\/127\.0\.0\.1:9/],
    [['status', 'r-00000000deadbeef'], {}, 1, /Run r-00000000deadbeef not found\. `runctl ls` lists your runs\./],
    [['logs', 'r-00000000deadbeef'], {}, 1, /Run r-00000000deadbeef not found/],
    [['metrics', 'r-00000000deadbeef'], {}, 1, /Run r-00000000deadbeef not found/],
    [['checkpoints', 'r-00000000deadbeef'], {}, 1, /Run r-00000000deadbeef not found/],
    [['cancel', 'r-00000000deadbeef'], {}, 1, /Run r-00000000deadbeef not found/],
  ];

  it('each failure is a message on stderr with no stack trace, nothing on stdout, and a non-zero exit', async () => {
    const all = cases();
    const results: CliResult[] = [];
    // A few at a time: each is a process of its own.
    for (let i = 0; i < all.length; i += 6) {
      results.push(...(await Promise.all(all.slice(i, i + 6).map(([args, extra]) => runCli(args, { ...env, ...extra }, dir)))));
    }
    all.forEach(([args, , code, message], i) => {
      const result = results[i];
      const label = `runctl ${args.join(' ')}\n${result?.stderr ?? ''}`;
      expect(result?.code, label).toBe(code);
      expect(result?.stdout, label).toBe('');
      // Progress (a submit's "Packed …") may come first; the error is the one `runctl:` message.
      expect(result?.stderr.match(/^runctl: /gm)?.length, label).toBe(1);
      expect(result?.stderr, label).toMatch(message);
      expect(result?.stderr, label).not.toMatch(STACK_FRAME);
      expect(result?.stderr, label).not.toMatch(/internal error/);
    });
  }, 240_000); // ~35 processes on a shared 2-core machine

  it('--debug adds the stack trace and the cause', async () => {
    const plain = await runCli(['status', 'r-1', '--endpoint', 'http://127.0.0.1:9'], env, dir);
    const debug = await runCli(['status', 'r-1', '--endpoint', 'http://127.0.0.1:9', '--debug'], env, dir);
    expect(plain.stderr).not.toMatch(STACK_FRAME);
    expect(debug.code).toBe(1);
    expect(debug.stderr).toMatch(/^runctl: Cannot reach the runctl API/);
    expect(debug.stderr).toMatch(STACK_FRAME);
    expect(debug.stderr).toMatch(/caused by:/);
  }, 60_000);
});
