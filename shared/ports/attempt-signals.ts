/**
 * The writes the EC2 event handlers (and prepare-replacement's handover) make on a run record. Each is a single conditional
 * UpdateItem that only applies while the attempt is the run's newest, runs on the instance the
 * event names and has not ended, so a duplicate or late event changes nothing.
 */

export interface AttemptRef {
  runId: string;
  attempt: number;
  instanceId: string;
}

export interface SpotInterruptionMark extends AttemptRef {
  /** Owner of the run: its status index key is built from it. */
  owner: string;
  /** When the warning was issued (the event's time). */
  noticedAt: string;
  /** EC2's announced action: terminate, stop or hibernate. */
  action: string;
  /** The instance warned, in words, when it is not the attempt's own (a node of a multi-node run). */
  warnedInstance?: string;
}

export interface AttemptSignals {
  /**
   * TRAINING → CHECKPOINTING and the attempt's end reason `SPOT_INTERRUPTED`, in one write.
   * False (nothing written) when the run is not TRAINING or the attempt is not live on that instance.
   * True also when this call's own write had landed with its answer lost (the SDK's retry then
   * fails the condition): the checkpoint command still has to go out.
   */
  markSpotInterrupted(mark: SpotInterruptionMark): Promise<boolean>;
  /**
   * Records on a TRAINING run that an early checkpoint was asked for on a rebalance
   * recommendation; the status stays. False when the spec does not ask for
   * `recovery.checkpointOnRebalance`, the attempt is not live on that instance, or it was
   * already asked for this attempt. `recommendedInstance` names the instance in words when it is
   * not the attempt's own (a node of a multi-node run; `instanceId` is then rank 0's).
   */
  markRebalanceCheckpoint(ref: AttemptRef & { at: string; recommendedInstance?: string }): Promise<boolean>;
  /**
   * Records on a TRAINING run that a rebalance recommendation started a handover: the spec asks
   * for `recovery.preProvisionOnRebalance` without `checkpointOnRebalance`, so a replacement is
   * launched and prepared while the attempt trains on. The status stays. False when the spec
   * does not ask for it, the attempt is not live on that instance, or a recommendation was
   * already acted on for this attempt.
   */
  markRebalanceHandover(ref: AttemptRef & { at: string }): Promise<boolean>;
  /**
   * Records that the attempt is asked, once, to checkpoint and stop because the replacement
   * launched on its rebalance recommendation is ready. False when the run is no longer TRAINING
   * (a spot warning or the end of training came first), the attempt is not live on that
   * instance, or it was already asked.
   */
  markHandoverCheckpoint(ref: AttemptRef & { at: string; replacementId: string }): Promise<boolean>;
}
