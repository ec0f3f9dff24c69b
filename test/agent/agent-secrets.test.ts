import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { z } from 'zod';
import { LocalSecretsFile, localSecretsPath, startLocalSecretsEndpoint } from '../../local/secrets';
import { createSecret, secretsEndpoints } from '../support/secrets';
import { localClientConfig } from '../support/aws-clients';
import { AgentWorld } from './agent-harness';

// Real bash and python processes against moto_server's Parameter Store and Secrets Manager.
vi.setConfig({ testTimeout: 120_000 });

const world = new AgentWorld();
const moto = inject('motoEndpoint');
const ssm = new SSMClient(localClientConfig(moto));
beforeAll(() => world.start());
afterAll(async () => {
  ssm.destroy();
  await world.stop();
});

const PREFIX = `/runctl/test/secrets/agent-${Date.now()}`;

/** A script that reports what it saw of its secrets (a digest, never the value) and a metric line of runctl's own. */
const REPORTER = [
  'import hashlib, json, os',
  'seen = {k: hashlib.sha256(os.environ[k].encode()).hexdigest() for k in ("WANDB_API_KEY", "MLFLOW_TRACKING_PASSWORD") if k in os.environ}',
  'out = os.environ["RUNCTL_OUTPUT_DIR"]',
  'json.dump({"seen": seen, "lines": os.environ["WANDB_API_KEY"].count(chr(10)) + 1}, open(os.path.join(out, "seen.json"), "w"))',
  'print(json.dumps({"step": 1, "loss": 0.5}), flush=True)',
].join('\n');

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return filesUnder(path);
    return entry.isFile() ? [path] : [];
  });
}

describe('agent: spec.secrets', () => {
  it("puts each secret in the script's environment, and nowhere the agent writes, uploads or reports", async () => {
    // Values a shell would mangle if they ever passed through one: quotes, $(…), a newline.
    const wandb = `wk-${Date.now()}-'quoted' "double" $(touch /tmp/runctl-canary)\nsecond line`;
    const mlflow = `mlflow-pass-${Date.now()}`;
    await ssm.send(new PutParameterCommand({ Name: `${PREFIX}/wandb-key`, Value: wandb, Type: 'SecureString' }));
    const arn = await createSecret(moto, `${PREFIX}/mlflow`, mlflow);

    const run = await world.launch({
      argv: ['python3', '-c', REPORTER],
      env: { WANDB_PROJECT: 'imagenet' },
      config: { secrets: { WANDB_API_KEY: `ssm:${PREFIX}/wandb-key`, MLFLOW_TRACKING_PASSWORD: arn } },
      instanceEnv: secretsEndpoints(moto),
    });
    const outcome = await run.outcome;
    await run.waitForAgentExit();

    expect(outcome).toMatchObject({ kind: 'success', output: { exitCode: 0, metrics: { step: 1, loss: 0.5 } } });
    const seen = z.object({ seen: z.record(z.string(), z.string()), lines: z.number() }).parse(
      JSON.parse(readFileSync(join(run.root, 'opt/runctl/output/seen.json'), 'utf8')),
    );
    expect(seen).toEqual({ seen: { WANDB_API_KEY: sha256(wandb), MLFLOW_TRACKING_PASSWORD: sha256(mlflow) }, lines: 2 });
    // runctl's own metrics keep flowing beside them.
    expect(await world.text(`runs/${run.runId}/metrics.jsonl`)).toContain('"loss": 0.5');

    const leaks = (text: string) => [wandb, wandb.split('\n')[0] ?? wandb, 'second line', mlflow].filter((value) => text.includes(value));
    // Nothing uploaded: log, metrics, live chunks, outputs, checkpoints.
    const keys = await world.keys(`runs/${run.runId}/`);
    expect(keys).toContain(`runs/${run.runId}/logs/attempt-1.log`);
    for (const key of keys) expect(leaks((await world.text(key)) ?? ''), key).toEqual([]);
    // Nothing on the instance's disk: config, argv and env files, the agent's own log, the state dir.
    const files = filesUnder(run.root).filter((path) => statSync(path).size < 4 * 1024 * 1024);
    expect(files).toContain(join(run.stateDir, 'argv'));
    expect(files).toContain(join(run.stateDir, 'env'));
    for (const path of files) expect(leaks(readFileSync(path, 'latin1')), path).toEqual([]);
    // Not in the SSM command text, nor in the callback.
    expect(leaks(run.command)).toEqual([]);
    expect(leaks(JSON.stringify(outcome))).toEqual([]);
    expect(existsSync('/tmp/runctl-canary')).toBe(false);
    expect(await world.text(`runs/${run.runId}/logs/attempt-1.log`)).toContain('read 2 secret(s) into the training environment');
  });

  it('fails the prechecks naming the variable and the reference when a secret is missing, before anything runs', async () => {
    await ssm.send(new PutParameterCommand({ Name: `${PREFIX}/present`, Value: 'present-value', Type: 'SecureString' }));
    const missing = `ssm:${PREFIX}/never-created`;

    const run = await world.launch({
      env: { FIXTURE_MODE: 'periodic', FIXTURE_SECONDS: '1' },
      config: { secrets: { A_PRESENT: `ssm:${PREFIX}/present`, WANDB_API_KEY: missing } },
      instanceEnv: secretsEndpoints(moto),
    });
    const outcome = await run.outcome;

    expect(outcome).toMatchObject({
      kind: 'failure',
      error: 'Run.PrecheckFailed',
      cause: { reason: expect.stringMatching(new RegExp(`^secret WANDB_API_KEY \\(${missing.replaceAll('/', '\\/')}\\) could not be read: ParameterNotFound`)) },
    });
    expect(JSON.stringify(outcome)).not.toContain('present-value');
    expect(existsSync(join(run.root, 'opt/runctl/output/received.json'))).toBe(false);
    expect(await world.text(`runs/${run.runId}/logs/attempt-1.log`)).toContain(`secret WANDB_API_KEY (${missing}) could not be read`);
  });

  it("reads the local backend's secrets file through its endpoint, as runctl dev's instances do", async () => {
    const root = world.newRoot();
    const endpoint = await startLocalSecretsEndpoint(root, 'us-east-1');
    try {
      const value = `local-${Date.now()}`;
      await new LocalSecretsFile(root).set(`${localSecretsPath()}wandb-key`, value);

      const run = await world.launch({
        argv: ['python3', '-c', REPORTER],
        config: { secrets: { WANDB_API_KEY: `ssm:${localSecretsPath()}wandb-key` } },
        instanceEnv: secretsEndpoints(endpoint.url),
      });

      expect(await run.outcome).toMatchObject({ kind: 'success' });
      expect(JSON.parse(readFileSync(join(run.root, 'opt/runctl/output/seen.json'), 'utf8'))).toMatchObject({ seen: { WANDB_API_KEY: sha256(value) } });
    } finally {
      await endpoint.close();
    }
  });

  it('fails the prechecks for a Secrets Manager secret that does not exist', async () => {
    const arn = `arn:aws:secretsmanager:us-east-1:123456789012:secret:${PREFIX}/nothing-AbCdEf`;

    const run = await world.launch({ config: { secrets: { HF_TOKEN: arn } }, instanceEnv: secretsEndpoints(moto) });

    expect(await run.outcome).toMatchObject({
      kind: 'failure',
      error: 'Run.PrecheckFailed',
      cause: { reason: expect.stringContaining(`secret HF_TOKEN (${arn}) could not be read: ResourceNotFoundException`) },
    });
  });
});
