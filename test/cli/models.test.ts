import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { targetPath } from '../../cli/commands/models';
import { blobKey } from '../../shared/adapters/s3-model-blobs';
import { parseRunSpec } from '../../shared/domain/run-spec';
import { LOCAL_OWNER, startLocalStack, type LocalStack } from './local-stack';
import { runCli } from './run-cli';

const BUNDLE_SHA = 'b'.repeat(64);
const MODEL = '{"weights":[0.5,-1.25]}';
const VOCAB = 'cat\ndog\n';
const sha = (text: string) => createHash('sha256').update(text).digest('hex');

describe('runctl models', () => {
  it('keeps every downloaded file inside the directory named, whatever path the API lists', () => {
    expect(targetPath('/tmp/out', 'vocab/words.txt')).toBe('/tmp/out/vocab/words.txt');
    for (const hostile of ['../escape.txt', 'a/../../escape.txt', '/etc/passwd', '', '.']) {
      expect(() => targetPath('/tmp/out', hostile), hostile).toThrow(/leaves the download directory/);
    }
  });

  describe('against the API (the real model handlers on dynalite and s3rver)', { timeout: 120_000 }, () => {
    let stack: LocalStack;
    let home: string;
    let env: Record<string, string>;
    const cli = (...args: string[]) => runCli(args, env, home);

    beforeAll(async () => {
      stack = await startLocalStack();
      home = await mkdtemp(join(tmpdir(), 'runctl-models-'));
      env = { HOME: home, RUNCTL_ENDPOINT: stack.api.url, AWS_PROFILE: '', AWS_REGION: 'us-east-1' };
      const now = new Date().toISOString();
      for (const runId of ['r-model-1', 'r-empty']) {
        await stack.deps.store.create({
          runId,
          owner: LOCAL_OWNER,
          spec: parseRunSpec({
            name: 'mlp',
            code: { bundle: `s3://${stack.bucket}/bundles/${BUNDLE_SHA}.tar.gz`, entrypoint: 'train.py' },
            instance: { types: 'g5.xlarge' },
            hyperparameters: { lr: 0.05, batch_size: 32 },
            data: ['s3://datasets/pets/:/data'],
          }),
          specHash: runId,
          status: 'SUCCEEDED',
          createdAt: now,
          updatedAt: now,
          attempts: [],
          costUsd: 0.3,
          interruptions: 0,
          userFailures: 0,
          metrics: { final: { loss: 0.125 }, min: { loss: 0.1 }, max: { loss: 2 }, points: 12 },
        });
      }
      for (const [path, body] of [['model.json', MODEL], ['vocab/words.txt', VOCAB]]) {
        await stack.s3.send(new PutObjectCommand({ Bucket: stack.bucket, Key: `runs/r-model-1/outputs/${path}`, Body: body }));
      }
    });

    afterAll(async () => {
      await stack.stop();
      await rm(home, { recursive: true, force: true });
    });

    it('registers a run as version 1 then 2, and lists the model', async () => {
      const first = await cli('models', 'register', 'r-model-1', '--name', 'pets');
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout.trim()).toBe('pets:1');
      expect(first.stderr).toMatch(/Registered pets version 1 from run r-model-1: 2 file\(s\)/);

      const second = await cli('models', 'register', 'r-model-1', '--name', 'pets', '--json');
      expect(second.code, second.stderr).toBe(0);
      expect(JSON.parse(second.stdout)).toMatchObject({
        name: 'pets',
        version: 2,
        files: [
          { path: 'model.json', sha256: sha(MODEL) },
          { path: 'vocab/words.txt', sha256: sha(VOCAB) },
        ],
        lineage: { runId: 'r-model-1', bundleDigest: `sha256:${BUNDLE_SHA}`, hyperparameters: { lr: '0.05', batch_size: '32' } },
      });

      const ls = await cli('models', 'ls');
      expect(ls.code).toBe(0);
      expect(ls.stdout.split('\n')[0]).toMatch(/^MODEL\s+LATEST\s+STAGES\s+UPDATED$/);
      expect(ls.stdout).toMatch(/^pets\s+2\s+-\s+\d{4}-/m);
      const lsJson = await cli('models', 'ls', '--json');
      expect(JSON.parse(lsJson.stdout)).toMatchObject({ models: [{ name: 'pets', latestVersion: 2, stages: {} }] });
    });

    it('promotes a version to a stage and shows the model, one version, and the stage history', async () => {
      const promoted = await cli('models', 'promote', 'pets', '1', '--stage', 'production');
      expect(promoted.code, promoted.stderr).toBe(0);
      expect(promoted.stdout.trim()).toBe('pets production → version 1 (stages: production=1)');
      const moved = await cli('models', 'promote', 'pets', '2', '--stage', 'production', '--json');
      expect(JSON.parse(moved.stdout)).toMatchObject({ name: 'pets', stages: { production: 2 } });

      const shown = await cli('models', 'show', 'pets');
      expect(shown.code).toBe(0);
      expect(shown.stdout).toContain('Model pets: 2 version(s), latest 2; stages: production=2');
      expect(shown.stdout).toMatch(/^VERSION\s+CREATED\s+RUN\s+FILES\s+SIZE\s+STAGES$/m);
      expect(shown.stdout).toMatch(/^2\s+\S+ \S+\s+r-model-1\s+2\s+31 B\s+production$/m);
      expect(shown.stdout).toMatch(/production: - → 1\n.*production: 1 → 2/);

      const one = await cli('models', 'show', 'pets', '--version', '1');
      expect(one.stdout).toContain('Model pets version 1');
      expect(one.stdout).toMatch(/hyperparameters\s+lr=0\.05, batch_size=32/);
      expect(one.stdout).toMatch(/final metrics\s+loss=0\.125/);
      expect(one.stdout).toMatch(/data\s+s3:\/\/datasets\/pets\/ → \/data/);
      expect(one.stdout).toContain(`vocab/words.txt  8 B   ${sha(VOCAB)}`);

      const json = await cli('models', 'show', 'pets', '--json');
      const parsed: unknown = JSON.parse(json.stdout);
      expect(parsed).toMatchObject({ model: { name: 'pets' }, versions: [{ version: 1 }, { version: 2 }], history: [{ version: 1 }, { version: 2, previous: 1 }] });
      const oneJson = await cli('models', 'show', 'pets', '--version', '2', '--json');
      expect(JSON.parse(oneJson.stdout)).toMatchObject({ version: 2, stages: ['production'] });
    });

    it('downloads a version (or the one a stage holds) into a directory, every file checked against its sha256', async () => {
      const to = join(home, 'by-stage');
      const result = await cli('models', 'download', 'pets', 'production', '--to', to, '--json');
      expect(result.code, result.stderr).toBe(0);
      expect(JSON.parse(result.stdout)).toMatchObject({ name: 'pets', version: 2, dir: to, files: [{ path: 'model.json' }, { path: 'vocab/words.txt' }] });
      expect(await readFile(join(to, 'model.json'), 'utf8')).toBe(MODEL);
      expect(await readFile(join(to, 'vocab', 'words.txt'), 'utf8')).toBe(VOCAB);

      // Without --to: ./NAME-vVERSION under the working directory.
      const plain = await cli('models', 'download', 'pets', '1');
      expect(plain.code, plain.stderr).toBe(0);
      expect(plain.stdout.trim()).toBe(join(home, 'pets-v1'));
      expect(plain.stderr).toContain('each matching its sha256');
      expect(await readFile(join(home, 'pets-v1', 'model.json'), 'utf8')).toBe(MODEL);
    });

    it('refuses a file whose bytes do not match its sha256, and keeps nothing of it', async () => {
      await stack.s3.send(new PutObjectCommand({ Bucket: stack.bucket, Key: blobKey(sha(VOCAB)), Body: 'tampered\n' }));
      try {
        const to = join(home, 'tampered');
        const result = await cli('models', 'download', 'pets', '1', '--to', to);
        expect(result.code).toBe(1);
        expect(result.stderr).toMatch(new RegExp(`runctl: vocab/words.txt does not match its sha256 \\(expected ${sha(VOCAB)}, got ${sha('tampered\n')}\\)`));
        expect(await readdir(join(to, 'vocab'))).toEqual([]);
      } finally {
        await stack.s3.send(new PutObjectCommand({ Bucket: stack.bucket, Key: blobKey(sha(VOCAB)), Body: VOCAB }));
      }
    });

    it('says clearly what is missing or wrong', async () => {
      const missing = await cli('models', 'show', 'nope');
      expect(missing.code).toBe(1);
      expect(missing.stderr.trim()).toBe('runctl: no model nope (`runctl models ls` lists yours)');
      expect((await cli('models', 'download', 'nope', '1')).stderr).toContain('no model nope');

      const noVersion = await cli('models', 'download', 'pets', '9');
      expect(noVersion.code).toBe(1);
      expect(noVersion.stderr).toContain('Model pets has no version or stage 9 (`runctl models show pets` lists its versions and stages)');
      expect((await cli('models', 'show', 'pets', '--version', '9')).stderr).toContain('model pets has no version 9 (it has 1 to 2)');
      expect((await cli('models', 'promote', 'pets', '9', '--stage', 'production')).stderr).toContain('Model pets has no version 9');

      const noRun = await cli('models', 'register', 'r-nowhere', '--name', 'pets');
      expect(noRun.stderr).toMatch(/Run r-nowhere not found\. `runctl ls` lists your runs/);
      const noOutputs = await cli('models', 'register', 'r-empty', '--name', 'pets');
      expect(noOutputs.code).toBe(1);
      expect(noOutputs.stderr).toMatch(/Run r-empty \(SUCCEEDED\) has no outputs to register/);

      const noName = await cli('models', 'register', 'r-model-1');
      expect(noName.code).toBe(2);
      expect(noName.stderr).toContain('runctl models register needs --name NAME');
      const noStage = await cli('models', 'promote', 'pets', '1');
      expect(noStage.code).toBe(2);
      expect(noStage.stderr).toContain('needs --stage STAGE');
      const badVersion = await cli('models', 'promote', 'pets', 'latest', '--stage', 'production');
      expect(badVersion.code).toBe(2);
      expect(badVersion.stderr).toContain('VERSION must be a version number like 3 (got "latest")');
      const badStage = await cli('models', 'promote', 'pets', '1', '--stage', 'Prod uction');
      expect(badStage.code).toBe(1);
      expect(badStage.stderr).toMatch(/stage: must be a stage name like production/);
      expect((await cli('models', 'download', 'pets')).code).toBe(2);
    });
  });
});
