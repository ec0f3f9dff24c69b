import { describe, expect, it } from 'vitest';
import { agentControlWorld as world, INSTANCE_B, ROLE_ID } from '../../support/agent-control-world';

describe('POST /agent/credentials', () => {
  it("vends instance B the credentials of its own run, narrowed to run B's prefix", async () => {
    const { call, issued } = world();

    const response = await call('credentials', { runId: 'run-b', attempt: 1 });

    expect(response).toEqual({ status: 200, body: { accessKeyId: 'ASIARUN', secretAccessKey: 'secret', sessionToken: 'session', expiration: '2026-12-01T01:00:00.000Z' } });
    expect(issued[0]?.sessionName).toBe('run-b-1');
    const text = JSON.stringify(issued[0]?.policy);
    expect(text).toContain('arn:aws:s3:::runs-bucket/runs/run-b/*');
    expect(text).toContain('arn:aws:s3:::datasets-bucket/imagenet/*');
    expect(text).not.toContain('run-a');
  });

  it("refuses instance B the credentials of run A, or of an attempt it does not run", async () => {
    const { call, issued } = world();

    expect((await call('credentials', { runId: 'run-a', attempt: 1 })).status).toBe(403);
    expect((await call('credentials', { runId: 'run-b', attempt: 2 })).status).toBe(403);
    expect((await call('credentials', { runId: 'run-missing', attempt: 1 })).status).toBe(403);
    expect(issued).toEqual([]);
  });

  it('vends the replacement launched on the warning the next attempt\'s credentials, until it is released', async () => {
    const { call, issued, records } = world();
    const INSTANCE_C = 'i-0cccccccccccccccc';
    const runB = records.get('run-b');
    const first = runB?.attempts[0];
    if (runB === undefined || first === undefined) throw new Error('run-b has no attempt');
    const replacement = { attempt: 2, instanceId: INSTANCE_C, instanceType: 'g5.xlarge', availabilityZone: 'us-east-1a', spot: true, launchedAt: '2026-12-01T00:10:00.000Z' };
    runB.attempts[0] = { ...first, warnedAt: '2026-12-01T00:09:00.000Z', replacement };
    const asReplacement = (body: unknown) => call('credentials', body, `${ROLE_ID}:${INSTANCE_C}`);

    expect((await asReplacement({ runId: 'run-b', attempt: 2 })).status).toBe(200);
    expect(issued.at(-1)?.sessionName).toBe('run-b-2');
    // Not the attempt it does not run, and nothing once released.
    expect((await asReplacement({ runId: 'run-b', attempt: 1 })).status).toBe(403);
    runB.attempts[0] = { ...first, replacement: { ...replacement, releasedAt: '2026-12-01T00:11:00.000Z' } };
    expect((await asReplacement({ runId: 'run-b', attempt: 2 })).status).toBe(403);
    expect(issued).toHaveLength(1);
  });

  it('refuses callers that are not sessions of the training instance role', async () => {
    const { call, issued } = world();

    // A user (or any other role) naming instance B's session still is not the instance role.
    expect((await call('credentials', { runId: 'run-b', attempt: 1 }, `AROAUSERROLE00000001:${INSTANCE_B}`)).status).toBe(403);
    expect((await call('credentials', { runId: 'run-b', attempt: 1 }, 'AIDAIAMUSER000000001')).status).toBe(403);
    expect((await call('credentials', { runId: 'run-b', attempt: 1 }, `${ROLE_ID}:not-an-instance`)).status).toBe(403);
    expect(issued).toEqual([]);
  });

  it('answers a malformed request with a 400 naming the field, and an unknown action with a 404', async () => {
    const { call } = world();

    const bad = await call('credentials', { runId: 'run-b', attempt: 'one' });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('attempt');
    expect((await call('delete-everything', { runId: 'run-b', attempt: 1 })).status).toBe(404);
  });
});

describe('POST /agent/{heartbeat,success,failure}', () => {
  it("relays instance B's callbacks with run B's stored token; the token is never in a response", async () => {
    const { call, answered } = world();

    const heartbeat = await call('heartbeat', { runId: 'run-b', attempt: 1 });
    const success = await call('success', { runId: 'run-b', attempt: 1, output: '{"exitCode":0}' });
    const failure = await call('failure', { runId: 'run-b', attempt: 1, error: 'Spot.Interrupted', cause: '{}' });

    expect([heartbeat, success, failure].map((r) => r.status)).toEqual([200, 200, 200]);
    expect(answered).toEqual([
      ['heartbeat', 'TOKEN-B'],
      ['success', 'TOKEN-B', '{"exitCode":0}'],
      ['failure', 'TOKEN-B', 'Spot.Interrupted'],
    ]);
    expect(JSON.stringify([heartbeat, success, failure])).not.toContain('TOKEN');
  });

  it("cannot complete run A's task from instance B", async () => {
    const { call, answered } = world();

    expect((await call('success', { runId: 'run-a', attempt: 1, output: '{}' })).status).toBe(403);
    expect(answered).toEqual([]);
  });

  it('answers 409 when the task has ended or the token belongs to another attempt, so the agent stops', async () => {
    const { call, stale, records } = world();
    stale.add('TOKEN-B');

    expect((await call('heartbeat', { runId: 'run-b', attempt: 1 })).status).toBe(409);

    const current = records.get('run-b');
    if (current === undefined) throw new Error('no run-b');
    records.set('run-b', { ...current, taskTokenAttempt: 2 });
    expect((await call('heartbeat', { runId: 'run-b', attempt: 1 })).status).toBe(409);
  });

  it('uses the token stored now, so a retried LaunchTraining (a new token) is answered', async () => {
    const { call, answered, records } = world();
    const current = records.get('run-b');
    if (current === undefined) throw new Error('no run-b');
    records.set('run-b', { ...current, taskToken: 'TOKEN-B2' });

    expect((await call('heartbeat', { runId: 'run-b', attempt: 1 })).status).toBe(200);
    expect(answered).toEqual([['heartbeat', 'TOKEN-B2']]);
  });

  it("records the upload progress a heartbeat carries on the attempt, for the status; a bad one is a 400", async () => {
    const { call, records } = world();

    expect((await call('heartbeat', { runId: 'run-b', attempt: 1, upload: { bytes: 1200, totalBytes: 2000 } })).status).toBe(200);
    expect(records.get('run-b')?.attempts[0]?.checkpointUpload).toMatchObject({ bytes: 1200, totalBytes: 2000, at: expect.any(String) });
    const bad = await call('heartbeat', { runId: 'run-b', attempt: 1, upload: { bytes: -1, totalBytes: 'x' } });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('upload.bytes');
  });
});
