import { describe, expect, it } from 'vitest';
import { allowedApiCall, refusal } from '../../ui/server/request-guard';

const PORT = 4568;
const OWN = `http://127.0.0.1:${PORT}`;

describe('the dashboard server refuses what does not come from its own page', () => {
  it.each([
    ['the page itself', { host: `127.0.0.1:${PORT}` }, false, 'GET'],
    ['localhost', { host: `localhost:${PORT}`, origin: `http://localhost:${PORT}` }, true, 'GET'],
    ['a typed URL', { host: `127.0.0.1:${PORT}`, 'sec-fetch-site': 'none' }, true, 'GET'],
    ['a same-origin fetch', { host: `127.0.0.1:${PORT}`, origin: OWN, 'sec-fetch-site': 'same-origin' }, true, 'GET'],
    ['a same-origin cancel', { host: `127.0.0.1:${PORT}`, origin: OWN, 'sec-fetch-site': 'same-origin' }, true, 'POST'],
  ])('serves %s', (_, headers, api, method) => {
    expect(refusal(headers, PORT, api, method)).toBeUndefined();
  });

  it.each([
    ['no Host', {}, false, 'GET', 'Host ""'],
    ['a rebound host name', { host: `attacker.example:${PORT}` }, false, 'GET', 'Host "attacker.example:4568"'],
    ['another port of 127.0.0.1', { host: '127.0.0.1:80' }, true, 'GET', 'Host "127.0.0.1:80"'],
    ['a foreign Origin', { host: `127.0.0.1:${PORT}`, origin: 'https://evil.example' }, true, 'GET', 'requests from https://evil.example'],
    ['an opaque Origin', { host: `127.0.0.1:${PORT}`, origin: 'null' }, false, 'GET', 'requests from null'],
    ['a cross-site fetch without Origin', { host: `127.0.0.1:${PORT}`, 'sec-fetch-site': 'cross-site' }, true, 'GET', 'a cross-site request'],
    ['another local port (same-site)', { host: `127.0.0.1:${PORT}`, 'sec-fetch-site': 'same-site' }, true, 'GET', 'a same-site request'],
    ['a POST without Origin', { host: `127.0.0.1:${PORT}` }, true, 'POST', 'must come from the dashboard page'],
  ])('refuses %s', (_, headers, api, method, says) => {
    expect(refusal(headers, PORT, api, method)).toContain(says);
  });
});

describe('the dashboard passes on only the calls it makes', () => {
  it.each([
    ['GET', '/runs'],
    ['GET', '/runs/r-0123abcd'],
    ['GET', '/runs/r-0123abcd/logs'],
    ['GET', '/runs/r-0123abcd/metrics'],
    ['GET', '/runs/r-0123abcd/checkpoints'],
    ['GET', '/runs/r-0123abcd/outputs'],
    ['POST', '/runs/r-0123abcd/cancel'],
    ['GET', '/experiments'],
    ['GET', '/sweeps/s-1'],
    ['GET', '/models/resnet/3'],
  ])('%s %s', (method, path) => {
    expect(allowedApiCall(method, path)).toBe(true);
  });

  it.each([
    ['POST', '/runs'],
    ['POST', '/uploads'],
    ['DELETE', '/schedules/s-1'],
    ['GET', '/runs/..'],
    ['GET', '/runs/r-1/../../uploads'],
    ['GET', '/runs/r%2F1'],
    ['POST', '/runs/r-1/logs'],
    ['GET', '/volumes'],
  ])('not %s %s', (method, path) => {
    expect(allowedApiCall(method, path)).toBe(false);
  });
});
