import { ownerSecretsKey, ownerSecretsPath } from '../domain/run-access';

/**
 * `GET /me`: who the API takes the caller for. A run's `spec.secrets` must lie under
 * `<secrets prefix>/<owner key>/`, and the owner key is a digest of the owner ARN, which a
 * caller signing as an assumed-role session cannot read off its own credentials (the owner is
 * the role, not the session). This answers it from the same identity every other route uses.
 */

export interface WhoAmIDeps {
  /** The stack's secrets prefix (`custom.secretsPrefix`); undefined on a stack without one. */
  secretsPrefix?: string;
}

export interface CallerView {
  /** The ARN the request was signed with (an assumed-role session keeps its session name here). */
  principal: string;
  /** Who owns what the caller creates: an IAM user, a role (every session of it), or an SSO user's session. */
  owner: string;
  /** 32 hex characters of sha256(owner): the owner's directory under the secrets prefix. */
  ownerKey: string;
  /** `<prefix>/<owner key>/`, the path a run's secrets must lie under; null when the stack has no secrets prefix. */
  secretsPrefix: string | null;
}

/** The caller as the API sees it: its signing principal, the owner it stands for, and that owner's secrets path. */
export function describeCaller(caller: { principal: string; owner: string }, deps: WhoAmIDeps): CallerView {
  return {
    principal: caller.principal,
    owner: caller.owner,
    ownerKey: ownerSecretsKey(caller.owner),
    secretsPrefix: deps.secretsPrefix === undefined ? null : ownerSecretsPath(deps.secretsPrefix, caller.owner),
  };
}
