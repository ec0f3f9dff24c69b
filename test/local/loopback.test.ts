import { Agent, createServer, request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { listenLoopback } from '../../local/loopback';

/** Every loopback server of the local backend (API, secrets, task callbacks, dynalite) starts and stops through listenLoopback. */
describe('listenLoopback', () => {
  const hello = () => createServer((_req, res) => res.end('hello'));

  it('listens on a free port of 127.0.0.1 and answers there', async () => {
    const listener = await listenLoopback(hello());
    try {
      expect(listener.url).toBe(`http://127.0.0.1:${listener.port}`);
      expect(listener.port).toBeGreaterThan(0);
      expect(await (await fetch(listener.url)).text()).toBe('hello');
    } finally {
      await listener.close();
    }
  });

  it('closes at once while a client keeps its connection alive', async () => {
    const listener = await listenLoopback(hello());
    const agent = new Agent({ keepAlive: true, keepAliveMsecs: 60_000 });
    await new Promise<void>((resolve, reject) => {
      request(listener.url, { agent }, (res) => {
        res.resume();
        res.on('end', resolve);
      })
        .on('error', reject)
        .end();
    });
    const started = Date.now();
    await listener.close();
    expect(Date.now() - started).toBeLessThan(1000);
    await expect(fetch(listener.url)).rejects.toThrow();
    agent.destroy();
  });

  it('rejects when the port is taken, and the server can listen elsewhere after', async () => {
    const first = await listenLoopback(hello());
    const server = hello();
    try {
      await expect(listenLoopback(server, first.port)).rejects.toMatchObject({ code: 'EADDRINUSE' });
      const second = await listenLoopback(server);
      expect(second.port).not.toBe(first.port);
      await second.close();
    } finally {
      await first.close();
    }
  });
});
