/**
 * A node of a multi-node run as the agent sees it (docs/multi-node.md): the block of the agent
 * config a launch handler builds for each node, and the layouts agent.sh follows — the torchrun
 * argv, the RUNCTL_NODE_* environment, the per-node log key. agent.sh builds the same argv and
 * environment in its Python helper; the agent tests compare the two.
 */
import type { z } from 'zod';
import { buildTrainingArgv, type TrainingCommandSpec } from '../domain/hyperparameters';
import { DEFAULT_MASTER_PORT, nodeCount } from '../domain/multi-node';
import type { RunSpec } from '../domain/run-spec';
import { AgentIdSchema, type AgentNodeSchema } from './agent-config';

export type AgentNode = z.output<typeof AgentNodeSchema>;
export type AgentNodeInput = z.input<typeof AgentNodeSchema>;

/** Where one node of an attempt runs: its rank and the address of rank 0's instance. */
export interface NodePlacement {
  rank: number;
  /** Rank 0's private IP address (on the local backend, 127.0.0.1). */
  masterAddr: string;
  /** The attempt's rendezvous id, the same on every node (`rendezvousIdFor`). */
  rendezvousId: string;
}

/**
 * The rendezvous id of one attempt: new for every attempt, so a node of an earlier attempt that
 * is still alive can never join the new rendezvous, and the same on every node of the attempt.
 */
export function rendezvousIdFor(runId: string, attempt: number): string {
  if (!Number.isInteger(attempt) || attempt < 1) throw new RangeError(`attempt must be a positive integer, got ${attempt}`);
  return AgentIdSchema.parse(`${runId}-a${attempt}`);
}

/** The `node` block of the agent config for one node of a spec's attempt. */
export function agentNodeConfig(spec: Pick<RunSpec, 'nodes' | 'distributed' | 'checkpoint'>, placement: NodePlacement): AgentNodeInput {
  const count = nodeCount(spec);
  if (!Number.isInteger(placement.rank) || placement.rank < 0 || placement.rank >= count) {
    throw new RangeError(`rank must be an integer from 0 to ${count - 1}, got ${placement.rank}`);
  }
  return {
    rank: placement.rank,
    count,
    masterAddr: placement.masterAddr,
    masterPort: spec.distributed?.port ?? DEFAULT_MASTER_PORT,
    rendezvousId: placement.rendezvousId,
    distributed: spec.distributed === undefined ? undefined : { launcher: spec.distributed.launcher, nprocPerNode: spec.distributed.nprocPerNode },
    partsWaitSeconds: spec.checkpoint.graceSeconds,
  };
}

/**
 * The agent config's `argv` for a spec: the training command, or with `distributed` the script
 * and its arguments that torchrun runs with its own Python (the spec refuses an interpreter or
 * a code.command beside `distributed`).
 */
export function agentArgvFor(spec: TrainingCommandSpec & Pick<RunSpec, 'distributed'>): string[] {
  const argv = buildTrainingArgv(spec);
  return spec.distributed === undefined ? argv : argv.slice(1);
}

/**
 * `torchrun --nnodes N --node-rank r --master-addr A --master-port P --nproc-per-node K
 * --rdzv-id ID <script> <args…>`: torchrun's static rendezvous (its default backend), rank 0's
 * node hosting the store at A:P. One element per argument; the agent execs it without a shell.
 */
export function torchrunArgv(node: Pick<AgentNode, 'rank' | 'count' | 'masterAddr' | 'masterPort' | 'rendezvousId' | 'distributed'>, scriptArgv: readonly string[]): string[] {
  if (node.distributed === undefined) throw new RangeError('the node has no distributed launcher');
  const [script] = scriptArgv;
  if (script === undefined || script.startsWith('-')) throw new RangeError(`torchrun needs a script to run, got ${JSON.stringify(script)}`);
  return [
    'torchrun',
    '--nnodes', String(node.count),
    '--node-rank', String(node.rank),
    '--master-addr', node.masterAddr,
    '--master-port', String(node.masterPort),
    '--nproc-per-node', String(node.distributed.nprocPerNode),
    '--rdzv-id', node.rendezvousId,
    ...scriptArgv,
  ];
}

/** The environment every node's training process gets besides the single-node contract (docs/agent.md). */
export function nodeEnvironment(node: Pick<AgentNode, 'rank' | 'count' | 'masterAddr' | 'masterPort'>): Record<string, string> {
  return {
    RUNCTL_NODE_RANK: String(node.rank),
    RUNCTL_NUM_NODES: String(node.count),
    RUNCTL_MASTER_ADDR: node.masterAddr,
    RUNCTL_MASTER_PORT: String(node.masterPort),
  };
}

/** The key of a node's attempt log: rank 0 keeps the single-node key, so its readers need no change. */
export function nodeLogKey(runPrefix: string, attempt: number, rank: number): string {
  return rank === 0 ? `${runPrefix}/logs/attempt-${attempt}.log` : `${runPrefix}/logs/attempt-${attempt}-node-${rank}.log`;
}
