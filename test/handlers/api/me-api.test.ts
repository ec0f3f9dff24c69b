import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createHandler } from '../../../functions/api/get-me';
import { ALICE, ALICE_OTHER_SESSION, ALICE_OWNER, BOB, BOB_OWNER, apiEvent, lambdaContext } from '../../support/api-events';

/**
 * GET /me answers with the owner every other route records for the signer (`callerIdentity`),
 * that owner's key and the secrets path its runs may name. The key is computed here
 * independently of the code (sha256 of the owner ARN, 32 hex characters, docs/deploy.md).
 */

const PREFIX = '/runctl/test/secrets';
const keyOf = (owner: string) => createHash('sha256').update(owner).digest('hex').slice(0, 32);

async function me(caller: string, deps: { secretsPrefix?: string } = { secretsPrefix: PREFIX }) {
  const result = await createHandler(() => deps)(apiEvent({ method: 'GET', path: '/me', routeKey: 'GET /me', caller }), lambdaContext());
  return { status: result.statusCode, body: JSON.parse(result.body ?? '{}') as Record<string, unknown> };
}

describe('GET /me', () => {
  it("answers an assumed-role session with its role as owner, the role's key and secrets path", async () => {
    const { status, body } = await me(ALICE);
    expect(status).toBe(200);
    expect(body).toEqual({
      principal: ALICE,
      owner: ALICE_OWNER,
      ownerKey: keyOf(ALICE_OWNER),
      secretsPrefix: `${PREFIX}/${keyOf(ALICE_OWNER)}/`,
    });
  });

  it('gives two identities different owners, keys and paths', async () => {
    const [alice, bob] = [(await me(ALICE)).body, (await me(BOB)).body];
    expect(bob.owner).toBe(BOB_OWNER);
    expect(bob.ownerKey).toBe(keyOf(BOB_OWNER));
    expect(bob.ownerKey).not.toBe(alice.ownerKey);
    expect(bob.secretsPrefix).not.toBe(alice.secretsPrefix);
  });

  it('gives another session of the same role the same owner and key: the session name proves nothing', async () => {
    const [alice, other] = [(await me(ALICE)).body, (await me(ALICE_OTHER_SESSION)).body];
    expect(other.principal).toBe(ALICE_OTHER_SESSION);
    expect({ owner: other.owner, ownerKey: other.ownerKey, secretsPrefix: other.secretsPrefix }).toEqual({
      owner: alice.owner,
      ownerKey: alice.ownerKey,
      secretsPrefix: alice.secretsPrefix,
    });
  });

  it('keeps an IAM user and each IAM Identity Center user apart, as the owner rules say', async () => {
    const user = 'arn:aws:iam::123456789012:user/carol';
    const sso = (name: string) => `arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_MLEngineers_0123456789abcdef/${name}`;
    expect((await me(user)).body).toMatchObject({ owner: user, ownerKey: keyOf(user) });
    const [dana, erin] = [(await me(sso('dana@example.com'))).body, (await me(sso('erin@example.com'))).body];
    expect(dana.owner).toBe(sso('dana@example.com'));
    expect(dana.ownerKey).not.toBe(erin.ownerKey);
  });

  it('says null for the secrets path on a stack without a secrets prefix, and strips a trailing "/" from one', async () => {
    expect((await me(ALICE, {})).body.secretsPrefix).toBeNull();
    expect((await me(ALICE, { secretsPrefix: `${PREFIX}/` })).body.secretsPrefix).toBe(`${PREFIX}/${keyOf(ALICE_OWNER)}/`);
  });

  it('refuses a request that carries no IAM identity, without leaking why', async () => {
    const event = apiEvent({ method: 'GET', path: '/me', routeKey: 'GET /me' });
    const unsigned = { ...event, requestContext: { ...event.requestContext, authorizer: {} } };
    // @ts-expect-error -- an event as a route deployed without the IAM authorizer would deliver it
    const result = await createHandler(() => ({ secretsPrefix: PREFIX }))(unsigned, lambdaContext());
    expect(result.statusCode).toBe(500);
    expect(result.body).not.toContain('AWS_IAM');
  });
});
