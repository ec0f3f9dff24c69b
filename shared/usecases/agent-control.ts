import { z } from 'zod';
import { runSessionPolicy } from '../domain/run-access';
import type { RunRecord } from '../domain/run-record';
import { ConflictError, ForbiddenError, RunInvalidError } from '../errors';
import { logger } from '../logger';
import type { RunCredentialSet, RunCredentials, TaskCallbacks } from '../ports/run-credentials';
import { instanceGone, type Compute } from '../ports/compute';
import type { RunStore } from '../ports/run-store';
import { nodeVerdict, staleNodes, TRAINING_FAILED } from '../domain/node-outcome';
import type { NodeState } from '../domain/run-record';

/**
 * The agent routes (POST /agent/{action}): what a training instance may ask of the control
 * plane. API Gateway's IAM authorizer has checked the SigV4 signature; the caller's `userId`
 * is `<role id>:<session name>`, and EC2 names an instance-role session after the instance, so
 * a session of the training instance role *is* an instance. Each request names its run and
 * attempt, and is answered only when the record says that attempt runs on that instance.
 */

export interface AgentControlConfig {
  /** RoleId (AROA…) of the training instance role: only its sessions are instances. */
  instanceRoleId: string;
  partition: string;
  region: string;
  accountId: string;
  runsBucket: string;
  /** Parameter Store path of owners' secrets, e.g. `/runctl/dev/secrets`. */
  secretsPrefix: string;
  /**
   * How long a node of a multi-node attempt may go without a heartbeat before the other nodes'
   * beats stop being relayed for it (default 180 s: three of the agent's one-minute beats).
   */
  nodeHeartbeatWindowSeconds?: number;
}

export interface AgentControlDeps {
  store: Pick<RunStore, 'get' | 'updateAttempt' | 'updateNode'>;
  /** Read only when a node of a multi-node run reports its script failed: were its peers' instances lost? */
  instances: Pick<Compute, 'instanceStates'>;
  credentials: RunCredentials;
  tasks: TaskCallbacks;
  config: AgentControlConfig;
  clock?: () => Date;
}

export const AGENT_ACTIONS = ['credentials', 'heartbeat', 'success', 'failure'] as const;
export type AgentAction = (typeof AGENT_ACTIONS)[number];

const AgentRequestSchema = z.object({
  runId: z.string().regex(/^[A-Za-z0-9_-]{1,80}$/, 'a run id'),
  attempt: z.number().int().min(1),
  /** success: the task output (JSON text). */
  output: z.string().max(256 * 1024).optional(),
  /** failure: the ASL error name and its cause. */
  error: z.string().max(256).optional(),
  cause: z.string().max(32_768).optional(),
  /** heartbeat: how far the checkpoint upload after a warning is. */
  upload: z.object({ bytes: z.number().int().min(0), totalBytes: z.number().int().min(0) }).optional(),
});
export type AgentRequest = z.infer<typeof AgentRequestSchema>;

/** Parses a request body; a malformed one is a 400 naming the field. */
export function parseAgentRequest(body: unknown): AgentRequest {
  const parsed = AgentRequestSchema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => ({ path: issue.path.join('.') || '(body)', message: issue.message }));
  throw new RunInvalidError(`Invalid agent request: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`, issues);
}

/** The instance behind an IAM caller id, or ForbiddenError when the caller is not a training instance. */
export function callingInstance(userId: string, instanceRoleId: string): string {
  const separator = userId.indexOf(':');
  const roleId = separator < 0 ? userId : userId.slice(0, separator);
  const session = separator < 0 ? '' : userId.slice(separator + 1);
  if (roleId !== instanceRoleId || !/^i-[A-Za-z0-9-]{1,40}$/.test(session)) {
    throw new ForbiddenError('Only a runctl training instance may call the agent routes');
  }
  return session;
}

/** The record of the run the instance serves, or ForbiddenError (one answer for "no such run" and "not yours"). */
async function runOfInstance(request: AgentRequest, instanceId: string, deps: AgentControlDeps): Promise<RunRecord> {
  const record = await deps.store.get(request.runId);
  if (record === undefined || !servesAttempt(record, request.attempt, instanceId)) {
    throw new ForbiddenError(`Instance ${instanceId} does not run attempt ${request.attempt} of run ${request.runId}`);
  }
  return record;
}

/**
 * Whether the record says `instanceId` runs `attempt`: as that attempt, or as the replacement
 * launched on the previous attempt's spot warning (it prefetches the run's data before the run
 * adopts it), until that replacement is released.
 */
function servesAttempt(record: RunRecord, attempt: number, instanceId: string): boolean {
  if (record.attempts.some((a) => a.attempt === attempt && a.instanceId === instanceId)) return true;
  // A node of a multi-node attempt, until it is released.
  if (record.attempts.some((a) => a.attempt === attempt && a.nodes?.some((n) => n.instanceId === instanceId && n.releasedAt === undefined))) return true;
  const replacement = record.attempts.at(-1)?.replacement;
  return replacement?.attempt === attempt && replacement.instanceId === instanceId && replacement.releasedAt === undefined;
}

/** The run's own short-lived credentials, narrowed to the run by its session policy. */
export async function vendRunCredentials(request: AgentRequest, instanceId: string, deps: AgentControlDeps): Promise<RunCredentialSet> {
  const record = await runOfInstance(request, instanceId, deps);
  const { config } = deps;
  const policy = runSessionPolicy({
    partition: config.partition,
    region: config.region,
    accountId: config.accountId,
    runsBucket: config.runsBucket,
    runId: record.runId,
    codeBundle: record.spec.code.bundle,
    dataSources: record.spec.data.map((d) => d.source),
    owner: record.owner,
    secretsPrefix: config.secretsPrefix,
  });
  return deps.credentials.issue(`${record.runId}-${request.attempt}`, policy);
}

/**
 * Relays a heartbeat or outcome to the task that waits for this attempt, with the token stored
 * on the record. The token is read at every call, so a LaunchTraining retried after the agent
 * started (a new token) is answered just the same. ConflictError (409) when nothing waits.
 */
export async function relayCallback(
  action: Exclude<AgentAction, 'credentials'>,
  request: AgentRequest,
  instanceId: string,
  deps: AgentControlDeps,
): Promise<void> {
  const record = await runOfInstance(request, instanceId, deps);
  const token = record.taskTokenAttempt === request.attempt ? record.taskToken : undefined;
  if (token === undefined) throw new ConflictError(`No task waits for attempt ${request.attempt} of run ${request.runId}`);
  const nodes = record.attempts.find((a) => a.attempt === request.attempt)?.nodes;
  const node = nodes?.find((n) => n.instanceId === instanceId);
  if (nodes !== undefined && node !== undefined) {
    await relayNodeCallback(action, request, { record, nodes, node, token }, deps);
    return;
  }
  const accepted =
    action === 'heartbeat'
      ? await deps.tasks.heartbeatTask(token)
      : action === 'success'
        ? await deps.tasks.succeedTask(token, request.output ?? '{}')
        : await deps.tasks.failTask(token, request.error ?? 'States.TaskFailed', request.cause ?? '');
  if (!accepted) throw new ConflictError(`The task of attempt ${request.attempt} of run ${request.runId} has ended`);
  if (action === 'heartbeat') await recordUploadProgress(record, request, (deps.clock?.() ?? new Date()).toISOString(), deps);
}

/** How far the checkpoint upload after a warning is (runctl status shows it), until the checkpoint is complete. */
async function recordUploadProgress(record: RunRecord, request: AgentRequest, at: string, deps: AgentControlDeps): Promise<void> {
  const attempt = record.attempts.find((a) => a.attempt === request.attempt);
  if (request.upload === undefined || attempt?.checkpointCompletedAt !== undefined) return;
  await deps.store.updateAttempt(record.runId, request.attempt, { checkpointUpload: { ...request.upload, at } });
}

/**
 * A node of a multi-node attempt calls back (docs/multi-node.md, "Outcome"). The attempt has one
 * task, so the nodes' callbacks are combined here:
 * - heartbeat: recorded on the node; relayed only while every node still training has beaten
 *   within the heartbeat window, so one hung node stops the relay and the task's own
 *   HeartbeatSeconds catches it (the node is marked lost, and recovery replaces it);
 * - outcome: recorded on the node; the task is completed when the rule of `nodeVerdict` decides
 *   (a script failing on any node fails the run with that node's traceback; success needs rank 0
 *   to exit 0 and every node to succeed; rank 0 reports an interruption with the checkpoint).
 */
async function relayNodeCallback(
  action: Exclude<AgentAction, 'credentials'>,
  request: AgentRequest,
  at: { record: RunRecord; nodes: readonly NodeState[]; node: NodeState; token: string },
  deps: AgentControlDeps,
): Promise<void> {
  const { record, node, token } = at;
  const now = (deps.clock?.() ?? new Date()).toISOString();
  if (action === 'heartbeat') {
    await deps.store.updateNode(record.runId, request.attempt, node.rank, { lastHeartbeatAt: now });
    const attempt = record.attempts.find((a) => a.attempt === request.attempt);
    const nodes = at.nodes.map((n) => (n.rank === node.rank ? { ...n, lastHeartbeatAt: now } : n));
    const stale = staleNodes(nodes, { now, since: attempt?.trainingStartedAt ?? now, windowSeconds: deps.config.nodeHeartbeatWindowSeconds ?? DEFAULT_NODE_HEARTBEAT_WINDOW_SECONDS });
    if (stale.length > 0) {
      for (const hung of stale.filter((n) => n.lostAt === undefined)) {
        await deps.store.updateNode(record.runId, request.attempt, hung.rank, { lostAt: now });
      }
      // Answered like any beat (a 409 would tell this healthy agent to stop): the task's own
      // HeartbeatSeconds ends the attempt, and recovery replaces the silent node.
      logger.warn('a node stopped beating: the heartbeat is not relayed', { runId: record.runId, attempt: request.attempt, silent: stale.map((n) => n.rank) });
      return;
    }
    if (!(await deps.tasks.heartbeatTask(token))) throw new ConflictError(`The task of attempt ${request.attempt} of run ${request.runId} has ended`);
    // Rank 0 uploads the run's checkpoint: its progress is the attempt's.
    if (node.rank === 0) await recordUploadProgress(record, request, now, deps);
    return;
  }
  const outcome =
    action === 'success'
      ? { kind: 'SUCCEEDED' as const, at: now, output: request.output ?? '{}' }
      : { kind: 'FAILED' as const, at: now, error: request.error ?? 'States.TaskFailed', cause: withNode(request.cause ?? '', node.rank) };
  await deps.store.updateNode(record.runId, request.attempt, node.rank, { outcome });
  // Read again: another node may have reported meanwhile (each write touches its own node only).
  const latest = (await deps.store.get(record.runId)) ?? record;
  let nodes = (latest.attempts.find((a) => a.attempt === request.attempt)?.nodes ?? at.nodes).map((n) => (n.rank === node.rank ? { ...n, outcome } : n));
  if (outcome.kind === 'FAILED' && outcome.error === TRAINING_FAILED) nodes = await markGoneNodes(record.runId, request.attempt, nodes, now, deps);
  const verdict = nodeVerdict(nodes, { interrupted: latest.status === 'CHECKPOINTING' });
  if (verdict.kind === 'wait') return;
  // Two nodes deciding at once: the second finds the task closed, and its outcome is recorded all the same.
  if (verdict.kind === 'succeed') await deps.tasks.succeedTask(token, verdict.output);
  else await deps.tasks.failTask(token, verdict.error, verdict.cause);
}

/**
 * A script failing on one node is often its collectives failing because a peer's instance died
 * without a warning — before EC2's state-change event has marked that node lost. So a failure is
 * first checked against the nodes' instances (one DescribeInstances): a node whose instance is
 * gone is marked lost, and the outcome rule then ends the attempt `Instance.Lost` (recovery
 * replaces that node) instead of `FAILED_USER`. Only on this path: a run that trains costs no call.
 */
async function markGoneNodes(runId: string, attempt: number, nodes: NodeState[], now: string, deps: AgentControlDeps): Promise<NodeState[]> {
  if (nodes.some((n) => n.lostAt !== undefined || n.warnedAt !== undefined)) return nodes;
  const live = nodes.filter((n) => n.releasedAt === undefined);
  const states = await deps.instances.instanceStates(live.map((n) => n.instanceId));
  const gone = live.filter((n) => instanceGone(states.get(n.instanceId) ?? 'gone'));
  for (const node of gone) await deps.store.updateNode(runId, attempt, node.rank, { lostAt: now });
  if (gone.length > 0) logger.warn('a node failed while a peer\'s instance was gone: the peer is marked lost', { runId, attempt, gone: gone.map((n) => n.rank) });
  return nodes.map((n) => (gone.includes(n) ? { ...n, lostAt: now } : n));
}

/** Three of the agent's one-minute beats; the task's HeartbeatSeconds (300 s) then ends the wait. */
const DEFAULT_NODE_HEARTBEAT_WINDOW_SECONDS = 180;

/** The agent's cause JSON with the node's rank in it (describeCause names the node). */
function withNode(cause: string, rank: number): string {
  try {
    const parsed: unknown = JSON.parse(cause);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return JSON.stringify({ ...parsed, node: rank });
  } catch {
    // Not JSON: kept as it is, with the node in front.
  }
  return `node ${rank}: ${cause}`;
}
