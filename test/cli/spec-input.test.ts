import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../cli/config';
import { CliError } from '../../cli/errors';
import { plot, progressBar, table } from '../../cli/render';
import { checkSpec, clientTokenFor, draftSpec } from '../../cli/spec-input';

describe('the submitted spec', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'runctl-spec-'));
    await mkdir(join(dir, 'src'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('reads a YAML spec file whose code.dir is relative to the file, and lets flags win', async () => {
    await writeFile(
      join(dir, 'run.yaml'),
      ['name: resnet', 'code:', '  dir: src', '  entrypoint: train.py', 'hyperparameters:', '  epochs: 50', 'instance:', '  types: [g5.xlarge]', '  spot: true'].join('\n'),
    );

    const draft = draftSpec({ file: join(dir, 'run.yaml'), hyperparameters: 'epochs=5', spot: false, maxCost: '7.5' });

    expect(draft.codeDir).toBe(join(dir, 'src'));
    expect(draft.spec).toEqual({
      name: 'resnet',
      code: { entrypoint: 'train.py' },
      hyperparameters: 'epochs=5',
      instance: { types: ['g5.xlarge'], spot: false },
      limits: { maxCostUsd: 7.5 },
    });
  });

  it('keeps the bundle of a JSON spec that names one, and packs nothing', async () => {
    const spec = { name: 'x', code: { bundle: 's3://b-1/bundles/a.tar.gz', entrypoint: 't.py' }, instance: { types: 'g5.xlarge' } };
    await writeFile(join(dir, 'run.json'), JSON.stringify(spec));

    const draft = draftSpec({ file: join(dir, 'run.json') });

    expect(draft.codeDir).toBeUndefined();
    expect(draft.spec.code).toEqual(spec.code);
  });

  it('names the run after the directory and asks for what is missing', () => {
    expect(draftSpec({ dir, entrypoint: 'train.py', instanceTypes: 'g5.xlarge' }).spec.name).toMatch(/^runctl-spec-/);
    expect(() => draftSpec({ dir, instanceTypes: 'g5.xlarge' })).toThrow(/--entrypoint train\.py/);
    expect(() => draftSpec({ dir, entrypoint: 'train.py' })).toThrow(/--instance-type/);
    expect(() => draftSpec({ dir: join(dir, 'nope'), entrypoint: 'train.py', instanceTypes: 'g5.xlarge' })).toThrow(/does not exist/);
  });

  it('lists every invalid field with its path, and derives one client token per spec', () => {
    const base = { name: 'x', code: { bundle: 's3://b-1/bundles/a.tar.gz', entrypoint: 'train.py' }, instance: { types: 'g5.xlarge' } };
    const bad = () => checkSpec({ ...base, instance: { types: 'G5' }, limits: { maxRuntime: '12 hours' } });

    expect(bad).toThrow(CliError);
    expect(bad).toThrow(/instance\.types\.0: .*\n\s+limits\.maxRuntime: /);
    const token = clientTokenFor(checkSpec(base));
    expect(token).toMatch(/^submit-[0-9a-f]{40}$/);
    expect(clientTokenFor(checkSpec({ ...base, instance: { types: ['g5.xlarge'] } }))).toBe(token);
    expect(clientTokenFor(checkSpec(base), 'again')).not.toBe(token);
  });
});

describe('configuration', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'runctl-config-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('takes the flag, then RUNCTL_ENDPOINT, then the config file; a deployed URL gives its region', async () => {
    const file = join(dir, 'config.json');
    await writeFile(file, JSON.stringify({ endpoint: 'https://abc123.execute-api.eu-west-1.amazonaws.com', profile: 'ml' }));

    const fromFile = resolveConfig({}, { RUNCTL_CONFIG: file });
    const fromEnv = resolveConfig({}, { RUNCTL_CONFIG: file, RUNCTL_ENDPOINT: 'http://localhost:4000' });
    const fromFlag = resolveConfig({ endpoint: 'http://127.0.0.1:5000', region: 'us-west-2' }, { RUNCTL_CONFIG: file, RUNCTL_ENDPOINT: 'http://localhost:4000' });

    expect(fromFile).toMatchObject({ local: false, region: 'eu-west-1', profile: 'ml' });
    expect(fromFile.endpoint.hostname).toBe('abc123.execute-api.eu-west-1.amazonaws.com');
    expect(fromEnv).toMatchObject({ local: true });
    expect(fromEnv.endpoint.port).toBe('4000');
    expect(fromFlag).toMatchObject({ local: true, region: 'us-west-2' });
    expect(() => resolveConfig({}, { RUNCTL_CONFIG: join(dir, 'missing.json') })).toThrow(/runctl dev/);
  });
});

describe('terminal rendering', () => {
  it('aligns tables, fills progress bars and plots a falling loss from top left to bottom right', () => {
    expect(table(['A', 'LONGER'], [['xx', 'y'], ['z', 'w']])).toBe('A   LONGER\nxx  y\nz   w');
    expect(progressBar(1, 4, 8)).toBe('[##------] 1/4');
    const lines = plot([{ x: 0, y: 1 }, { x: 5, y: 0.5 }, { x: 10, y: 0.1 }], { width: 11, height: 5 }).split('\n');
    expect(lines[0]).toBe('  1 |*');
    expect(lines[4]).toBe('0.1 |          *');
    expect(lines[6]).toMatch(/^\s+0\s+10$/);
  });
});
