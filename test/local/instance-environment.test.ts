import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INSTANCE_MARKER, instancePath, LocalCompute } from '../../local/compute';
import { LocalImds } from '../../local/imds';
import { findProcessesByEnv } from '../../local/process-tree';
import { startLocalServices, type LocalServices } from '../../local/services';
import type { CommandResult } from '../../shared/ports/compute';

/**
 * The pieces together, as the agent sees them: a command on a local instance uses the plain
 * AWS CLI and curl against the local S3, DynamoDB and instance metadata.
 */

let root: string;
let services: LocalServices;
let imds: LocalImds;
let compute: LocalCompute;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'runctl-instance-env-'));
  services = await startLocalServices({ root, persist: false });
  compute = new LocalCompute({
    root,
    bootMs: 0,
    endpoints: services.endpoints,
    credentials: services.credentials,
    imdsEndpoint: (id) => imds.endpointFor(id),
  });
  imds = new LocalImds({ lookup: async (id) => compute.describe(id) });
  await imds.start();
});

afterAll(async () => {
  for (const instance of await compute.listTaggedInstances()) await compute.kill(instance.instanceId);
  compute.close();
  await imds.close();
  await services.close();
  await rm(root, { recursive: true, force: true });
});

async function run(instanceId: string, script: string): Promise<CommandResult> {
  const commandId = await compute.sendCommand(instanceId, script);
  const until = Date.now() + 60_000;
  for (;;) {
    const result = await compute.commandResult(instanceId, commandId);
    if (result.status !== 'InProgress' || Date.now() > until) return result;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A running local instance of a run's first attempt. */
async function launchInstance(runId: string): Promise<string> {
  const { instanceId } = await compute.launch({
    runId,
    attempt: 1,
    instanceTypes: ['g5.xlarge'],
    subnets: [],
    spot: true,
    onDemandFallback: false,
    rootVolumeGiB: 50,
    tags: {},
  });
  await compute.readiness(instanceId);
  return instanceId;
}

describe('a local instance', () => {
  it("reaches the local S3 and DynamoDB with the AWS CLI, and its own metadata with curl", async () => {
    const instanceId = await launchInstance('run-env');

    const result = await run(
      instanceId,
      [
        'set -euo pipefail',
        'echo "step 42" > checkpoint.txt',
        `aws s3 cp checkpoint.txt s3://${services.bucket}/runs/run-env/checkpoints/c1.txt --only-show-errors`,
        `aws dynamodb describe-table --table-name ${services.table} --query Table.TableStatus --output text`,
        'token=$(curl -sf -X PUT "$RUNCTL_IMDS_ENDPOINT/latest/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 60")',
        'curl -sf -H "X-aws-ec2-metadata-token: $token" "$RUNCTL_IMDS_ENDPOINT/latest/meta-data/instance-id"; echo',
        'curl -sf -H "X-aws-ec2-metadata-token: $token" "$RUNCTL_IMDS_ENDPOINT/latest/meta-data/placement/availability-zone"; echo',
      ].join('\n'),
    );

    expect(result).toMatchObject({ status: 'Success', exitCode: 0 });
    expect(result.stdout).toBe(`ACTIVE\n${instanceId}\nlocal-1a\n`);
    const s3 = new S3Client(services.clientConfig.s3);
    const object = await s3.send(
      new GetObjectCommand({ Bucket: services.bucket, Key: 'runs/run-env/checkpoints/c1.txt' }),
    );
    expect(await object.Body?.transformToString()).toBe('step 42\n');
    s3.destroy();

    await compute.terminate(instanceId);
    expect(await findProcessesByEnv(INSTANCE_MARKER, instanceId)).toEqual([]);
  });

  it('runs python3 and the AWS CLI directly, not through a version-manager shim, with the same interpreter as this machine', async () => {
    const host = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
    const instanceId = await launchInstance('run-path');
    const result = await run(instanceId, ['command -v python3', 'command -v aws', 'python3 -c "import sys; print(sys.executable)"'].join('\n'));
    expect(result.status).toBe('Success');
    const [python, aws, executable] = result.stdout.trim().split('\n');
    expect(python).not.toMatch(/\/shims\//);
    expect(aws).not.toMatch(/\/shims\//);
    expect(executable).toBe(host);
    await compute.terminate(instanceId);
  });
});

describe('instancePath', () => {
  const bin = execFileSync('python3', ['-c', 'import sys, os; print(os.path.dirname(sys.executable))'], { encoding: 'utf8' }).trim();

  it("puts the interpreter's bin ahead of a shims directory and keeps what came before it", () => {
    expect(instancePath('/tests/fake-tools:/home/u/.pyenv/shims:/usr/bin')).toBe(`/tests/fake-tools:${bin}:/home/u/.pyenv/shims:/usr/bin`);
  });

  it('leaves a PATH without shims, or with the bin already on it, as it is', () => {
    expect(instancePath('/usr/local/bin:/usr/bin')).toBe('/usr/local/bin:/usr/bin');
    expect(instancePath(`${bin}:/home/u/.pyenv/shims`)).toBe(`${bin}:/home/u/.pyenv/shims`);
  });
});
