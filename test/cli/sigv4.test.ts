import { spawnSync } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import type { SourceData } from '@smithy/types';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import { ApiClient } from '../../cli/api-client';
import { signRequest } from '../../cli/sigv4';

const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const signingDate = new Date('2026-11-25T06:00:00Z');
const url = new URL('https://abc123.execute-api.eu-west-1.amazonaws.com/runs/r-0123/logs?tail=50&attempt=2&q=a%20b');
const body = JSON.stringify({ force: true });
const headers = { accept: 'application/json', 'content-type': 'application/json', 'user-agent': 'runctl-cli/0.1.0' };

function bytesOf(data: SourceData): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/** The test's own SHA-256 for the SDK signer, independent of the CLI's. */
class TestSha256 {
  private readonly parts: Buffer[] = [];
  private readonly secret?: Buffer;
  constructor(secret?: SourceData) {
    this.secret = secret === undefined ? undefined : bytesOf(secret);
  }
  update(data: SourceData): void {
    this.parts.push(bytesOf(data));
  }
  async digest(): Promise<Uint8Array> {
    const all = Buffer.concat(this.parts);
    return this.secret === undefined ? createHash('sha256').update(all).digest() : createHmac('sha256', this.secret).update(all).digest();
  }
  reset(): void {
    this.parts.length = 0;
  }
}

/** botocore's SigV4Auth (the AWS CLI's signer), at a fixed time, over the same headers. */
function signWithBotocore(signedHeaders: Record<string, string>): string {
  const script = `
import json, sys, datetime
from unittest import mock
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
spec = json.load(sys.stdin)
request = AWSRequest(method=spec['method'], url=spec['url'], data=spec['body'], headers=spec['headers'])
fixed = datetime.datetime(2026, 11, 25, 6, 0, 0)
with mock.patch('botocore.auth.get_current_datetime', return_value=fixed):
    SigV4Auth(Credentials(spec['key'], spec['secret']), 'execute-api', 'eu-west-1').add_auth(request)
print(request.headers['Authorization'])
`;
  const unsigned = Object.fromEntries(Object.entries(signedHeaders).filter(([k]) => !['authorization', 'x-amz-date', 'host'].includes(k)));
  const result = spawnSync('python3', ['-c', script], {
    input: JSON.stringify({ method: 'POST', url: url.toString(), body, headers: unsigned, key: credentials.accessKeyId, secret: credentials.secretAccessKey }),
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`botocore signing failed: ${result.stderr}`);
  return result.stdout.trim();
}

describe('SigV4 signing of API requests', () => {
  it('gives the same Authorization header as the AWS SDK\'s SignatureV4 signing the same request', async () => {
    const mine = await signRequest({ method: 'POST', url, headers, body }, { credentials, region: 'eu-west-1', signingDate });

    const sdk = await new SignatureV4({ credentials, region: 'eu-west-1', service: 'execute-api', sha256: TestSha256 }).sign(
      {
        method: 'POST',
        protocol: 'https:',
        hostname: url.hostname,
        path: '/runs/r-0123/logs',
        query: { tail: '50', attempt: '2', q: 'a b' },
        headers: { ...headers, host: url.hostname },
        body,
      },
      { signingDate },
    );

    expect(mine.authorization).toBe(sdk.headers.authorization);
    expect(mine.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20261125\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=accept;content-type;host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}$/,
    );
    expect(mine['x-amz-date']).toBe('20261125T060000Z');
  });

  it('agrees with botocore, the AWS CLI\'s independent signer', async () => {
    const mine = await signRequest({ method: 'POST', url, headers, body }, { credentials, region: 'eu-west-1', signingDate });

    expect(mine.authorization).toBe(signWithBotocore(mine));
  });

  it('signs a session token and changes the signature when the body changes', async () => {
    const withToken = await signRequest(
      { method: 'POST', url, headers, body },
      { credentials: { ...credentials, sessionToken: 'FQoGZXIvYXdzEXAMPLE' }, region: 'eu-west-1', signingDate },
    );
    const otherBody = await signRequest({ method: 'POST', url, headers, body: '{"force":false}' }, { credentials, region: 'eu-west-1', signingDate });
    const plain = await signRequest({ method: 'POST', url, headers, body }, { credentials, region: 'eu-west-1', signingDate });

    expect(withToken['x-amz-security-token']).toBe('FQoGZXIvYXdzEXAMPLE');
    expect(withToken.authorization).toContain('x-amz-security-token');
    expect(otherBody.authorization).not.toBe(plain.authorization);
  });

  it('sends over the wire exactly what it signed: the server re-derives the same signature', async () => {
    const seen: Array<{ method: string; url: string; headers: IncomingHttpHeaders; body: string }> = [];
    const server = createServer((request, response) => {
      let text = '';
      request.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      request.on('end', () => {
        seen.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, body: text });
        const run = { runId: 'r-1', status: 'CANCELLING', createdAt: 'x', updatedAt: 'x', costUsd: 0, spec: { name: 'n' }, attempts: [] };
        response.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify(run));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    // A loopback endpoint marked as deployed, so the request is signed as for API Gateway.
    const client = new ApiClient({ endpoint: new URL(`http://127.0.0.1:${port}`), local: false, region: 'us-east-1' }, async () => credentials);

    await client.cancel('r-1', true);
    server.close();

    const request = seen[0];
    expect(request).toBeDefined();
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(request?.headers ?? {})) if (typeof value === 'string') headers[name] = value;
    const amzDate = headers['x-amz-date'] ?? '';
    const date = new Date(`${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`);
    const signedNames = /SignedHeaders=([^,]+)/.exec(headers.authorization ?? '')?.[1]?.split(';') ?? [];
    const resigned = await new SignatureV4({ credentials, region: 'us-east-1', service: 'execute-api', sha256: TestSha256 }).sign(
      {
        method: request?.method ?? '',
        protocol: 'http:',
        hostname: '127.0.0.1',
        port,
        path: request?.url ?? '',
        query: {},
        headers: Object.fromEntries(signedNames.map((name) => [name, headers[name] ?? ''])),
        body: request?.body,
      },
      { signingDate: date },
    );
    expect(signedNames).toEqual(['accept', 'content-type', 'host', 'x-amz-content-sha256', 'x-amz-date']);
    expect(request?.body).toBe('{"force":true}');
    expect(resigned.headers.authorization).toBe(headers.authorization);
  });
});
