import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpApi, type RunningHttpApi } from '../../local/http-api';
import type { ApiEvent } from '../../shared/http/responses';
import { LOCAL_OWNER, startLocalStack, type LocalStack } from '../cli/local-stack';

const spec = {
  name: 'mnist',
  code: { bundle: 's3://runctl-local-runs/bundles/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.tar.gz', entrypoint: 'train.py' },
  instance: { types: ['g5.xlarge'] },
};

interface Body {
  [key: string]: any;
}
/** JSON.parse is typed `any`; the tests read fields by name. */
const jsonOf = async (response: Response): Promise<Body> => JSON.parse(await response.text());

describe('local HTTP API', () => {
  let stack: LocalStack;
  let other: RunningHttpApi;
  let echo: RunningHttpApi;
  const seen: ApiEvent[] = [];

  beforeAll(async () => {
    stack = await startLocalStack();
    other = await startHttpApi({ deps: stack.deps, identity: 'arn:aws:iam::000000000000:user/someone-else' });
    echo = await startHttpApi({
      deps: stack.deps,
      identity: { userArn: 'arn:aws:sts::123456789012:assumed-role/ml/alice', accessKey: 'ASIAEXAMPLE' },
      extraRoutes: {
        'PUT /echo/{name}/{version}': async (event) => {
          seen.push(event);
          return { statusCode: 207, headers: { 'x-route': event.routeKey }, body: event.body ?? '' };
        },
      },
    });
  });
  afterAll(async () => {
    await Promise.all([other.close(), echo.close()]);
    await stack.stop();
  });

  it('serves the real handlers: a run submitted over HTTP is the caller\'s and readable back', async () => {
    const created = await fetch(`${stack.api.url}/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ clientToken: 'http-1', spec }),
    });
    const run = await jsonOf(created);
    const read = await fetch(`${stack.api.url}/runs/${run.runId}`);
    const listed = await jsonOf(await fetch(`${stack.api.url}/runs?limit=5`));
    const foreign = await fetch(`${other.url}/runs/${run.runId}`);

    expect(created.status).toBe(201);
    expect(created.headers.get('content-type')).toBe('application/json');
    expect(run).toMatchObject({ owner: LOCAL_OWNER, status: 'PENDING' });
    expect(read.status).toBe(200);
    expect((await jsonOf(read)).runId).toBe(run.runId);
    expect(listed.runs.map((r: { runId: string }) => r.runId)).toContain(run.runId);
    expect(foreign.status).toBe(404);
  });

  it('maps bad input to the handlers\' 400s and unknown routes to API Gateway\'s 404', async () => {
    const malformed = await fetch(`${stack.api.url}/runs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"spec":' });
    const badQuery = await fetch(`${stack.api.url}/runs?limit=1000`);
    const unknown = await fetch(`${stack.api.url}/nothing-here`);
    const wrongMethod = await fetch(`${stack.api.url}/runs/r-1`, { method: 'DELETE' });
    const badEscape = await fetch(`${stack.api.url}/runs/%E0%A4%A`);

    expect(malformed.status).toBe(400);
    expect((await jsonOf(malformed)).message).toMatch(/not valid JSON/);
    expect(badQuery.status).toBe(400);
    expect((await jsonOf(badQuery)).issues).toEqual([expect.objectContaining({ path: 'limit' })]);
    expect(unknown.status).toBe(404);
    expect(await jsonOf(unknown)).toEqual({ message: 'Not Found' });
    expect(wrongMethod.status).toBe(404);
    expect(badEscape.status).toBe(400);
    expect((await jsonOf(badEscape)).message).toMatch(/malformed percent-escape/);
  });

  it('builds an API Gateway v2 event with the IAM authorizer context, path and query parameters', async () => {
    const response = await fetch(`${echo.url}/echo/a%20b/7?x=1&x=2&y=z`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', 'x-custom': 'yes' },
      body: '{"hello":"world"}',
    });

    expect(response.status).toBe(207);
    expect(response.headers.get('x-route')).toBe('PUT /echo/{name}/{version}');
    expect(await response.text()).toBe('{"hello":"world"}');
    const event = seen[0];
    expect(event).toMatchObject({
      version: '2.0',
      routeKey: 'PUT /echo/{name}/{version}',
      rawPath: '/echo/a%20b/7',
      rawQueryString: 'x=1&x=2&y=z',
      pathParameters: { name: 'a b', version: '7' },
      queryStringParameters: { x: '1,2', y: 'z' },
      body: '{"hello":"world"}',
      isBase64Encoded: false,
      headers: expect.objectContaining({ 'x-custom': 'yes', 'content-type': 'application/json' }),
      requestContext: {
        accountId: '123456789012',
        routeKey: 'PUT /echo/{name}/{version}',
        stage: '$default',
        http: expect.objectContaining({ method: 'PUT', path: '/echo/a%20b/7' }),
        authorizer: { iam: expect.objectContaining({ userArn: 'arn:aws:sts::123456789012:assumed-role/ml/alice', accessKey: 'ASIAEXAMPLE', accountId: '123456789012' }) },
      },
    });
  });
});
