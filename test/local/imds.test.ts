import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalImds } from '../../local/imds';

const INSTANCE = 'i-local0123abcd';
let imds: LocalImds;
let clock = Date.parse('2026-03-01T10:00:00Z');

beforeAll(async () => {
  imds = new LocalImds({
    lookup: (id) => (id === INSTANCE ? { availabilityZone: 'local-1a', instanceType: 'g5.xlarge' } : undefined),
    now: () => clock,
  });
  await imds.start();
});

afterAll(async () => {
  await imds.close();
});

async function token(instanceId = INSTANCE, ttl: string | null = '300'): Promise<Response> {
  return fetch(`${imds.endpointFor(instanceId)}/latest/api/token`, {
    method: 'PUT',
    headers: ttl === null ? {} : { 'X-aws-ec2-metadata-token-ttl-seconds': ttl },
  });
}

async function get(path: string, metadataToken?: string, instanceId = INSTANCE): Promise<Response> {
  return fetch(`${imds.endpointFor(instanceId)}/latest/meta-data/${path}`, {
    headers: metadataToken === undefined ? {} : { 'X-aws-ec2-metadata-token': metadataToken },
  });
}

describe('LocalImds token flow', () => {
  it('issues a token only with a valid TTL header, on PUT', async () => {
    expect((await token(INSTANCE, null)).status).toBe(400);
    expect((await token(INSTANCE, '0')).status).toBe(400);
    expect((await token(INSTANCE, '21601')).status).toBe(400);
    expect((await fetch(`${imds.endpointFor(INSTANCE)}/latest/api/token`)).status).toBe(405);
    const issued = await token();
    expect(issued.status).toBe(200);
    expect(issued.headers.get('x-aws-ec2-metadata-token-ttl-seconds')).toBe('300');
    expect((await issued.text()).length).toBeGreaterThan(20);
  });

  it('answers metadata only with a live token of the same instance', async () => {
    const valid = await (await token()).text();

    expect((await get('instance-id')).status).toBe(401);
    expect((await get('instance-id', 'forged')).status).toBe(401);
    const answer = await get('instance-id', valid);
    expect(answer.status).toBe(200);
    expect(await answer.text()).toBe(INSTANCE);
    expect(await (await get('placement/availability-zone', valid)).text()).toBe('local-1a');

    clock += 301_000;
    expect((await get('instance-id', valid)).status).toBe(401);
  });

  it('knows nothing of an unknown instance', async () => {
    expect((await token('i-localffffffff')).status).toBe(404);
  });
});

describe('LocalImds spot notice', () => {
  it('404s spot/instance-action until a notice is set, then returns it', async () => {
    const valid = await (await token()).text();
    const before = await get('spot/instance-action', valid);

    imds.notice(INSTANCE, { action: 'terminate', time: '2026-03-01T10:07:00Z' });
    const after = await get('spot/instance-action', valid);

    expect(before.status).toBe(404);
    expect(after.status).toBe(200);
    expect(await after.json()).toEqual({ action: 'terminate', time: '2026-03-01T10:07:00Z' });
    expect(await (await get('spot/termination-time', valid)).text()).toBe('2026-03-01T10:07:00Z');
  });

  it('serves the agent-style curl probe: exit 0 once a notice is set, non-zero before', async () => {
    const other = 'i-local0000beef';
    const probeImds = new LocalImds({ lookup: (id) => (id === other ? { availabilityZone: 'local-1a' } : undefined) });
    await probeImds.start();
    try {
      const probe = [
        'token=$(curl -sf -m 2 -X PUT "$IMDS/latest/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 300") || exit 2',
        'curl -sf -m 2 -o /dev/null -H "X-aws-ec2-metadata-token: $token" "$IMDS/latest/meta-data/spot/instance-action"',
      ].join('\n');
      const run = () =>
        promisify(execFile)('bash', ['-c', probe], { env: { ...process.env, IMDS: probeImds.endpointFor(other) } }).then(
          () => 0,
          (error: unknown) => (error instanceof Error && 'code' in error && typeof error.code === 'number' ? error.code : -1),
        );

      const quiet = await run();
      probeImds.notice(other, { action: 'terminate', time: '2026-03-01T10:07:00Z' });
      const noticed = await run();

      expect(quiet).toBe(22);
      expect(noticed).toBe(0);
    } finally {
      await probeImds.close();
    }
  });
});
