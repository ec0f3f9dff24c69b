import type { NodeNetworks, RunNetwork } from '../shared/ports/compute';

/**
 * The node networks of the local backend: nothing to create. Every local node is a process group
 * on this machine's loopback, where every port is reachable from every other process and there
 * is no rack to be close in, so a run needs neither a security group nor a placement group.
 * What separates two runs here is a rendezvous port of each run's own (docs/multi-node.md).
 * So `ensure` returns an empty network (no placement group, no node group; LocalCompute has no
 * use for either), and there is never anything to release or for the reconciler to find.
 */
export class LocalNodeNetworks implements NodeNetworks {
  async ensure(_runId: string, _at: { subnets: readonly string[]; instanceType: string }): Promise<RunNetwork> {
    return {};
  }

  async release(_runId: string): Promise<void> {
    // Nothing was created.
  }

  async listRunNetworks(): Promise<string[]> {
    return [];
  }
}
