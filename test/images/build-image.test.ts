import { RunInstancesCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { CreateRepositoryCommand, GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
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
import { FakeAws, REGISTRY } from '../volumes/fake-aws';
import { volumeDeps } from '../volumes/world';

const SHA = 'a'.repeat(64);
const DIGEST = `sha256:${'b'.repeat(64)}`;
const BUNDLE = `s3://runctl-runs/bundles/${SHA}.tar.gz`;

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
  fake.commandOutcome = () => {
    fake.repositories.get('runctl/training')?.images.set(`bundle-${SHA}`, DIGEST);
    return { status: 'Success', stdout: `{"digest":"${DIGEST}","dockerfile":"docker/Dockerfile"}\n` };
  };
  deps = await volumeDeps(fake, dynalite.endpoint, 'build');
});

async function build(input: unknown) {
  sequence += 1;
  const machine = new LocalStateMachine({
    definition: loadAsl('build-image', localLambdaArn),
    lambdas: {
      BuildPrepareLambdaFunction: prepareBuild.createHandler(deps),
      HelperInstanceLambdaFunction: helperInstance.createHandler(deps),
      BuildImageLambdaFunction: buildImage.createHandler(deps),
      BuildRecordImageLambdaFunction: recordImage.createHandler(deps),
      BuildCleanupLambdaFunction: cleanupBuild.createHandler(deps),
    },
    fastWaits: true,
  });
  const execution = machine.start(input, `build-${sequence}`);
  return { execution, outcome: await execution.outcome };
}

const liveInstances = () => [...fake.instances.values()].filter((i) => i.state !== 'terminated');

describe('build-image state machine', () => {
  it('creates the repository, builds and pushes on a CPU builder, records the digest and terminates the builder', async () => {
    const { outcome } = await build({ bundle: BUNDLE });

    const imageUri = `${REGISTRY}/runctl/training@${DIGEST}`;
    expect(outcome).toMatchObject({ status: 'SUCCEEDED', output: { bundleSha: SHA, repository: 'runctl/training', imageUri, digest: DIGEST, dockerfile: 'docker/Dockerfile' } });
    expect(await deps.catalog.getImage(SHA)).toMatchObject({ imageUri, digest: DIGEST });
    expect(fake.ecr.commandCalls(CreateRepositoryCommand)[0]?.args[0].input).toMatchObject({
      repositoryName: 'runctl/training',
      imageScanningConfiguration: { scanOnPush: true },
    });
    expect(JSON.parse(fake.repositories.get('runctl/training')?.lifecycle ?? '{}')).toMatchObject({
      rules: [{ selection: { countType: 'imageCountMoreThan', countNumber: 20 }, action: { type: 'expire' } }],
    });
    expect(fake.ecr.commandCalls(GetAuthorizationTokenCommand)).toHaveLength(1);
    expect(fake.ec2.commandCalls(RunInstancesCommand)[0]?.args[0].input).toMatchObject({ InstanceType: 'c6i.xlarge', IamInstanceProfile: { Name: 'runctl-builder' } });
    expect(liveInstances()).toEqual([]);

    const script = fake.ssm.commandCalls(SendCommandCommand)[0]?.args[0].input.Parameters?.commands?.[0] ?? '';
    expect(script).toContain(`image=${REGISTRY}/runctl/training:bundle-${SHA}\n`);
    expect(script).toContain('docker push "$image"');
    expect(script).toContain(`registry=${REGISTRY}\n`);
    expect(script).toContain('aws ecr get-login-password --region us-east-1 | docker login --username AWS --password-stdin "$registry"');
    expect(script).toContain(`bundle=${BUNDLE}\n`);
    // The authorization token GetAuthorizationToken returned never reaches the instance.
    expect(script).not.toContain('QVdTOnNlY3JldA==');
    expect(script).toContain("for candidate in Dockerfile docker/Dockerfile .docker/Dockerfile; do");
  });

  it('reuses the image of the same bundle digest without launching a builder', async () => {
    await build({ bundle: BUNDLE });
    const launchesBefore = fake.ec2.commandCalls(RunInstancesCommand).length;

    const { outcome, execution } = await build({ bundle: BUNDLE });

    expect(outcome).toMatchObject({ status: 'SUCCEEDED', output: { digest: DIGEST, bundleSha: SHA } });
    expect(execution.statesEntered()).toEqual(['PrepareBuild', 'IsImageBuilt', 'ReuseImage']);
    expect(fake.ec2.commandCalls(RunInstancesCommand)).toHaveLength(launchesBefore);
  });

  it('builds a named Dockerfile, looking nowhere else', async () => {
    await build({ bundle: BUNDLE, dockerfile: 'images/Dockerfile.gpu' });

    const script = fake.ssm.commandCalls(SendCommandCommand)[0]?.args[0].input.Parameters?.commands?.[0] ?? '';
    expect(script).toContain('for candidate in images/Dockerfile.gpu; do');
  });

  it.each([
    ['no Dockerfile', IMAGE_EXIT.dockerfileMissing, 'Image.DockerfileMissing'],
    ['a failed docker build', IMAGE_EXIT.buildFailed, 'Image.BuildFailed'],
  ])('fails %s by name and terminates the builder', async (_label, exitCode, error) => {
    fake.commandOutcome = () => ({ status: 'Failed', exitCode, stderr: 'runctl build: it went wrong' });

    const { outcome, execution } = await build({ bundle: BUNDLE });

    expect(outcome).toMatchObject({ status: 'FAILED', error, cause: expect.stringContaining('it went wrong') });
    expect(execution.statesEntered()).toContain('CleanUp');
    expect(fake.ec2.commandCalls(TerminateInstancesCommand)).toHaveLength(1);
    expect(liveInstances()).toEqual([]);
    expect(await deps.catalog.getImage(SHA)).toBeUndefined();
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
