import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LOCAL_OWNER as OWNER, startLocalBackend, type LocalBackend } from '../../local/runtime';
import { dockerForTests } from '../support/docker';
import { containersNamed, dockerLines, registryDigest, uploadBundle } from './support';

// Real docker builds on vfs storage: seconds each on a quiet machine, more under load.
vi.setConfig({ testTimeout: 300_000, hookTimeout: 120_000 });

const docker = await dockerForTests();

/** The example's Dockerfile shape: the base image as a build argument, one RUN step. */
const DOCKERFILE = ['ARG BASE_IMAGE', 'FROM ${BASE_IMAGE}', 'RUN python3 -c "import json, signal" && echo ok >/opt/built', ''].join('\n');

describe.skipIf(docker === undefined)('build-image on a real Docker engine and registry (local backend)', () => {
  let root: string;
  let backend: LocalBackend;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'runctl-docker-build-'));
    backend = await startLocalBackend({ root, persist: false, docker });
  });
  afterAll(async () => {
    await backend?.stop({ terminateInstances: true });
    await rm(root, { recursive: true, force: true });
  });

  /** Instances of this backend: every one is a builder here. */
  function builders(): string[] {
    const dir = join(root, 'instances');
    return existsSync(dir) ? readdirSync(dir).filter((name) => name.startsWith('i-local')) : [];
  }

  async function expectNothingLeftBehind(): Promise<void> {
    for (const id of builders()) {
      expect((await backend.compute.describe(id))?.state).toBe('terminated');
      const tmp = join(backend.compute.sandbox(id), 'var', 'tmp');
      // The work directory (bundle, sources, build log) is gone on every path.
      expect(existsSync(tmp) ? readdirSync(tmp) : []).toEqual([]);
      // Logged out: the registry password is not left in the builder's docker config.
      const config = join(backend.compute.sandbox(id), '.docker', 'config.json');
      if (existsSync(config)) expect(JSON.parse(readFileSync(config, 'utf8')).auths ?? {}).toEqual({});
    }
    // No build container is left (training containers of other test files are named runctl-…).
    const names = await dockerLines(docker!, ['ps', '--all', '--format', '{{.Names}}']);
    expect(names.filter((name) => !name.startsWith('runctl-'))).toEqual([]);
  }

  it('builds the bundle with the base as build argument, pushes it, records the registry digest, and reuses it for the same bundle', async () => {
    const bundle = await uploadBundle(backend, { Dockerfile: DOCKERFILE, 'train.py': `print("build ${Date.now()}")\n` });
    const images = backend.images!;

    const name = `build-first-${bundle.sha.slice(0, 8)}`;
    const first = await images.run({ owner: OWNER, request: { bundle: bundle.uri } }, name);

    expect(first.status, JSON.stringify(first)).toBe('SUCCEEDED');
    const tag = `bundle-${bundle.sha}-${name}`;
    const digest = await registryDigest(docker!, 'runctl/training', tag);
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(first).toMatchObject({
      output: { bundleSha: bundle.sha, digest, imageUri: `${docker!.registry}/runctl/training@${digest}`, dockerfile: 'Dockerfile' },
    });
    expect(await images.deps.catalog.getImage(OWNER, bundle.sha)).toMatchObject({ digest, tag, buildId: name });
    // Built FROM the base image the build argument named.
    const layers = await dockerLines(docker!, ['history', '--no-trunc', '--format', '{{.CreatedBy}}', `${docker!.registry}/runctl/training:${tag}`]);
    expect(layers.join('\n')).toContain('import json, signal');
    const base = await dockerLines(docker!, ['image', 'inspect', '--format', '{{index .RootFS.Layers 0}}', docker!.baseImage]);
    const built = await dockerLines(docker!, ['image', 'inspect', '--format', '{{index .RootFS.Layers 0}}', `${docker!.registry}/runctl/training:${tag}`]);
    expect(built).toEqual(base);
    expect(builders()).toHaveLength(1);
    await expectNothingLeftBehind();

    const second = images.start({ owner: OWNER, request: { bundle: bundle.uri } }, `build-second-${bundle.sha.slice(0, 8)}`);
    const outcome = await second.outcome;

    expect(outcome).toMatchObject({ status: 'SUCCEEDED', output: { digest } });
    expect(second.statesEntered()).toEqual(['PrepareBuild', 'IsImageBuilt', 'ReuseImage']);
    expect(builders()).toHaveLength(1);
  });

  it('ends a failing Dockerfile Image.BuildFailed with the last lines of the build output, leaving nothing behind', async () => {
    const failing = ['ARG BASE_IMAGE', 'FROM ${BASE_IMAGE}', 'RUN echo "compiling the extension: missing header foo.h" && exit 3', ''].join('\n');
    const bundle = await uploadBundle(backend, { Dockerfile: failing, 'train.py': 'print("never")\n' });
    const before = builders().length;

    const name = `build-failing-${bundle.sha.slice(0, 8)}`;
    const outcome = await backend.images!.run({ owner: OWNER, request: { bundle: bundle.uri } }, name);

    expect(outcome).toMatchObject({ status: 'FAILED', error: 'Image.BuildFailed' });
    const cause = outcome.status === 'FAILED' ? outcome.cause : '';
    expect(cause).toContain('docker build failed');
    expect(cause).toContain('compiling the extension: missing header foo.h');
    expect(await registryDigest(docker!, 'runctl/training', `bundle-${bundle.sha}-${name}`)).toBeUndefined();
    expect(await backend.images!.deps.catalog.getImage(OWNER, bundle.sha)).toBeUndefined();
    expect(builders()).toHaveLength(before + 1);
    await expectNothingLeftBehind();
    expect(await containersNamed(docker!, `runctl-build`)).toEqual([]);
  });
});
