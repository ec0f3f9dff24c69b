import type { Placement } from '../domain/recovery';
import { nodeCount } from '../domain/multi-node';
import type { NodeState, RunRecord } from '../domain/run-record';
import { CapacityUnavailableError } from '../errors';
import { logger } from '../logger';
import type { LaunchedInstance, RunNetwork } from '../ports/compute';
import { waitForCapacity, type ProvisionInstanceEvent, type ProvisionResult } from './provision-instance';
import type { StepDeps } from './step-deps';

/**
 * ProvisionInstance for a run of N nodes (docs/multi-node.md, "Provisioning"):
 * - the run's network first (a cluster placement group where the type allows, and a security
 *   group that lets only the run's nodes reach each other), created once and kept on the record;
 * - after a node was lost, the healthy nodes of the previous attempt are kept (ReleaseResources
 *   left them running) and only the lost ranks are launched, each with its own client token
 *   (`runId-attempt-r<rank>`), in the survivors' subnet and type; when that cannot be had, a whole
 *   new fleet is launched elsewhere and the survivors released;
 * - otherwise the whole fleet at once: each try of the walk asks EC2 for all N or none;
 * - no capacity: WAITING_FOR_CAPACITY saying how many of N are held (the survivors), until
 *   `recovery.maxWaitForCapacity`.
 */
export async function provisionNodes(
  event: ProvisionInstanceEvent,
  record: RunRecord,
  placement: Placement,
  request: Parameters<StepDeps['compute']['launch']>[0],
  deps: StepDeps,
): Promise<ProvisionResult> {
  const { runId, attempt } = event;
  const spec = record.spec;
  const count = nodeCount(spec);
  if (deps.networks === undefined) throw new Error('ProvisionInstance needs the node networks port for a multi-node run');
  const survivors = keptNodes(record, attempt);
  const network = record.network ?? (await deps.networks.ensure(runId, { subnets: spec.instance.subnets, instanceType: placement.instanceTypes[0] ?? '' }));
  await deps.store.transition(runId, ['VALIDATING', 'BUILDING_IMAGE', 'RECOVERING', 'WAITING_FOR_CAPACITY', 'PROVISIONING'], 'PROVISIONING', {
    network,
    statusReason:
      survivors.length > 0
        ? `Attempt ${attempt} keeps ${survivors.length} of ${count} nodes and launches rank ${missingRanks(survivors, count).join(', ')}`
        : `Launching attempt ${attempt}: ${count} nodes of ${placement.instanceTypes.join(' or ')}${placement.spot ? ', spot' : ''}, all or none`,
  });

  let nodes: NodeState[] | undefined;
  let refusal: CapacityUnavailableError | undefined;
  if (survivors.length > 0) {
    try {
      nodes = await completeFleet(survivors, count, attempt, request, network, deps);
    } catch (error) {
      if (!(error instanceof CapacityUnavailableError)) throw error;
      refusal = error;
      logger.info('no capacity beside the kept nodes; trying a whole fleet elsewhere', { runId, attempt, error: error.message });
    }
  }
  if (nodes === undefined) {
    try {
      const fleet = await deps.compute.launchNodes({ ...request, count, network });
      nodes = fleet.map((instance, rank) => nodeOf(instance, rank, attempt));
      await releaseSurvivors(record, attempt, survivors, deps);
    } catch (error) {
      if (!(error instanceof CapacityUnavailableError)) throw error;
      refusal = error;
    }
  }
  if (nodes === undefined) return waitForNodes(event, record, survivors.length, refusal, deps);

  const first = nodes[0];
  if (first === undefined) throw new Error(`Run ${runId} attempt ${attempt}: the launch returned no nodes`);
  await deps.store.appendAttempt(runId, {
    attempt,
    instanceId: first.instanceId,
    instanceType: first.instanceType,
    availabilityZone: first.availabilityZone,
    spot: first.spot,
    startedAt: first.launchedAt,
    resumeFrom: event.resumeFrom ?? undefined,
    nodes,
  });
  // The kept nodes still carry their first attempt's tag: the event handlers find them by it.
  const retag = nodes.filter((n) => n.launchedForAttempt !== attempt).map((n) => n.instanceId);
  if (retag.length > 0) await deps.compute.tagAttempt(retag, attempt);
  await deps.store.transition(runId, 'PROVISIONING', 'STARTING', {
    statusReason: `${count} nodes (${first.instanceType} in ${first.availabilityZone}${first.spot ? ', spot' : ''}) are starting; rank 0 is ${first.instanceId}`,
  });
  return {
    launched: true,
    instance: { instanceId: first.instanceId, instanceType: first.instanceType, availabilityZone: first.availabilityZone, spot: first.spot },
    waitingSince: null,
    usesVolume: false,
  };
}

/** The previous attempt's nodes that are still wanted: neither warned, lost nor released. */
export function keptNodes(record: RunRecord, attempt: number): NodeState[] {
  const previous = record.attempts.find((a) => a.attempt === attempt - 1);
  return (previous?.nodes ?? []).filter((n) => n.warnedAt === undefined && n.lostAt === undefined && n.releasedAt === undefined);
}

function missingRanks(survivors: readonly NodeState[], count: number): number[] {
  const held = new Set(survivors.map((n) => n.rank));
  return Array.from({ length: count }, (_, rank) => rank).filter((rank) => !held.has(rank));
}

/** Launches the ranks the survivors lack, each alone, into the survivors' subnet, type and market. */
async function completeFleet(
  survivors: readonly NodeState[],
  count: number,
  attempt: number,
  request: Parameters<StepDeps['compute']['launch']>[0],
  network: RunNetwork,
  deps: StepDeps,
): Promise<NodeState[]> {
  const anchor = survivors[0];
  if (anchor === undefined) throw new Error('no survivors to complete');
  const launched: NodeState[] = [];
  try {
    for (const rank of missingRanks(survivors, count)) {
      const instance = await deps.compute.launch({
        ...request,
        rank,
        instanceTypes: [anchor.instanceType],
        spot: anchor.spot,
        onDemandFallback: false,
        subnetId: anchor.subnetId,
        availabilityZone: anchor.availabilityZone,
        network,
      });
      launched.push(nodeOf(instance, rank, attempt));
    }
  } catch (error) {
    // All or none: a replacement launched before the refusal is not kept alone.
    for (const node of launched) await deps.compute.terminate(node.instanceId);
    throw error;
  }
  return [...survivors.map(keptState), ...launched].sort((a, b) => a.rank - b.rank);
}

/** A kept node starts the attempt with its instance and copied data, and nothing of the last attempt's run. */
function keptState(node: NodeState): NodeState {
  const { outcome: _outcome, lastHeartbeatAt: _beat, agentCommandId: _command, ...kept } = node;
  return kept;
}

function nodeOf(instance: LaunchedInstance, rank: number, attempt: number): NodeState {
  return {
    rank,
    instanceId: instance.instanceId,
    instanceType: instance.instanceType,
    availabilityZone: instance.availabilityZone,
    subnetId: instance.subnetId,
    spot: instance.spot,
    privateIp: instance.privateIp,
    launchedForAttempt: attempt,
    launchedAt: instance.launchedAt,
  };
}

/** The survivors of the previous attempt, when a whole new fleet replaced them. */
async function releaseSurvivors(record: RunRecord, attempt: number, survivors: readonly NodeState[], deps: StepDeps): Promise<void> {
  for (const node of survivors) {
    await deps.compute.terminate(node.instanceId);
    await deps.store.updateNode(record.runId, attempt - 1, node.rank, { releasedAt: deps.clock().toISOString() });
  }
}

/** No fleet now: the run waits and says how many of its N nodes it holds meanwhile. */
function waitForNodes(
  event: ProvisionInstanceEvent,
  record: RunRecord,
  held: number,
  refusal: CapacityUnavailableError | undefined,
  deps: StepDeps,
): Promise<ProvisionResult> {
  const count = nodeCount(record.spec);
  return waitForCapacity(
    event,
    record.spec,
    { usesVolume: false, refusal, what: `${count} nodes`, reason: `Holding ${held} of ${count} nodes: ${refusal?.message ?? 'no capacity'}` },
    deps,
  );
}
