import { instanceFamily } from './instance-gpus';

/**
 * Multi-node runs (docs/multi-node.md): how many nodes a spec may ask for, and the limits runctl
 * knows of per instance type. Pure data and functions: the spec schema (run-spec.ts) reports
 * the issues, the agent config carries each node's rank.
 */

/**
 * The most nodes one run may hold. runctl's own bound, not EC2's: every node is one instance
 * the run's state machine provisions, watches and releases, and one more agent writing to the
 * run's prefix; 64 keeps a run's fan-out and its history inside the budgets of
 * shared/domain/history-budget.ts with room to spare.
 */
export const MAX_NODES = 64;

/** The most training processes torchrun may start on one node (the largest instances have 192 vCPUs). */
export const MAX_NPROC_PER_NODE = 192;

/** torchrun's own default rendezvous port. */
export const DEFAULT_MASTER_PORT = 29500;

/**
 * Instance families with a node limit runctl knows of, and why. EC2 itself publishes no cap on
 * how many instances of a type may train together: what stops a large N is the account's vCPU
 * quota for the family (per account and Region; it comes back at launch as a capacity error)
 * and the spot market. The families below are held to one node by runctl's own rule:
 * - burstable types (t2, t3, t3a, t4g) run on CPU credits; a node that spends its credits drops
 *   to its baseline (a fraction of each vCPU), and a synchronous collective waits for the
 *   slowest rank, so one drained node sets the pace of the whole run. EC2 does not place them
 *   in cluster placement groups either (EC2 User Guide, "Placement group rules and
 *   limitations"), so the nodes could not even be kept close.
 */
const NODE_LIMITS: Readonly<Record<string, { max: number; why: string }>> = Object.fromEntries(
  ['t2', 't3', 't3a', 't4g'].map((family) => [
    family,
    { max: 1, why: 'burstable types throttle to their baseline when their CPU credits run out, and EC2 does not place them in cluster placement groups' },
  ]),
);

/** The most nodes a run of this instance type may hold, and the reason when it is below MAX_NODES. */
export function nodeLimitOf(instanceType: string): { max: number; why?: string } {
  const known = NODE_LIMITS[instanceFamily(instanceType)];
  return known === undefined ? { max: MAX_NODES } : known;
}

/** The parts of a run spec the multi-node checks read. */
export interface MultiNodeSpec {
  nodes?: number;
  distributed?: { launcher: 'torchrun' };
  code: { entrypoint?: string; command?: readonly string[]; interpreter: string };
  instance: { types: readonly string[] };
  volume?: unknown;
}

/** One issue of a spec, at its path (as zod takes it). */
export interface MultiNodeIssue {
  path: (string | number)[];
  message: string;
}

/** The node count of a spec: `nodes` is optional so that single-node specs keep their hash. */
export function nodeCount(spec: Pick<MultiNodeSpec, 'nodes'>): number {
  return spec.nodes ?? 1;
}

/**
 * What cannot work in a multi-node spec, each at its field with what to fix: more nodes than an
 * instance type listed can hold, and a `distributed` launcher with a command it cannot start.
 * torchrun on one node, and `checkpoint.ranks: "all"` on one node, work and are allowed.
 */
export function multiNodeIssues(spec: MultiNodeSpec): MultiNodeIssue[] {
  const issues: MultiNodeIssue[] = [];
  const nodes = nodeCount(spec);
  if (nodes > 1) {
    // Every type listed is a fallback the run may land on: each must hold N nodes.
    for (const type of spec.instance.types) {
      const limit = nodeLimitOf(type);
      if (nodes > limit.max) {
        issues.push({
          path: ['nodes'],
          message: `is ${nodes}, but ${type} runs at most ${limit.max} node${limit.max === 1 ? '' : 's'} per run (${limit.why ?? 'runctl limit'}): use another instance type, such as c6i, m6i or g5, or nodes: ${limit.max}`,
        });
      }
    }
  }
  if (nodes > 1 && spec.volume !== undefined) {
    // An EBS volume attaches to one instance at a time, and a catalogued dataset volume is one volume.
    issues.push({
      path: ['volume'],
      message: `cannot be used with nodes: ${nodes}: a dataset volume attaches to one instance at a time; give the dataset as data (it is copied to every node) or use one node`,
    });
  }
  if (spec.distributed !== undefined) {
    if (spec.code.command !== undefined) {
      issues.push({
        path: ['code', 'command'],
        message: 'cannot be combined with distributed: torchrun starts code.entrypoint itself; set code.entrypoint, or drop distributed and start your launcher in code.command with the RUNCTL_NODE_RANK, RUNCTL_NUM_NODES, RUNCTL_MASTER_ADDR and RUNCTL_MASTER_PORT environment',
      });
    } else if (spec.code.interpreter !== 'python3') {
      issues.push({
        path: ['code', 'interpreter'],
        message: `is ${JSON.stringify(spec.code.interpreter)}, but with distributed torchrun runs the entrypoint with its own Python: leave code.interpreter unset, or drop distributed and start your launcher in code.command`,
      });
    }
  }
  return issues;
}
