import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readScriptFlags } from '../../cli/argparse-check';
import { startLocalStack, type LocalStack } from './local-stack';
import { runCli } from './run-cli';

const ROOT = resolve(import.meta.dirname, '../..');
const LINEAR_FLAGS = ['--batch-size', '--busy-cores', '--data-dir', '--epochs', '--fail-at-epoch', '--hidden', '--hold-after-epoch', '--hold-unless-loss-below', '--lr', '--min-epoch-seconds', '--seed'];

/** A script whose top level, if it ever ran, would leave `marker` behind and never return. */
function hostileScript(marker: string): string {
  return [
    'import argparse, os',
    `open(${JSON.stringify(marker)}, "w").write("the script ran")`,
    `os.system("touch ${marker}.shell")`,
    'parser = argparse.ArgumentParser()',
    'parser.add_argument("--lr", type=float)',
    'parser.add_argument("--epochs", type=int)',
    'while True:',
    '    pass',
    '',
  ].join('\n');
}

/** A module that, if imported instead of the standard library's, leaves `marker` behind. */
const shadow = (marker: string, also = '') => `open(${JSON.stringify(marker)}, "a").write(__name__)\n${also}`;

describe('the argparse flags of a script, read with ast', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'runctl-argparse-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const script = async (name: string, text: string) => {
    await writeFile(join(dir, name), text);
    return join(dir, name);
  };

  it('lists the flags of the examples', async () => {
    expect(await readScriptFlags(join(ROOT, 'examples/linear/train.py'))).toEqual({ argparse: true, flags: LINEAR_FLAGS, allowAbbrev: true });
    expect(await readScriptFlags(join(ROOT, 'examples/linear/train_torch.py'))).toEqual({ argparse: true, flags: LINEAR_FLAGS, allowAbbrev: true });
  });

  it('reads a hostile script without running a line of it, nor a module planted beside it', async () => {
    const marker = join(dir, 'ran');
    const path = await script('evil.py', hostileScript(marker));
    for (const module of ['ast', 'json', 'sitecustomize', 'argparse']) await writeFile(join(dir, `${module}.py`), shadow(marker));
    const started = Date.now();
    expect(await readScriptFlags(path)).toEqual({ argparse: true, flags: ['--epochs', '--lr'], allowAbbrev: true });
    expect(Date.now() - started).toBeLessThan(9_000);
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(`${marker}.shell`)).toBe(false);
    for (const module of ['ast', 'json', 'sitecustomize', 'argparse']) await rm(join(dir, `${module}.py`));
  });

  it('says when the flags cannot be listed from the file alone, or there is no argparse', async () => {
    const cases: Array<[string, unknown]> = [
      ['import sys\nprint(sys.argv)\n', { argparse: false }],
      ['import argparse\np = argparse.ArgumentParser()\np.add_argument("--lr")\nargs, rest = p.parse_known_args()\n', { argparse: true, open: expect.stringContaining('parse_known_args') }],
      ['import argparse\np = argparse.ArgumentParser()\ns = p.add_subparsers()\n', { argparse: true, open: expect.stringContaining('subcommands') }],
      ['import argparse\np = argparse.ArgumentParser()\nfor n in ["lr"]:\n    p.add_argument("--" + n)\n', { argparse: true, open: expect.stringContaining('computed') }],
      ['import argparse\nfrom opts import add_model_args\np = argparse.ArgumentParser()\nadd_model_args(p)\n', { argparse: true, open: expect.stringContaining('add_model_args, defined in another module') }],
      ['import argparse\np = argparse.ArgumentParser(allow_abbrev=False)\np.add_argument("-s", "--seed")\n', { argparse: true, flags: ['--seed', '-s'], allowAbbrev: false }],
      ['import argparse\ndef add(p):\n    p.add_argument("--lr")\np = argparse.ArgumentParser()\nadd(p)\nx = max(p.prog, "a")\n', { argparse: true, flags: ['--lr'], allowAbbrev: true }],
      ['import argparse\ndef broken(:\n', { error: expect.stringMatching(/^line 2: /) }],
    ];
    for (const [index, [text, expected]] of cases.entries()) {
      expect(await readScriptFlags(await script(`case${index}.py`, text)), text).toEqual(expected);
    }
  });

  it('answers undefined when there is no python3 to read with', async () => {
    expect(await readScriptFlags(join(ROOT, 'examples/linear/train.py'), join(dir, 'no-python3-here'))).toBeUndefined();
  });
});

describe('runctl submit checks the hyperparameters against the script', { timeout: 120_000 }, () => {
  let stack: LocalStack;
  let home: string;
  let env: Record<string, string>;
  const submit = (...args: string[]) => runCli(['submit', ...args, '--instance-type', 'g5.xlarge'], env, home);
  const started = () => stack.sfn.commandCalls(StartExecutionCommand).length;

  beforeAll(async () => {
    stack = await startLocalStack();
    home = await mkdtemp(join(tmpdir(), 'runctl-check-args-'));
    env = { HOME: home, RUNCTL_ENDPOINT: stack.api.url, AWS_PROFILE: '', AWS_REGION: 'us-east-1' };
  });
  afterAll(async () => {
    await stack.stop();
    await rm(home, { recursive: true, force: true });
  });

  it('refuses an unknown key with the closest flag, exit 2, before anything is uploaded or started', async () => {
    const before = started();
    const refused = await submit(join(ROOT, 'examples/linear'), '--entrypoint', 'train.py', '--hyperparameters', 'epochs=2,lr_rate=0.1');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('runctl: unknown hyperparameter lr_rate: the script has no --lr-rate; did you mean --lr?');
    expect(refused.stderr).toContain('--no-check-args');
    expect(refused.stderr).not.toMatch(/Packed|Uploaded/);
    expect(started()).toBe(before);

    const accepted = await submit(join(ROOT, 'examples/linear'), '--entrypoint', 'train.py', '--hyperparameters', 'epochs=2,batch_size=16,hid=4');
    expect(accepted.code, accepted.stderr).toBe(0);
    expect(started()).toBe(before + 1);
  });

  it('--no-check-args submits anyway', async () => {
    const before = started();
    const skipped = await submit(join(ROOT, 'examples/linear'), '--entrypoint', 'train.py', '--hyperparameters', 'lr_rate=0.1', '--no-check-args');
    expect(skipped.code, skipped.stderr).toBe(0);
    expect(started()).toBe(before + 1);
  });

  it('is silent when the script does not use argparse, or python3 is absent', async () => {
    const plain = join(home, 'plain');
    await mkdir(plain);
    await writeFile(join(plain, 'train.py'), 'import sys\nprint(sys.argv)\n');
    const noArgparse = await submit(plain, '--entrypoint', 'train.py', '--hyperparameters', 'anything=1');
    expect(noArgparse.code, noArgparse.stderr).toBe(0);
    expect(noArgparse.stderr).not.toMatch(/hyperparameter/);

    // Flags this file alone cannot list: submitted unchecked, without a word.
    const known = join(home, 'known');
    await mkdir(known);
    await writeFile(join(known, 'train.py'), 'import argparse\np = argparse.ArgumentParser()\np.add_argument("--lr")\nargs, rest = p.parse_known_args()\n');
    const open = await submit(known, '--entrypoint', 'train.py', '--hyperparameters', 'extra=1');
    expect(open.code, open.stderr).toBe(0);
    expect(open.stderr).not.toMatch(/hyperparameter/);

    // A script this python3 cannot parse (newer syntax, or a typo): a warning, and the submit goes on.
    const broken = join(home, 'broken');
    await mkdir(broken);
    await writeFile(join(broken, 'train.py'), 'import argparse\ndef broken(:\n');
    const unread = await submit(broken, '--entrypoint', 'train.py', '--hyperparameters', 'lr=1');
    expect(unread.code, unread.stderr).toBe(0);
    expect(unread.stderr).toContain('runctl: hyperparameters not checked: train.py could not be read (line 2: ');

    const noPython = await runCli(
      ['submit', join(ROOT, 'examples/linear'), '--entrypoint', 'train.py', '--hyperparameters', 'lr_rate=0.3', '--instance-type', 'g5.xlarge'],
      { ...env, PATH: join(home, 'empty-path') },
      home,
    );
    expect(noPython.code, noPython.stderr).toBe(0);
    expect(noPython.stderr).not.toMatch(/unknown hyperparameter/);
  });

  it('checks a sweep\'s axes and base hyperparameters the same way', async () => {
    const sweep = (...args: string[]) => runCli(['sweep', join(ROOT, 'examples/linear'), '--entrypoint', 'train.py', '--instance-type', 'g5.xlarge', ...args], env, home);
    const refused = await sweep('--grid', 'lr=0.1,0.01', '--grid', 'batchsize=16,32', '--hyperparameters', 'epochs=2');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('runctl: unknown hyperparameter batchsize: the script has no --batchsize; did you mean --batch-size?');
    const base = await sweep('--random', 'lr=loguniform(1e-4,1e-1)', '--trials', '2', '--hyperparameters', 'epoch=2,momentum=0.9');
    expect(base.stderr).toContain('unknown hyperparameter momentum: the script has no --momentum (its flags: --batch-size,');
    // `epoch` is a prefix of --epochs only: argparse takes it.
    expect(base.stderr).not.toContain('hyperparameter epoch:');
    // Past the check, the sweep is packed and sent (this API has no sweep route).
    const passed = await sweep('--grid', 'lr=0.1,0.01', '--hyperparameters', 'epochs=2');
    expect(passed.stderr).not.toMatch(/unknown hyperparameter/);
    expect(passed.stderr).toMatch(/does not serve POST \/sweeps/);
  });

  it('never runs the script it checks', async () => {
    const project = join(home, 'hostile');
    await mkdir(project);
    const marker = join(home, 'hostile-ran');
    await writeFile(join(project, 'train.py'), hostileScript(marker));
    await writeFile(join(project, 'ast.py'), shadow(marker));
    const refused = await runCli(['submit', project, '--entrypoint', 'train.py', '--hyperparameters', 'lr_rate=0.1', '--instance-type', 'g5.xlarge'], { ...env, PYTHONPATH: project }, home);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('unknown hyperparameter lr_rate: the script has no --lr-rate; did you mean --lr?');
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(`${marker}.shell`)).toBe(false);
  });
});
