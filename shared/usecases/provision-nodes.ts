import type { Placement } from '../domain/recovery';
import { nodeCount } from '../domain/multi-node';
import type { NodeState, Replacement, RunRecord } from '../domain/run-record';
import { CapacityUnavailableError } from '../errors';
import { logger } from '../logger';
import type { LaunchedInstance, LaunchRequest, RunNetwork } from '../ports/compute';
import {
  liveReplacement,
  preparing,
  unreleasedReplacement,
  waitForCapacity,
  waitForReplacement,
  type ProvisionInstanceEvent,
  type ProvisionResult,
} from './provision-instance';
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
  const prepared = await preparedReplacement(record, attempt, survivors, count, deps);
  if (prepared !== undefined && prepared.replacement.dataReadyAt === undefined && event.replacementAwaited !== true) {
    // Launched on the warning and still booting or copying: wait for it (AwaitReplacement), as one node does.
    const { replacement, ready } = prepared;
    return waitForReplacement(event, replacement, {
      network,
      statusReason:
        `Attempt ${attempt} keeps ${survivors.length} of ${count} nodes and waits for rank ${replacement.rank ?? '?'}'s replacement ` +
        `${replacement.instanceId}, launched on the spot warning (${preparing(ready)})`,
    }, deps);
  }
  // The ranks the kept nodes lack: the one prepared on the warning is taken over, the others launched.
  const taken = prepared === undefined ? [] : [`takes over ${prepared.replacement.instanceId} as rank ${prepared.replacement.rank ?? '?'}, launched on the spot warning`];
  const launching = missingRanks(survivors, count).filter((rank) => rank !== prepared?.replacement.rank);
  const plan = [...taken, ...(launching.length > 0 ? [`launches rank ${launching.join(', ')}`] : [])].join('; ');
  await deps.store.transition(runId, ['VALIDATING', 'BUILDING_IMAGE', 'RECOVERING', 'WAITING_FOR_CAPACITY', 'PROVISIONING'], 'PROVISIONING', {
    network,
    statusReason:
      survivors.length > 0
        ? `Attempt ${attempt} keeps ${survivors.length} of ${count} nodes and ${plan}`
        : `Launching attempt ${attempt}: ${count} nodes of ${placement.instanceTypes.join(' or ')}${placement.spot ? ', spot' : ''}, all or none`,
  });

  let nodes: NodeState[] | undefined;
  let refusal: CapacityUnavailableError | undefined;
  if (survivors.length > 0) {
    try {
      nodes = await completeFleet(survivors, count, attempt, request, network, prepared?.replacement, deps);
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
      await releaseUnadopted(record, attempt, deps);
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
    // Every node online already (the kept ones, and the replacement prepared on the warning): no readiness wait.
    ...(nodes.every((n) => n.readyAt !== undefined) ? { prepared: true } : {}),
  };
}

/**
 * The replacement launched on the previous attempt's spot warning for one of the ranks this
 * attempt lacks (prepare-replacement, docs/recovery.md), if it is still alive and the kept nodes
 * are there to complete: ProvisionInstance takes it over instead of launching that rank.
 */
async function preparedReplacement(
  record: RunRecord,
  attempt: number,
  survivors: readonly NodeState[],
  count: number,
  deps: StepDeps,
): Promise<{ replacement: Replacement; ready: boolean } | undefined> {
  const rank = unreleasedReplacement(record, attempt)?.rank;
  if (rank === undefined || survivors.length === 0 || !missingRanks(survivors, count).includes(rank)) return undefined;
  return liveReplacement(record, attempt, deps);
}

/** The replacement launched on the warning, when a whole new fleet replaced the kept nodes instead: billed until now. */
async function releaseUnadopted(record: RunRecord, attempt: number, deps: StepDeps): Promise<void> {
  const replacement = unreleasedReplacement(record, attempt);
  if (replacement === undefined) return;
  await deps.compute.terminate(replacement.instanceId);
  await deps.store.updateAttempt(record.runId, attempt - 1, { replacement: { ...replacement, releasedAt: deps.clock().toISOString() } });
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

/**
 * The launch of rank `rank` alone beside the kept node `anchor`: its subnet (so its AZ and the
 * placement group), its type and its market, with no fallback elsewhere, and the rank's own
 * client token. ProvisionInstance and the replacement launched on a warning both use it, so the
 * two launch the same instance.
 */
export function besideKeptNodes(request: LaunchRequest, anchor: NodeState, rank: number, network: RunNetwork): LaunchRequest {
  return {
    ...request,
    rank,
    instanceTypes: [anchor.instanceType],
    spot: anchor.spot,
    onDemandFallback: false,
    subnetId: anchor.subnetId,
    availabilityZone: anchor.availabilityZone,
    network,
  };
}

/**
 * Launches the ranks the survivors lack, each alone, into the survivors' subnet, type and market;
 * the rank whose replacement was launched on the warning (`prepared`) takes that instance over,
 * with its readiness and its copied data.
 */
async function completeFleet(
  survivors: readonly NodeState[],
  count: number,
  attempt: number,
  request: LaunchRequest,
  network: RunNetwork,
  prepared: Replacement | undefined,
  deps: StepDeps,
): Promise<NodeState[]> {
  const anchor = survivors[0];
  if (anchor === undefined) throw new Error('no survivors to complete');
  const launched: NodeState[] = [];
  try {
    for (const rank of missingRanks(survivors, count)) {
      if (prepared !== undefined && prepared.rank === rank) {
        launched.push(preparedNode(prepared, rank, attempt));
        continue;
      }
      const instance = await deps.compute.launch(besideKeptNodes(request, anchor, rank, network));
      launched.push(nodeOf(instance, rank, attempt));
    }
  } catch (error) {
    // All or none: a replacement launched before the refusal is not kept alone (the whole-fleet
    // path releases the prepared one).
    for (const node of launched) if (node.instanceId !== prepared?.instanceId) await deps.compute.terminate(node.instanceId);
    throw error;
  }
  return [...survivors.map(keptState), ...launched].sort((a, b) => a.rank - b.rank);
}

/** A kept node starts the attempt with its instance and copied data, and nothing of the last attempt's run. */
function keptState(node: NodeState): NodeState {
  const { outcome: _outcome, lastHeartbeatAt: _beat, agentCommandId: _command, ...kept } = node;
  return kept;
}

/** The replacement launched on the warning, as the node of rank `rank` it becomes: ready and with its data if it got that far. */
function preparedNode(prepared: Replacement, rank: number, attempt: number): NodeState {
  return {
    ...nodeOf({ ...prepared, misses: [] }, rank, attempt),
    ...(prepared.readyAt === undefined ? {} : { readyAt: prepared.readyAt }),
    ...(prepared.copyCommandId === undefined ? {} : { copyCommandId: prepared.copyCommandId }),
    ...(prepared.dataReadyAt === undefined ? {} : { dataReadyAt: prepared.dataReadyAt }),
  };
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
