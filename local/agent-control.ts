import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';
import { EXECUTE_API, NodeSha256 } from '../cli/sigv4';
import { createHandler as agentControl } from '../functions/api/agent-control';
import type { PolicyDocument } from '../shared/domain/run-access';
import type { RunCredentialSet, RunCredentials } from '../shared/ports/run-credentials';
import type { AgentControlDeps } from '../shared/usecases/agent-control';
import { startHttpApi, type LocalAuthenticator, type RunningHttpApi } from './http-api';
import { LOCAL_INSTANCE_ROLE, type LocalImds } from './imds';

/**
 * The agent routes on the local backend: the real handler of POST /agent/{action}, behind a
 * SigV4 check against the instance role credentials the local metadata service handed out. A
 * request signed with an instance's key pair is that instance's role session
 * (`AROALOCALTRAINING:<instance id>`), exactly the identity API Gateway's IAM authorizer gives
 * the handler on AWS; anything else is refused with 403 before the handler runs.
 */

const AUTHORIZATION = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;

/** Verifies the request's SigV4 signature with the key of the instance that holds its access key. */
export function instanceSignatureAuthenticator(imds: LocalImds): LocalAuthenticator {
  return async (request: IncomingMessage, url: URL, body: Buffer) => {
    const match = AUTHORIZATION.exec(String(request.headers.authorization ?? ''));
    if (match === null) return undefined;
    const [, accessKeyId = '', , region = '', service = '', signedHeaders = '', signature = ''] = match;
    const holder = imds.identify(accessKeyId);
    const amzDate = String(request.headers['x-amz-date'] ?? '');
    const dated = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
    if (holder === undefined || service !== EXECUTE_API || dated === null) return undefined;
    const signingDate = new Date(`${dated[1]}-${dated[2]}-${dated[3]}T${dated[4]}:${dated[5]}:${dated[6]}Z`);
    // AWS refuses signatures more than 15 minutes off.
    if (Math.abs(Date.now() - signingDate.getTime()) > 15 * 60_000) return undefined;
    if (request.headers['x-amz-security-token'] !== holder.sessionToken) return undefined;
    const headers: Record<string, string> = {};
    for (const name of signedHeaders.split(';')) {
      const value = request.headers[name];
      if (value === undefined) return undefined;
      headers[name] = Array.isArray(value) ? value.join(',') : value;
    }
    const signer = new SignatureV4({
      credentials: { accessKeyId, secretAccessKey: holder.secretAccessKey, sessionToken: holder.sessionToken },
      region,
      service: EXECUTE_API,
      sha256: NodeSha256,
    });
    const query: Record<string, string> = {};
    for (const [name, value] of url.searchParams) query[name] = value;
    const signed = await signer.sign(
      { method: request.method ?? 'GET', protocol: 'http:', hostname: url.hostname, path: url.pathname, query, headers, body },
      { signingDate },
    );
    const expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization ?? ''))?.[1] ?? '';
    if (expected.length !== signature.length || !timingSafeEqual(Buffer.from(expected), Buffer.from(signature))) return undefined;
    return {
      userArn: `arn:aws:sts::000000000000:assumed-role/${LOCAL_INSTANCE_ROLE.name}/${holder.instanceId}`,
      userId: `${LOCAL_INSTANCE_ROLE.roleId}:${holder.instanceId}`,
      accessKey: accessKeyId,
    };
  };
}

/**
 * Run credentials on the local backend: s3rver and dynalite check no IAM policy, so every run
 * gets the emulators' key pair, valid for an hour like an AssumeRole session. The session
 * policy the handler built is kept, so a test can see what a run would have been allowed.
 */
export class LocalRunCredentials implements RunCredentials {
  readonly issued: Array<{ sessionName: string; policy: PolicyDocument }> = [];

  /** `keys` may be swapped (a test of refused credentials). */
  constructor(public keys: { accessKeyId: string; secretAccessKey: string }) {}

  async issue(sessionName: string, policy: PolicyDocument): Promise<RunCredentialSet> {
    this.issued.push({ sessionName, policy });
    return { ...this.keys, expiration: new Date(Date.now() + 3600_000).toISOString() };
  }
}

/** Starts the agent routes on a loopback port. */
export function startAgentControlApi(options: { imds: LocalImds; deps: () => AgentControlDeps; port?: number }): Promise<RunningHttpApi> {
  return startHttpApi({
    port: options.port,
    identity: instanceSignatureAuthenticator(options.imds),
    extraRoutes: { 'POST /agent/{action}': agentControl(options.deps) },
  });
}
