import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { checkpointNowCommand, CONTROL_EXIT_NO_AGENT, stopCommand } from '../../shared/agent/commands';
import { AgentWorld, BUCKET, waitFor, type Launched } from './agent-harness';

// Real bash and AWS CLI processes: slow on a loaded 2-core machine, never flaky by design.
vi.setConfig({ testTimeout: 120_000 });

const world = new AgentWorld();
beforeAll(() => world.start());
afterAll(() => world.stop());

const InterruptCauseSchema = z.object({
  checkpoint: z.looseObject({ uri: z.string(), attempt: z.number(), seq: z.number() }).nullable(),
  reason: z.string(),
});

function trainingPid(run: Launched): number {
  const log = readFileSync(join(run.stateDir, 'upload/logs/attempt-1.log'), 'utf8');
  const match = /training started \(pid (\d+)\)/.exec(log);
  if (!match?.[1]) throw new Error('no training pid in the log');
  return Number(match[1]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function trainingStarted(run: Launched): Promise<void> {
  await waitFor(() => existsSync(join(run.root, 'opt/runctl/output/received.json')), 'the training to start');
}

async function interruptCause(run: Launched, error: string) {
  const outcome = await run.outcome;
  expect(outcome).toMatchObject({ kind: 'failure', error });
  return InterruptCauseSchema.parse(outcome.kind === 'failure' ? outcome.cause : undefined);
}

function key(uri: string): string {
  return uri.replace(`s3://${BUCKET}/`, '');
}

describe('agent: checkpoint now', () => {
  it('stops a script that saves on SIGTERM and calls back Spot.Interrupted with that checkpoint', async () => {
    const run = await world.launch({ env: { FIXTURE_MODE: 'save-on-term' }, config: { checkpoint: { intervalSeconds: 60, graceSeconds: 10 } } });
    await trainingStarted(run);

    const sent = await world.runOnInstance(run.root, checkpointNowCommand(run.runId, 1));
    const cause = await interruptCause(run, 'Spot.Interrupted');

    expect(sent.code).toBe(0);
    expect(cause.reason).toBe('spot-warning');
    expect(cause.checkpoint).not.toBeNull();
    const uri = cause.checkpoint?.uri ?? '';
    expect(await world.text(`${key(uri)}final.ckpt`)).toMatch(/"step": \d+/);
    expect(await world.text(`${key(uri)}_COMPLETE.json`)).toBeDefined();
    expect(JSON.parse((await world.text(`runs/${run.runId}/checkpoints/latest.json`)) ?? '').uri).toBe(uri);
    expect(readFileSync(join(run.stateDir, 'upload/logs/attempt-1.log'), 'utf8')).toContain('saved final checkpoint');
  });

  it('kills a script that ignores SIGTERM after the grace period and keeps the last periodic checkpoint', async () => {
    const run = await world.launch({ env: { FIXTURE_MODE: 'ignore-term' }, config: { checkpoint: { intervalSeconds: 0.5, graceSeconds: 1 } } });
    await waitFor(async () => (await world.text(`runs/${run.runId}/checkpoints/latest.json`)) !== undefined, 'a periodic checkpoint');
    const periodic = JSON.parse((await world.text(`runs/${run.runId}/checkpoints/latest.json`)) ?? '');
    const pid = trainingPid(run);

    await world.runOnInstance(run.root, checkpointNowCommand(run.runId, 1, 'requested'));
    const cause = await interruptCause(run, 'Spot.Interrupted');

    expect(cause.reason).toBe('requested');
    expect(cause.checkpoint).toEqual(periodic);
    expect(await world.text(`${key(periodic.uri)}periodic.ckpt`)).toBe('{"step": 1}');
    expect(alive(pid)).toBe(false);
    expect(readFileSync(join(run.stateDir, 'upload/logs/attempt-1.log'), 'utf8')).toContain('did not stop within the grace period');
  });

  it('stops on a cancel and calls back Run.Cancelled', async () => {
    const run = await world.launch({ env: { FIXTURE_MODE: 'save-on-term' }, config: { checkpoint: { intervalSeconds: 60, graceSeconds: 10 } } });
    await trainingStarted(run);

    await world.runOnInstance(run.root, stopCommand(run.runId, 1));
    const cause = await interruptCause(run, 'Run.Cancelled');

    expect(cause.reason).toBe('requested');
    expect(await world.text(`${key(cause.checkpoint?.uri ?? '')}final.ckpt`)).toBeDefined();
  });

  it('says so when no agent runs the attempt on this instance', async () => {
    const result = await world.runOnInstance(world.newRoot(), checkpointNowCommand('run-absent', 1));

    expect(result.code).toBe(CONTROL_EXIT_NO_AGENT);
    expect(result.stderr).toContain('no runctl agent for attempt 1 of run run-absent');
  });
});

describe('agent: spot notice from the instance metadata', () => {
  const SPOT_INSTANCE = 'i-0spotnotice00001';
  let imds: Server;
  let endpoint = '';
  let notice = false;
  const seenTokens: string[] = [];

  beforeAll(async () => {
    imds = createServer((request, response) => {
      if (request.method === 'PUT' && request.url === '/latest/api/token') {
        response.end('imds-session-token');
        return;
      }
      if (request.method === 'GET' && request.url === '/latest/meta-data/spot/instance-action') {
        seenTokens.push(String(request.headers['x-aws-ec2-metadata-token']));
        if (!notice) {
          response.statusCode = 404;
          response.end();
          return;
        }
        response.end(JSON.stringify({ action: 'terminate', time: new Date(Date.now() + 120_000).toISOString() }));
        return;
      }
      // The instance role's credentials, which the agent signs its calls to the agent routes with.
      if (request.method === 'GET' && request.url?.startsWith('/latest/meta-data/iam/security-credentials/')) {
        const role = world.instanceRole(SPOT_INSTANCE);
        response.end(request.url.endsWith('/') ? role.name : role.document);
        return;
      }
      response.statusCode = 404;
      response.end();
    });
    await new Promise<void>((resolve) => imds.listen(0, '127.0.0.1', resolve));
    const address: AddressInfo | string | null = imds.address();
    endpoint = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });
  afterAll(() => new Promise<void>((resolve) => imds.close(() => resolve())));

  it('checkpoints when the metadata announces an interruption', async () => {
    const run = await world.launch({ env: { FIXTURE_MODE: 'save-on-term' }, imdsEndpoint: endpoint, instanceId: SPOT_INSTANCE, config: { checkpoint: { intervalSeconds: 60, graceSeconds: 10 } } });
    await trainingStarted(run);
    await waitFor(() => seenTokens.length >= 2, 'the agent to poll the metadata');

    notice = true;
    const cause = await interruptCause(run, 'Spot.Interrupted');

    expect(cause.reason).toBe('imds');
    expect(await world.text(`${key(cause.checkpoint?.uri ?? '')}final.ckpt`)).toBeDefined();
    expect(new Set(seenTokens)).toEqual(new Set(['imds-session-token']));
  });
});

describe('agent: the execution moved on', () => {
  it('kills the training and exits when a heartbeat answers TaskTimedOut', async () => {
    const run = await world.launch({ env: { FIXTURE_MODE: 'ignore-term' }, config: { heartbeatSeconds: 1 } });
    await trainingStarted(run);
    await waitFor(() => run.heartbeats() >= 1, 'a first heartbeat');
    const pid = trainingPid(run);

    run.timeOut();
    await run.waitForAgentExit();

    expect(alive(pid)).toBe(false);
    const settled = await Promise.race([run.outcome.then(() => true), new Promise((r) => setTimeout(() => r(false), 200))]);
    expect(settled).toBe(false);
    expect(readFileSync(join(run.stateDir, 'upload/logs/attempt-1.log'), 'utf8')).toContain('no longer waits for this attempt');
  });
});
