import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildTrainingArgv, parseHyperparameters } from '../../shared/domain/hyperparameters';
import { shellJoin, shellQuote } from '../../shared/domain/shell';

describe('shellQuote', () => {
  it.each([
    ['', "''"],
    ['train.py', 'train.py'],
    ['--batch-size', '--batch-size'],
    ['s3://bucket/p/x.tar.gz', 's3://bucket/p/x.tar.gz'],
    ["it's", "'it'\\''s'"],
    ["'", "''\\'''"],
    ['two words', "'two words'"],
    ['$(id)', "'$(id)'"],
    ['~', "'~'"],
    ['A=b', "'A=b'"],
    ['%1', "'%1'"],
    ['#comment', "'#comment'"],
  ])('%j → %s', (arg, quoted) => {
    expect(shellQuote(arg)).toBe(quoted);
  });

  it('refuses a NUL character, which no shell argument can hold', () => {
    expect(() => shellQuote('a\0b')).toThrow(RangeError);
  });
});

// The same argv the agent will run, put into bash text and run through a real bash.
const work = mkdtempSync(join(tmpdir(), 'runctl-shell-'));
const canary = join(work, 'canary');
const printer = join(work, 'print_argv.py');
writeFileSync(printer, 'import json, sys\nprint(json.dumps(sys.argv[1:]))\n');

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Runs `command` with `bash -c` and returns the argv the printer received. */
function argvThroughBash(command: string): unknown {
  const result = spawnSync('bash', ['-c', command], {
    encoding: 'utf8',
    cwd: work,
    env: { ...process.env, LC_ALL: 'C.UTF-8' },
  });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  return JSON.parse(result.stdout);
}

const hostile = {
  subst: `$(touch ${canary})`,
  backticks: `\`touch ${canary}\``,
  chain: `x; touch ${canary} && echo pwned | cat`,
  newline: `a\ntouch ${canary}`,
  single: "it's '' quoted",
  double: 'say "hi" \\" end',
  backslash: 'a\\b\\',
  glob: '*',
  tilde: '~',
  home: '$HOME',
  brace: '{a,b}',
  history: '!!',
  unicode: 'données-日本語-🚀',
  empty: '',
  equals: 'a=b=c',
  long: 'y'.repeat(20_000),
};

describe('training argv through a real bash', () => {
  it('arrives as exactly the argv built, with nothing expanded', () => {
    const spec = {
      code: { interpreter: 'python3', entrypoint: printer },
      hyperparameters: parseHyperparameters({ ...hostile, batch_size: 32 }),
      args: ['--out', '$(touch /nonexistent)', "'"],
    };
    const argv = buildTrainingArgv(spec);

    const received = argvThroughBash(shellJoin(argv));

    expect(received).toEqual(argv.slice(2));
    expect(received).toContain('--batch-size');
    expect(existsSync(canary)).toBe(false);
  });

  it('survives the string form, with a command instead of an entrypoint', () => {
    const spec = {
      code: { interpreter: 'python3', command: ['python3', '-c', 'import json,sys; print(json.dumps(sys.argv[1:]))'] },
      hyperparameters: parseHyperparameters(`cmd=$(touch ${canary}),bt=\`touch ${canary}\`,glob=*,tag=,opt=x=y`),
      args: ['; touch', canary],
    };

    const received = argvThroughBash(shellJoin(buildTrainingArgv(spec)));

    expect(received).toEqual([
      '--cmd', `$(touch ${canary})`, '--bt', `\`touch ${canary}\``, '--glob', '*', '--tag', '', '--opt', 'x=y',
      '; touch', canary,
    ]);
    expect(existsSync(canary)).toBe(false);
  });

  it('the canary check can fail: an unquoted join does create the file', () => {
    const unquoted = ['python3', printer, '--cmd', `$(touch ${canary})`].join(' ');
    spawnSync('bash', ['-c', unquoted], { cwd: work });
    expect(existsSync(canary)).toBe(true);
    rmSync(canary);
  });
});
