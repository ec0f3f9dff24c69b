import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeWhoAmI } from '../../cli/commands/whoami';
import { ROOT, startRunctlDev, type RunningDev } from '../support/runctl-dev';
import { runCli } from './run-cli';

const LOCAL_OWNER = 'arn:aws:iam::000000000000:user/local';
const LOCAL_KEY = createHash('sha256').update(LOCAL_OWNER).digest('hex').slice(0, 32);

/**
 * `runctl whoami` against `runctl dev`: the owner the local backend signs every request in as,
 * its key, and the secrets path — the same path `runctl local secrets set` files a secret under,
 * so the reference it prints is one a submit accepts.
 */
describe('runctl whoami on runctl dev', { timeout: 120_000 }, () => {
  let dev: RunningDev;
  const cli = (...args: string[]) => runCli(args, dev.env, ROOT);

  beforeAll(async () => {
    dev = await startRunctlDev('runctl-whoami-');
  }, 120_000);
  afterAll(async () => dev.stop());

  it('prints GET /me as one JSON document with --json', async () => {
    const result = await cli('whoami', '--json');

    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      principal: LOCAL_OWNER,
      owner: LOCAL_OWNER,
      ownerKey: LOCAL_KEY,
      secretsPrefix: `/runctl/local/secrets/${LOCAL_KEY}/`,
    });
  });

  it('prints the owner, its key and path, and where a tracker key goes on this backend', async () => {
    const result = await cli('whoami');

    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^Owner\\s+${LOCAL_OWNER}$`, 'm'));
    expect(result.stdout).toMatch(new RegExp(`^Owner key\\s+${LOCAL_KEY}$`, 'm'));
    expect(result.stdout).toContain('runctl local secrets set wandb-key --from-env WANDB_API_KEY');
    expect(result.stdout).not.toContain('aws ssm put-parameter');
    expect(result.stdout).toContain(`WANDB_API_KEY: "ssm:/runctl/local/secrets/${LOCAL_KEY}/wandb-key"`);
  });

  it('names the path `runctl local secrets set` files a secret under', async () => {
    const me = JSON.parse((await cli('whoami', '--json')).stdout) as { secretsPrefix: string };
    const set = await runCli(['local', 'secrets', 'set', 'wandb-key', '--from-env', 'KEY', '--root', join(dev.dir, 'root'), '--json'], { KEY: 'k' }, ROOT);

    expect(set.code, set.stderr).toBe(0);
    expect(JSON.parse(set.stdout)).toEqual({ name: 'wandb-key', reference: `ssm:${me.secretsPrefix}wandb-key` });
  });

  it('refuses arguments it does not take', async () => {
    const result = await cli('whoami', 'alice');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Unexpected arguments: alice');
  });
});

describe('runctl whoami against a deployed stack', () => {
  const session = 'arn:aws:sts::123456789012:assumed-role/ml-engineer/alice';
  const owner = 'arn:aws:iam::123456789012:role/ml-engineer';
  const path = '/runctl/prod/secrets/474a9cd4a8e5dfe24657b0e380b1a9e1/';

  it('shows the role a session stands for and the aws ssm put-parameter line for the stack region', () => {
    const lines = describeWhoAmI({ principal: session, owner, ownerKey: '474a9cd4a8e5dfe24657b0e380b1a9e1', secretsPrefix: path }, { local: false, region: 'eu-west-1' });

    expect(lines).toContain(`Signed in as  ${session}`);
    expect(lines.find((l) => l.startsWith('Owner '))).toContain('everyone who may assume it shares');
    expect(lines).toContain(`  aws ssm put-parameter --type SecureString --name ${path}wandb-key --value "$WANDB_API_KEY" --region eu-west-1`);
    expect(lines.join('\n')).not.toContain('runctl local secrets');
  });

  it('says runs cannot read secrets when the stack has no secrets prefix', () => {
    const lines = describeWhoAmI({ principal: owner, owner, ownerKey: 'k', secretsPrefix: null }, { local: false });
    expect(lines.at(-1)).toMatch(/^Secrets path\s+none: this stack has no secrets prefix/);
    expect(lines.join('\n')).not.toContain('put-parameter');
  });
});
