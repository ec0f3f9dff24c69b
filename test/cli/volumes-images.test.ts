import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VolumeEntry } from '../../shared/ports/catalog';
import { startHttpApi } from '../../local/http-api';
import { BUILD_MACHINE, LOCAL_OWNER, PREWARM_MACHINE, startLocalStack, type LocalStack } from './local-stack';
import { runCli } from './run-cli';

const volume = (overrides: Partial<VolumeEntry>): VolumeEntry => ({
  owner: LOCAL_OWNER,
  datasetUri: 's3://datasets-bucket/imagenet/',
  sizeGiB: 500,
  az: 'us-east-1a',
  volumeId: 'vol-0123456789abcdef0',
  snapshotId: 'snap-0123456789abcdef0',
  volumeType: 'gp3',
  bytes: 154829212731,
  files: 1281167,
  createdAt: '2026-11-25T12:00:00.000Z',
  prewarmId: 'prewarm-0123456789abcdef',
  ...overrides,
});

describe('runctl volumes and images against the local HTTP API (dynalite + s3rver, Step Functions mocked)', () => {
  let stack: LocalStack;
  let home: string;
  let project: string;
  let env: Record<string, string>;
  const cli = (...args: string[]) => runCli(args, env);
  const executionsOf = (machine: string) => stack.machineExecutions.filter((e) => e.stateMachineArn === machine);
  const bundleKeys = async () =>
    ((await stack.s3.send(new ListObjectsV2Command({ Bucket: stack.bucket, Prefix: 'bundles/' }))).Contents ?? []).map((o) => o.Key);

  beforeAll(async () => {
    stack = await startLocalStack();
    home = await mkdtemp(join(tmpdir(), 'runctl-home-'));
    project = await mkdtemp(join(tmpdir(), 'runctl-image-'));
    await writeFile(join(project, 'train.py'), 'print("training")\n');
    await mkdir(join(project, 'docker'));
    await writeFile(join(project, 'docker', 'Dockerfile.gpu'), 'FROM pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime\nCOPY . /code\n');
    await writeFile(join(project, '.runctlignore'), 'weights/\n');
    await mkdir(join(project, 'weights'));
    await writeFile(join(project, 'weights', 'big.bin'), 'x'.repeat(4096));
    env = { HOME: home, RUNCTL_ENDPOINT: stack.api.url, AWS_PROFILE: '', AWS_REGION: 'us-east-1' };
  });
  afterAll(async () => {
    await stack.stop();
    await rm(home, { recursive: true, force: true });
    await rm(project, { recursive: true, force: true });
  });

  describe('volumes prewarm', () => {
    let prewarmId = '';

    it('posts the request, normalised, and starts one prewarm execution', async () => {
      const result = await cli('volumes', 'prewarm', '--dataset', 's3://datasets-bucket/imagenet', '--az', 'us-east-1a', '--size', '500', '--iops', '6000', '--throughput', '500');

      expect(result.code, result.stderr).toBe(0);
      prewarmId = result.stdout.trim();
      expect(prewarmId).toMatch(/^prewarm-[0-9a-f]{16}$/);
      expect(executionsOf(PREWARM_MACHINE)).toEqual([
        {
          stateMachineArn: PREWARM_MACHINE,
          name: prewarmId,
          input: { owner: LOCAL_OWNER, request: { dataset: 's3://datasets-bucket/imagenet/', az: 'us-east-1a', sizeGiB: 500, type: 'gp3', iops: 6000, throughput: 500 } },
        },
      ]);
      expect(result.stderr).toContain(`Started prewarm ${prewarmId}: s3://datasets-bucket/imagenet/ onto a 500 GiB gp3 volume in us-east-1a`);
      expect(result.stderr).toContain(`:execution:runctl-local-prewarm-volume:${prewarmId}`);
      expect(result.stderr).toContain('runctl volumes ls');
    });

    it('run again (the dataset as the argument, same request) starts nothing new', async () => {
      const again = await cli('volumes', 'prewarm', 's3://datasets-bucket/imagenet/', '--az', 'us-east-1a', '--size', '500', '--type', 'gp3', '--iops', '6000', '--throughput', '500');
      const json = await cli('volumes', 'prewarm', '--dataset', 's3://datasets-bucket/imagenet/', '--az', 'us-east-1a', '--size', '500', '--iops', '6000', '--throughput', '500', '--json');

      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout.trim()).toBe(prewarmId);
      expect(again.stderr).toContain(`already started as ${prewarmId}; nothing new was started`);
      expect(JSON.parse(json.stdout)).toMatchObject({ prewarmId, alreadyStarted: true, request: { sizeGiB: 500 } });
      expect(executionsOf(PREWARM_MACHINE)).toHaveLength(1);
    });

    it('a different request, or an explicit client token, is a new prewarm', async () => {
      const bigger = await cli('volumes', 'prewarm', '--dataset', 's3://datasets-bucket/imagenet/', '--az', 'us-east-1a', '--size', '600');
      const token = await cli('volumes', 'prewarm', '--dataset', 's3://datasets-bucket/imagenet/', '--az', 'us-east-1a', '--size', '600', '--client-token', 'refresh-2026-12');

      expect(bigger.code, bigger.stderr).toBe(0);
      expect(token.code, token.stderr).toBe(0);
      expect(new Set([prewarmId, bigger.stdout.trim(), token.stdout.trim()]).size).toBe(3);
      expect(executionsOf(PREWARM_MACHINE)).toHaveLength(3);
    });

    it('bad flags are refused before anything is sent, each naming its field and flag', async () => {
      const result = await cli('volumes', 'prewarm', '--dataset', 'datasets-bucket/imagenet', '--az', 'us-east-1', '--size', '0', '--iops', 'fast');

      expect(result.code).toBe(2);
      expect(result.stderr).toContain('Invalid volume request:');
      expect(result.stderr).toContain('  dataset (--dataset): must be an S3 prefix like s3://bucket/datasets/imagenet/');
      expect(result.stderr).toContain('  az (--az): must be an availability zone like us-east-1a');
      expect(result.stderr).toContain('  sizeGiB (--size): must be at least 1 GiB');
      expect(result.stderr).toContain('  iops (--iops): must be a whole number (got "fast")');
      expect(result.stderr).toContain('docs/volumes.md');
      expect(executionsOf(PREWARM_MACHINE)).toHaveLength(3);
    });

    it('rules across fields are checked too, and the API\'s own 400 is listed by field', async () => {
      const io2 = await cli('volumes', 'prewarm', '--dataset', 's3://datasets-bucket/x/', '--az', 'us-east-1a', '--size', '10', '--type', 'io2');
      const token = await cli('volumes', 'prewarm', '--dataset', 's3://datasets-bucket/x/', '--az', 'us-east-1a', '--size', '10', '--client-token', 'not a token!');

      expect(io2.code).toBe(2);
      expect(io2.stderr).toContain('  iops (--iops): is required for io2 volumes');
      expect(token.code).toBe(1);
      expect(token.stderr).toMatch(/Invalid request:\n {2}clientToken: must be 1-64 letters/);
      expect(executionsOf(PREWARM_MACHINE)).toHaveLength(3);
    });

    it('without a dataset, says which flags are missing', async () => {
      const result = await cli('volumes', 'prewarm');

      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/dataset \(--dataset\): is required/);
      expect(result.stderr).toMatch(/az \(--az\): is required/);
      expect(result.stderr).toMatch(/sizeGiB \(--size\): is required/);
    });
  });

  describe('volumes ls', () => {
    it('says how to pre-warm one while the catalog is empty', async () => {
      const result = await cli('volumes', 'ls');

      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toBe('');
      expect(result.stderr).toContain('No pre-warmed volumes yet');
    });

    it('renders the catalog as a table, newest first, and as JSON', async () => {
      await stack.volumes.catalog.putVolume(volume({}));
      await stack.volumes.catalog.putVolume(
        volume({
          datasetUri: 's3://datasets-bucket/coco/',
          az: 'us-east-1b',
          sizeGiB: 50,
          volumeId: 'vol-0fedcba9876543210',
          snapshotId: 'snap-0fedcba9876543210',
          bytes: 20 * 1024 ** 3,
          files: 123287,
          createdAt: '2026-11-26T08:30:00.000Z',
          claimedBy: 'r-0123456789abcdef',
        }),
      );

      const result = await cli('volumes', 'ls');
      const json = await cli('volumes', 'ls', '--json');

      expect(result.code, result.stderr).toBe(0);
      const lines = result.stdout.trimEnd().split('\n');
      expect(lines[0]).toMatch(/^DATASET\s+AZ\s+SIZE\s+VOLUME\s+SNAPSHOT\s+BYTES\s+FILES\s+CREATED\s+IN USE BY$/);
      expect(lines.slice(1).map((l) => l.split(/\s{2,}/))).toEqual([
        ['s3://datasets-bucket/coco/', 'us-east-1b', '50 GiB gp3', 'vol-0fedcba9876543210', 'snap-0fedcba9876543210', '20.0 GiB', '123287', '2026-11-26 08:30:00Z', 'r-0123456789abcdef'],
        ['s3://datasets-bucket/imagenet/', 'us-east-1a', '500 GiB gp3', 'vol-0123456789abcdef0', 'snap-0123456789abcdef0', '144.2 GiB', '1281167', '2026-11-25 12:00:00Z', '-'],
      ]);
      expect(JSON.parse(json.stdout).volumes.map((v: VolumeEntry) => v.volumeId)).toEqual(['vol-0fedcba9876543210', 'vol-0123456789abcdef0']);
    });

    it('against an API without the volume routes, says the endpoint does not serve them', async () => {
      const runsOnly = await startHttpApi({ deps: stack.deps, identity: 'arn:aws:iam::000000000000:user/local' });
      try {
        const result = await runCli(['volumes', 'ls'], { ...env, RUNCTL_ENDPOINT: runsOnly.url });

        expect(result.code).toBe(1);
        expect(result.stderr).toContain(`${runsOnly.url} does not serve GET /volumes`);
      } finally {
        await runsOnly.close();
      }
    });

    it('takes no arguments', async () => {
      const result = await cli('volumes', 'ls', 'extra');

      expect(result.code).toBe(2);
      expect(result.stderr).toContain('Unexpected arguments: extra');
    });
  });

  describe('images build', () => {
    let buildId = '';
    let bundle = '';

    it('packs and uploads the directory as submit does, then posts the bundle', async () => {
      const result = await cli('images', 'build', project, '--dockerfile', 'docker/Dockerfile.gpu', '--repository', 'vision');

      expect(result.code, result.stderr).toBe(0);
      buildId = result.stdout.trim();
      expect(buildId).toMatch(/^build-[0-9a-f]{16}$/);
      expect(result.stderr).toMatch(/Packed .*: 3 files/);
      const keys = await bundleKeys();
      expect(keys).toHaveLength(1);
      bundle = `s3://${stack.bucket}/${keys[0]}`;
      const sha = /bundles\/([0-9a-f]{64})\.tar\.gz$/.exec(bundle)?.[1];
      expect(result.stderr).toContain(`Uploaded ${bundle}`);
      expect(executionsOf(BUILD_MACHINE)).toEqual([
        {
          stateMachineArn: BUILD_MACHINE,
          name: buildId,
          input: { owner: LOCAL_OWNER, request: { bundle, bundleSha: sha, dockerfile: 'docker/Dockerfile.gpu', repository: 'vision', rebuild: false } },
        },
      ]);
      expect(result.stderr).toContain('docker: {build: {dockerfile: docker/Dockerfile.gpu}}');

      const object = await stack.s3.send(new GetObjectCommand({ Bucket: stack.bucket, Key: keys[0] }));
      const tarball = join(home, 'image-bundle.tar.gz');
      await writeFile(tarball, (await object.Body?.transformToByteArray()) ?? new Uint8Array());
      const listed = spawnSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).sort();
      expect(listed).toEqual(['.runctlignore', 'docker/', 'docker/Dockerfile.gpu', 'train.py']);
    });

    it('run again, neither uploads nor starts a second build', async () => {
      const again = await cli('images', 'build', project, '--dockerfile', 'docker/Dockerfile.gpu', '--repository', 'vision');

      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout.trim()).toBe(buildId);
      expect(again.stderr).toContain(`Code bundle unchanged: ${bundle}`);
      expect(again.stderr).toContain(`already started as ${buildId}`);
      expect(await bundleKeys()).toHaveLength(1);
      expect(executionsOf(BUILD_MACHINE)).toHaveLength(1);
    });

    it('once the catalog has the image, prints it and what to put in a run spec', async () => {
      const sha = /([0-9a-f]{64})\.tar\.gz$/.exec(bundle)?.[1] ?? '';
      const imageUri = `000000000000.dkr.ecr.us-east-1.amazonaws.com/runctl/vision@sha256:${'5'.repeat(64)}`;
      await stack.volumes.catalog.putImage({
        owner: LOCAL_OWNER,
        bundleSha: sha,
        repository: 'runctl/vision',
        imageUri,
        digest: `sha256:${'5'.repeat(64)}`,
        tag: `bundle-${sha}-${buildId}`,
        buildId,
        dockerfile: 'docker/Dockerfile.gpu',
        createdAt: '2026-11-25T12:00:00.000Z',
      });

      const built = await cli('images', 'build', project, '--repository', 'vision');
      const json = await cli('images', 'build', project, '--repository', 'vision', '--json');

      expect(built.code, built.stderr).toBe(0);
      expect(built.stdout.trim()).toBe(imageUri);
      expect(built.stderr).toContain('`docker: auto`');
      expect(built.stderr).toContain(`docker: {image: ${imageUri}}`);
      expect(JSON.parse(json.stdout)).toMatchObject({ status: 'built', image: { imageUri } });
      expect(executionsOf(BUILD_MACHINE)).toHaveLength(1);
    });

    it('--rebuild starts a new build of the same bundle', async () => {
      const rebuilt = await cli('images', 'build', project, '--repository', 'vision', '--rebuild');

      expect(rebuilt.code, rebuilt.stderr).toBe(0);
      expect(rebuilt.stdout.trim()).not.toBe(buildId);
      expect(executionsOf(BUILD_MACHINE).map((e) => e.input)).toContainEqual({ owner: LOCAL_OWNER, request: expect.objectContaining({ bundle, rebuild: true }) });
      expect(await bundleKeys()).toHaveLength(1);
    });

    it('bad flags are refused, each naming its field and flag, before anything is packed', async () => {
      const other = await mkdtemp(join(tmpdir(), 'runctl-image-bad-'));
      await writeFile(join(other, 'Dockerfile'), 'FROM scratch\n');
      try {
        const result = await cli('images', 'build', other, '--dockerfile', '../Dockerfile', '--repository', 'Vision_Models');

        expect(result.code).toBe(2);
        expect(result.stderr).toContain('Invalid image request:');
        expect(result.stderr).toContain('  dockerfile (--dockerfile): must not contain ".." segments');
        expect(result.stderr).toContain('  repository (--repository): must be a lowercase repository name like training');
        expect(result.stderr).not.toContain('Packed');
        expect(await bundleKeys()).toHaveLength(1);
      } finally {
        await rm(other, { recursive: true, force: true });
      }
    });

    it('a missing directory is a usage error', async () => {
      const result = await cli('images', 'build', join(project, 'no-such-dir'));

      expect(result.code).toBe(2);
      expect(result.stderr).toContain('does not exist');
    });
  });
});
