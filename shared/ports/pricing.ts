import type { PricePoint } from '../domain/cost';

/**
 * Prices of instance hours, for the cost so far of a run. On AWS: the static on-demand table
 * (shared/domain/pricing.ts) and the EC2 spot price history (shared/adapters/ec2-pricing.ts).
 */
export interface Pricing {
  /** On-demand USD per hour of a type in the deployment's region; undefined when unknown. */
  onDemandPerHour(instanceType: string): number | undefined;
  /**
   * Spot prices (Linux/UNIX) of a type in an AZ that were in effect between `from` and `to`,
   * oldest first, including the one already in effect at `from` when AWS reports it.
   */
  spotPriceHistory(instanceType: string, availabilityZone: string, from: Date, to: Date): Promise<PricePoint[]>;
}
