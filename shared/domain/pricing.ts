/**
 * On-demand prices of the instance types runctl targets: a static, dated table, because the AWS
 * Price List API (`pricing:GetProducts`) answers only from us-east-1 and ap-south-1, returns
 * kilobytes of JSON per type, and would add a client to every reconciler bundle for numbers
 * that change a few times a year. Spot prices are not here: they come from the EC2 spot price
 * history (shared/adapters/ec2-pricing.ts). docs/costs.md says how to refresh this table.
 */

/** The day the us-east-1 prices below were read from the EC2 on-demand pricing page. */
export const ON_DEMAND_PRICES_AS_OF = '2025-05-01';

/**
 * USD per hour, Linux, us-east-1, on-demand, as of ON_DEMAND_PRICES_AS_OF. AWS lowered the
 * P4 and P5 prices in June 2025; the older (higher) figures are kept on purpose, since an
 * over-estimate stops a budget early rather than late.
 */
export const US_EAST_1_ON_DEMAND_USD_PER_HOUR: Readonly<Record<string, number>> = {
  // NVIDIA T4
  'g4dn.xlarge': 0.526,
  'g4dn.2xlarge': 0.752,
  'g4dn.4xlarge': 1.204,
  'g4dn.8xlarge': 2.176,
  'g4dn.12xlarge': 3.912,
  'g4dn.16xlarge': 4.352,
  'g4dn.metal': 7.824,
  // NVIDIA A10G
  'g5.xlarge': 1.006,
  'g5.2xlarge': 1.212,
  'g5.4xlarge': 1.624,
  'g5.8xlarge': 2.448,
  'g5.12xlarge': 5.672,
  'g5.16xlarge': 4.096,
  'g5.24xlarge': 8.144,
  'g5.48xlarge': 16.288,
  // NVIDIA L4
  'g6.xlarge': 0.8048,
  'g6.2xlarge': 0.9776,
  'g6.4xlarge': 1.3232,
  'g6.8xlarge': 2.0144,
  'g6.12xlarge': 4.6016,
  'g6.16xlarge': 3.3968,
  'g6.24xlarge': 6.6752,
  'g6.48xlarge': 13.3504,
  // NVIDIA L40S
  'g6e.xlarge': 1.861,
  'g6e.2xlarge': 2.24208,
  'g6e.4xlarge': 3.00424,
  'g6e.8xlarge': 4.52856,
  'g6e.12xlarge': 10.49264,
  'g6e.16xlarge': 7.57719,
  'g6e.24xlarge': 15.06559,
  'g6e.48xlarge': 30.13118,
  // NVIDIA V100, A100, H100
  'p3.2xlarge': 3.06,
  'p3.8xlarge': 12.24,
  'p3.16xlarge': 24.48,
  'p3dn.24xlarge': 31.212,
  'p4d.24xlarge': 32.7726,
  'p4de.24xlarge': 40.9657,
  'p5.48xlarge': 98.32,
  // Trainium / Inferentia
  'trn1.2xlarge': 1.34375,
  'trn1.32xlarge': 21.5,
  'inf2.xlarge': 0.7582,
  'inf2.8xlarge': 1.96786,
  // CPU types used by the image builder and prewarm helpers, and for CPU-only runs
  't3.medium': 0.0416,
  't3.large': 0.0832,
  'm5.large': 0.096,
  'm5.xlarge': 0.192,
  'm5.2xlarge': 0.384,
  'c5.xlarge': 0.17,
  'c5.2xlarge': 0.34,
  'c6i.xlarge': 0.17,
  'c6i.2xlarge': 0.34,
};

/**
 * Regional price level relative to us-east-1, rounded up from the GPU families above (regions
 * differ per family by a few percent; the larger factor is kept).
 */
export const REGION_PRICE_FACTOR: Readonly<Record<string, number>> = {
  'us-east-1': 1,
  'us-east-2': 1,
  'us-west-2': 1,
  'us-west-1': 1.2,
  'ca-central-1': 1.12,
  'eu-west-1': 1.13,
  'eu-west-2': 1.2,
  'eu-west-3': 1.2,
  'eu-central-1': 1.22,
  'eu-north-1': 1.08,
  'ap-south-1': 1.12,
  'ap-northeast-1': 1.33,
  'ap-northeast-2': 1.28,
  'ap-southeast-1': 1.28,
  'ap-southeast-2': 1.3,
  'sa-east-1': 1.6,
};

/** Used for a region missing from REGION_PRICE_FACTOR: high on purpose, so a budget is not overrun. */
export const UNKNOWN_REGION_PRICE_FACTOR = 1.6;

/** On-demand USD per hour of `instanceType` in `region`; undefined when the type is not in the table. */
export function onDemandPricePerHour(instanceType: string, region: string): number | undefined {
  const base = US_EAST_1_ON_DEMAND_USD_PER_HOUR[instanceType];
  if (base === undefined) return undefined;
  const factor = REGION_PRICE_FACTOR[region] ?? UNKNOWN_REGION_PRICE_FACTOR;
  return Math.round(base * factor * 10_000) / 10_000;
}
