import { CreateRepositoryCommand, DescribeRepositoriesCommand, ECRClient, GetLifecyclePolicyCommand, PutImageCommand } from '@aws-sdk/client-ecr';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { EcrImages } from '../../shared/adapters/ecr-images';
import { localClientConfig } from '../support/aws-clients';

const name = `runctl/moto-${Date.now().toString(36)}`;

/** A minimal image manifest; `n` makes its digest differ. */
function manifest(n: number): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: { digest: 'sha256:' + String(n).repeat(64).slice(0, 64), size: 1, mediaType: 'application/vnd.docker.container.image.v1+json' },
    layers: [],
  });
}

describe('ECR adapter on moto_server', () => {
  let ecr: ECRClient;
  let images: EcrImages;

  beforeAll(() => {
    ecr = new ECRClient(localClientConfig(inject('motoEndpoint')));
    images = new EcrImages(ecr, { throttleRetry: { attempts: 1, baseMs: 1 } });
  });

  it('creates a missing repository with scan on push and a lifecycle policy, then finds it again', async () => {
    const created = await images.ensureRepository(name, { keepLastImages: 7 });
    const again = await images.ensureRepository(name, { keepLastImages: 7 });

    expect(created).toMatchObject({ repositoryName: name, created: true, repositoryUri: expect.stringContaining(`/${name}`) });
    expect(again).toMatchObject({ created: false, repositoryUri: created.repositoryUri });
    const described = await ecr.send(new DescribeRepositoriesCommand({ repositoryNames: [name] }));
    expect(described.repositories?.[0]?.imageScanningConfiguration?.scanOnPush).toBe(true);
    expect(described.repositories?.[0]?.imageTagMutability).toBe('IMMUTABLE');
    const policy = await ecr.send(new GetLifecyclePolicyCommand({ repositoryName: name }));
    expect(JSON.parse(policy.lifecyclePolicyText ?? '{}')).toMatchObject({ rules: [{ selection: { countNumber: 7, countType: 'imageCountMoreThan' } }] });
  });

  it('finds a pushed image by tag with its digest, and nothing for an unknown tag or repository', async () => {
    await images.ensureRepository(name, { keepLastImages: 7 });
    await ecr.send(new PutImageCommand({ repositoryName: name, imageManifest: manifest(1), imageTag: 'bundle-abc' }));

    const found = await images.findImage(name, 'bundle-abc');

    expect(found?.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(found?.imageUri).toMatch(new RegExp(`/${name}@sha256:`));
    expect(await images.findImage(name, 'bundle-missing')).toBeUndefined();
    expect(await images.findImage('runctl/no-such-repository', 'x')).toBeUndefined();
  });

  it('keeps a pushed tag on its digest: a second push of the tag is refused and the tag still names the first image', async () => {
    await images.ensureRepository(name, { keepLastImages: 7 });
    const first = await ecr.send(new PutImageCommand({ repositoryName: name, imageManifest: manifest(2), imageTag: 'bundle-def-build-1' }));

    // ECR answers ImageTagAlreadyExistsException; moto_server answers ImageAlreadyExistsException.
    await expect(ecr.send(new PutImageCommand({ repositoryName: name, imageManifest: manifest(3), imageTag: 'bundle-def-build-1' }))).rejects.toMatchObject({
      name: expect.stringMatching(/^Image(Tag)?AlreadyExistsException$/),
    });
    expect((await images.findImage(name, 'bundle-def-build-1'))?.digest).toBe(first.image?.imageId?.imageDigest);
  });

  it('makes a repository created with mutable tags immutable', async () => {
    const legacy = `${name}-legacy`;
    await ecr.send(new CreateRepositoryCommand({ repositoryName: legacy, imageTagMutability: 'MUTABLE' }));

    const ensured = await images.ensureRepository(legacy, { keepLastImages: 7 });

    expect(ensured.created).toBe(false);
    const described = await ecr.send(new DescribeRepositoriesCommand({ repositoryNames: [legacy] }));
    expect(described.repositories?.[0]?.imageTagMutability).toBe('IMMUTABLE');
  });

  it('gets an authorization token and keeps only the registry host', async () => {
    const login = await images.registryLogin();

    expect(login.registry).toMatch(/^\d{12}\.dkr\.ecr\.us-east-1\.amazonaws\.com$/);
    expect(JSON.stringify(login)).not.toMatch(/authorizationToken|password/i);
    expect(Number.isNaN(Date.parse(login.expiresAt))).toBe(false);
  });
});
