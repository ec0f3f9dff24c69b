import { createServer, connect, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { LATENCY_PROFILES, latencyModel, readinessPollMs, scaleBandwidth, ThrottledLink } from '../../local/latency';

/** A TCP server that answers every connection with `size` bytes and counts what it received. */
async function byteServer(size: number): Promise<{ server: Server; url: string; received: () => number }> {
  let received = 0;
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('data', (chunk: Buffer) => (received += chunk.length));
    socket.on('end', () => socket.end(Buffer.alloc(size, 7)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('not listening');
  return { server, url: `http://127.0.0.1:${address.port}`, received: () => received };
}

/** Sends `upload` bytes through `url`, half-closes, and resolves with the bytes read back. */
function exchange(url: string, upload: number): Promise<number> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    let got = 0;
    const socket = connect(Number(target.port), target.hostname, () => socket.end(Buffer.alloc(upload, 1)));
    socket.on('data', (chunk: Buffer) => (got += chunk.length));
    socket.on('end', () => resolve(got));
    socket.on('error', reject);
  });
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('latency model', () => {
  it('keeps the instant default and lets a profile be overridden field by field', () => {
    expect(latencyModel()).toEqual(LATENCY_PROFILES.instant);
    expect(latencyModel('aws', { launchMs: 1000 })).toEqual({ ...LATENCY_PROFILES.aws, launchMs: 1000 });
    expect(scaleBandwidth(LATENCY_PROFILES.aws, 100).s3UploadBytesPerSecond).toBe(1_000_000);
    expect(scaleBandwidth(LATENCY_PROFILES.instant, 100).s3UploadBytesPerSecond).toBeUndefined();
  });

  it('spaces the readiness checks so that they span twice the model\'s boot', () => {
    // At least a minute in all: a loaded machine can take seconds to start a local instance.
    expect(readinessPollMs(LATENCY_PROFILES.instant, 40)).toBe(1500);
    const aws = readinessPollMs(LATENCY_PROFILES.aws, 40);
    expect(aws * 40).toBeGreaterThanOrEqual(2 * (LATENCY_PROFILES.aws.launchMs + LATENCY_PROFILES.aws.ssmOnlineMs));
    // An explicit boot time (the backend's bootMs) stands in for the model's launch.
    expect(readinessPollMs(LATENCY_PROFILES.aws, 40, 5000) * 40).toBeGreaterThanOrEqual(2 * (5000 + LATENCY_PROFILES.aws.ssmOnlineMs));
    expect(readinessPollMs(LATENCY_PROFILES.aws, 40, 5000)).toBeLessThan(aws);
  });

  it('moves every byte both ways through a throttled link, no faster than its rates', async () => {
    const upstream = await byteServer(200_000);
    cleanups.push(() => new Promise((resolve) => upstream.server.close(() => resolve())));
    // 200 kB down at 1 MB/s and 100 kB up at 1 MB/s: at least 0.3 s in all.
    const link = await ThrottledLink.open(upstream.url, latencyModel('instant', { s3DownloadBytesPerSecond: 1e6, s3UploadBytesPerSecond: 1e6 }));
    cleanups.push(() => link.close());

    const started = Date.now();
    const got = await exchange(link.url, 100_000);
    const elapsed = Date.now() - started;

    expect(got).toBe(200_000);
    expect(upstream.received()).toBe(100_000);
    expect(elapsed).toBeGreaterThanOrEqual(280);
  });
});
