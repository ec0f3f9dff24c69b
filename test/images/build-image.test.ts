import { RunInstancesCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { CreateRepositoryCommand, GetAuthorizationTokenCommand, PutImageTagMutabilityCommand } from '@aws-sdk/client-ecr';
import { SendCommandCommand } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import * as buildImage from '../../functions/images/build-image';
import * as cleanupBuild from '../../functions/images/build-cleanup';
import * as prepareBuild from '../../functions/images/build-prepare';
import * as recordImage from '../../functions/images/build-record-image';
import * as helperInstance from '../../functions/volumes/helper-instance';
import { loadAsl, localLambdaArn } from '../../local/asl';
import { LocalStateMachine } from '../../local/state-machine-runner';
import { IMAGE_EXIT } from '../../shared/agent/docker';
import type { VolumeDeps } from '../../shared/composition/volumes';
import { startDynalite, type RunningDynalite } from '../support/dynalite';
import { type CommandOutcome, FakeAws, REGISTRY } from '../volumes/fake-aws';
import { volumeDeps } from '../volumes/world';

const SHA = 'a'.repeat(64);
const DIGEST = `sha256:${'b'.repeat(64)}`;
const BUNDLE = `s3://runctl-runs/bundles/${SHA}.tar.gz`;
const ALICE = 'arn:aws:iam::123456789012:user/alice';
const BOB = 'arn:aws:iam::123456789012:role/bob';
/** The execution input as POST /images starts it: the request in the caller's name. */
const owned = (request: unknown, owner = ALICE) => ({ owner, request });

/**
 * The builder as the fake sees it: its script pushes `image=<repository>:<tag>` (refused by an
 * IMMUTABLE repository that has the tag already, as ECR refuses it) and prints the digest the
 * registry answered. One outcome per command, however often the step polls it.
 */
function builder(digestOf: (tag: string) => string = () => DIGEST): (script: string) => CommandOutcome {
  const outcomes = new Map<string, CommandOutcome>();
  return (script) => {
    const known = outcomes.get(script);
    if (known !== undefined) return known;
    const [, uri = '', tag = ''] = /^image=(.+):([^:\n]+)$/m.exec(script) ?? [];
    const repository = uri.slice(`${REGISTRY}/`.length);
    const digest = digestOf(tag);
    const outcome: CommandOutcome = fake.push(repository, tag, digest)
      ? { status: 'Success', stdout: `{"digest":"${digest}","dockerfile":"docker/Dockerfile"}\n` }
      : {
          status: 'Failed',
          exitCode: IMAGE_EXIT.pushFailed,
          stderr: `runctl build: docker push failed\ntag invalid: The image tag '${tag}' already exists in the '${repository}' repository and cannot be overwritten because the repository is immutable.`,
        };
    outcomes.set(script, outcome);
    return outcome;
  };
}

let dynalite: RunningDynalite;
let fake: FakeAws;
let deps: VolumeDeps;
let sequence = 0;

beforeAll(async () => {
  dynalite = await startDynalite();
});
afterAll(async () => dynalite.close());
beforeEach(async () => {
  fake = new FakeAws();
  // A successful build pushes the tag to the repository and prints the digest.
  fake.commandOutcome = builder();
  deps = await volumeDeps(fake, dynalite.endpoint, 'build');
});

async function build(input: unknown, options: { beforeRecord?: () => Promise<void> } = {}) {
  sequence += 1;
  const record = recordImage.createHandler(deps);
  const machine = new LocalStateMachine({
    definition: loadAsl('build-image', localLambdaArn),
    lambdas: {
      BuildPrepareLambdaFunction: prepareBuild.createHandler(deps),
      HelperInstanceLambdaFunction: helperInstance.createHandler(deps),
      BuildImageLambdaFunction: buildImage.createHandler(deps),
      BuildRecordImageLambdaFunction: async (event: unknown, context: Parameters<typeof record>[1]) => {
        await options.beforeRecord?.();
        return record(event, context);
      },
      BuildCleanupLambdaFunction: cleanupBuild.createHandler(deps),
    },
    fastWaits: true,
  });
  const name = `build-${sequence}`;
  const execution = machine.start(input, name);
  return { name, execution, outcome: await execution.outcome };
}

const liveInstances = () => [...fake.instances.values()].filter((i) => i.state !== 'terminated');

describe('build-image state machine', () => {
  it('creates the repository, builds and pushes on a CPU builder, records the digest and terminates the builder', async () => {
    const { outcome, name } = await build(owned({ bundle: BUNDLE }));

    const imageUri = `${REGISTRY}/runctl/training@${DIGEST}`;
    const tag = `bundle-${SHA}-${name}`;
    expect(outcome).toMatchObject({
      status: 'SUCCEEDED',
      output: { owner: ALICE, bundleSha: SHA, repository: 'runctl/training', imageUri, digest: DIGEST, tag, buildId: name, dockerfile: 'docker/Dockerfile' },
    });
    expect(await deps.catalog.getImage(ALICE, SHA)).toMatchObject({ imageUri, digest: DIGEST, tag, buildId: name });
    expect(await deps.catalog.getImage(BOB, SHA)).toBeUndefined();
    expect(fake.ecr.commandCalls(CreateRepositoryCommand)[0]?.args[0].input).toMatchObject({
      repositoryName: 'runctl/training',
      imageScanningConfiguration: { scanOnPush: true },
      imageTagMutability: 'IMMUTABLE',
    });
    expect(JSON.parse(fake.repositories.get('runctl/training')?.lifecycle ?? '{}')).toMatchObject({
      rules: [{ selection: { countType: 'imageCountMoreThan', countNumber: 20 }, action: { type: 'expire' } }],
    });
    expect(fake.ecr.commandCalls(GetAuthorizationTokenCommand)).toHaveLength(1);
    expect(fake.ec2.commandCalls(RunInstancesCommand)[0]?.args[0].input).toMatchObject({ InstanceType: 'c6i.xlarge', IamInstanceProfile: { Name: 'runctl-builder' } });
    expect(liveInstances()).toEqual([]);

    const script = fake.ssm.commandCalls(SendCommandCommand)[0]?.args[0].input.Parameters?.commands?.[0] ?? '';
    expect(script).toContain(`image=${REGISTRY}/runctl/training:${tag}\n`);
    expect(script).toContain('docker push "$image"');
    expect(script).toContain(`registry=${REGISTRY}\n`);
    expect(script).toContain('aws ecr get-login-password --region us-east-1 | docker login --username AWS --password-stdin "$registry"');
    expect(script).toContain(`bundle=${BUNDLE}\n`);
    // The authorization token GetAuthorizationToken returned never reaches the instance.
    expect(script).not.toContain('QVdTOnNlY3JldA==');
    expect(script).toContain("for candidate in Dockerfile docker/Dockerfile .docker/Dockerfile; do");
  });

  it('reuses the owner\'s image of the same bundle digest without launching a builder', async () => {
    const first = await build(owned({ bundle: BUNDLE }));
    const launchesBefore = fake.ec2.commandCalls(RunInstancesCommand).length;

    const { outcome, execution } = await build(owned({ bundle: BUNDLE }));

    expect(outcome).toMatchObject({ status: 'SUCCEEDED', output: { digest: DIGEST, bundleSha: SHA, buildId: first.name } });
    expect(execution.statesEntered()).toEqual(['PrepareBuild', 'IsImageBuilt', 'ReuseImage']);
    expect(fake.ec2.commandCalls(RunInstancesCommand)).toHaveLength(launchesBefore);
  });

  it('builds again, under a new tag, when the owner\'s image has expired from the repository, and replaces the entry', async () => {
    const first = await build(owned({ bundle: BUNDLE }));
    fake.repositories.get('runctl/training')?.images.clear();
    fake.commandOutcome = builder(() => `sha256:${'c'.repeat(64)}`);

    const { outcome, name } = await build(owned({ bundle: BUNDLE }));

    expect(outcome).toMatchObject({ status: 'SUCCEEDED', output: { buildId: name, tag: `bundle-${SHA}-${name}` } });
    expect(name).not.toBe(first.name);
    expect(await deps.catalog.getImage(ALICE, SHA)).toMatchObject({ buildId: name, digest: `sha256:${'c'.repeat(64)}` });
  });

  it('gives a second owner building the same bundle digest a build and an entry of its own, and leaves the first one\'s alone', async () => {
    const alices = await build(owned({ bundle: BUNDLE }));
    const alicesEntry = await deps.catalog.getImage(ALICE, SHA);
    fake.commandOutcome = builder(() => `sha256:${'d'.repeat(64)}`);

    const { outcome, execution, name } = await build(owned({ bundle: BUNDLE }, BOB));

    expect(execution.statesEntered()).toContain('BuildImage');
    expect(outcome).toMatchObject({ status: 'SUCCEEDED', output: { owner: BOB, buildId: name, digest: `sha256:${'d'.repeat(64)}` } });
    expect(await deps.catalog.getImage(BOB, SHA)).toMatchObject({ owner: BOB, tag: `bundle-${SHA}-${name}` });
    expect(await deps.catalog.getImage(ALICE, SHA)).toEqual(alicesEntry);
    expect(alicesEntry?.buildId).toBe(alices.name);
    expect(fake.repositories.get('runctl/training')?.images).toEqual(
      new Map([
        [`bundle-${SHA}-${alices.name}`, DIGEST],
        [`bundle-${SHA}-${name}`, `sha256:${'d'.repeat(64)}`],
      ]),
    );
  });

  it('adopts no tag it finds in the repository: an image pushed under the bundle\'s name by someone else is never catalogued', async () => {
    await build(owned({ bundle: BUNDLE }, BOB));
    fake.repositories.get('runctl/training')?.images.set(`bundle-${SHA}`, `sha256:${'e'.repeat(64)}`);

    const { outcome, execution } = await build(owned({ bundle: BUNDLE }));

    expect(execution.statesEntered()).toContain('BuildImage');
    expect(outcome).toMatchObject({ status: 'SUCCEEDED', output: { owner: ALICE, digest: DIGEST } });
    expect((await deps.catalog.getImage(ALICE, SHA))?.digest).toBe(DIGEST);
  });

  it('fails, before launching a builder, when the build\'s own tag exists already (this build did not push it)', async () => {
    await deps.registry.ensureRepository('runctl/training', { keepLastImages: 20 });
    fake.push('runctl/training', `bundle-${SHA}-build-${sequence + 1}`, `sha256:${'f'.repeat(64)}`);

    const { outcome } = await build(owned({ bundle: BUNDLE }));

    expect(outcome).toMatchObject({ status: 'FAILED', error: 'Image.BuildFailed', cause: expect.stringContaining('before build') });
    expect(fake.ec2.commandCalls(RunInstancesCommand)).toHaveLength(0);
    expect(await deps.catalog.getImage(ALICE, SHA)).toBeUndefined();
  });

  it('fails a push refused by the immutable repository, naming the tag, and records nothing', async () => {
    const next = `build-${sequence + 1}`;
    // The tag lands between PrepareBuild's check and the builder's push.
    fake.commandOutcome = (script) => {
      fake.push('runctl/training', `bundle-${SHA}-${next}`, `sha256:${'f'.repeat(64)}`);
      fake.commandOutcome = builder();
      return fake.commandOutcome(script);
    };

    const { outcome } = await build(owned({ bundle: BUNDLE }));

    expect(outcome).toMatchObject({ status: 'FAILED', error: 'Image.BuildFailed', cause: expect.stringContaining('cannot be overwritten because the repository is immutable') });
    expect(liveInstances()).toEqual([]);
    expect(await deps.catalog.getImage(ALICE, SHA)).toBeUndefined();
  });

  it('records nothing when the tag names another digest than the one the builder reports', async () => {
    fake.commandOutcome = (script) => {
      builder(() => `sha256:${'f'.repeat(64)}`)(script);
      return { status: 'Success', stdout: `{"digest":"${DIGEST}","dockerfile":"Dockerfile"}\n` };
    };

    const { outcome, execution } = await build(owned({ bundle: BUNDLE }));

    expect(outcome).toMatchObject({ status: 'FAILED', error: 'Image.BuildFailed', cause: expect.stringContaining(`not ${DIGEST} that build`) });
    expect(execution.statesEntered()).toContain('RecordImage');
    expect(await deps.catalog.getImage(ALICE, SHA)).toBeUndefined();
  });

  it.each([
    ['built the same way: this build answers with that entry', 'docker/Dockerfile', 'SUCCEEDED'],
    ['from another Dockerfile: Catalog.Conflict, and that entry stays', 'images/Dockerfile.cpu', 'FAILED'],
  ])('when another build of the owner recorded the bundle meanwhile, %s', async (_label, dockerfile, status) => {
    const other = {
      owner: ALICE, bundleSha: SHA, repository: 'runctl/training', imageUri: `${REGISTRY}/runctl/training@sha256:${'9'.repeat(64)}`,
      digest: `sha256:${'9'.repeat(64)}`, tag: `bundle-${SHA}-build-other`, buildId: 'build-other', dockerfile, createdAt: '2026-11-25T11:00:00.000Z',
    };

    const { outcome } = await build(owned({ bundle: BUNDLE, dockerfile: 'docker/Dockerfile' }), {
      beforeRecord: () => deps.catalog.putImage(other),
    });

    expect(outcome.status).toBe(status);
    if (status === 'SUCCEEDED') expect(outcome).toMatchObject({ output: { buildId: 'build-other', digest: other.digest } });
    else expect(outcome).toMatchObject({ error: 'Catalog.Conflict' });
    expect(await deps.catalog.getImage(ALICE, SHA)).toEqual(other);
  });

  it('makes an existing repository with mutable tags immutable', async () => {
    fake.repositories.set('runctl/training', { uri: `${REGISTRY}/runctl/training`, images: new Map(), mutability: 'MUTABLE' });

    const { outcome } = await build(owned({ bundle: BUNDLE }));

    expect(outcome.status).toBe('SUCCEEDED');
    expect(fake.ecr.commandCalls(PutImageTagMutabilityCommand).map((c) => c.args[0].input)).toEqual([{ repositoryName: 'runctl/training', imageTagMutability: 'IMMUTABLE' }]);
    expect(fake.repositories.get('runctl/training')?.mutability).toBe('IMMUTABLE');
  });

  it('builds a named Dockerfile, looking nowhere else', async () => {
    await build(owned({ bundle: BUNDLE, dockerfile: 'images/Dockerfile.gpu' }));

    const script = fake.ssm.commandCalls(SendCommandCommand)[0]?.args[0].input.Parameters?.commands?.[0] ?? '';
    expect(script).toContain('for candidate in images/Dockerfile.gpu; do');
  });

  it.each([
    ['no Dockerfile', IMAGE_EXIT.dockerfileMissing, 'Image.DockerfileMissing'],
    ['a failed docker build', IMAGE_EXIT.buildFailed, 'Image.BuildFailed'],
  ])('fails %s by name and terminates the builder', async (_label, exitCode, error) => {
    fake.commandOutcome = () => ({ status: 'Failed', exitCode, stderr: 'runctl build: it went wrong' });

    const { outcome, execution } = await build(owned({ bundle: BUNDLE }));

    expect(outcome).toMatchObject({ status: 'FAILED', error, cause: expect.stringContaining('it went wrong') });
    expect(execution.statesEntered()).toContain('CleanUp');
    expect(fake.ec2.commandCalls(TerminateInstancesCommand)).toHaveLength(1);
    expect(liveInstances()).toEqual([]);
    expect(await deps.catalog.getImage(ALICE, SHA)).toBeUndefined();
  });

  it('refuses a bundle that is not content-addressed and has no bundleSha, naming the field', async () => {
    const { outcome } = await build({ bundle: 's3://runctl-runs/bundles/latest.tar.gz' });

    expect(outcome).toMatchObject({ status: 'FAILED', error: 'Run.Invalid', cause: expect.stringContaining('bundleSha') });
    expect(fake.ec2.commandCalls(RunInstancesCommand)).toHaveLength(0);
  });

  it('refuses, before any builder exists, a bundle outside the runs bucket\'s bundles/ (another run\'s files)', async () => {
    const { outcome } = await build({ bundle: 's3://runctl-runs/runs/r-victim/outputs/model.tar.gz', bundleSha: SHA });

    expect(outcome).toMatchObject({ status: 'FAILED', error: 'Run.Invalid', cause: expect.stringContaining('bundle: must be a code bundle uploaded through POST /uploads') });
    expect(fake.ec2.commandCalls(RunInstancesCommand)).toHaveLength(0);
  });
});
