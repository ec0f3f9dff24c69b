import { z } from 'zod';
import { RunInvalidError, type FieldIssue } from '../errors';
import { HyperparametersSchema } from './hyperparameters';

/**
 * The run spec: everything a run needs, as submitted through the API, a schedule or the Step
 * Functions console. The same schema validates all three (the state machine never trusts that
 * the API did). Every default is written here and listed in docs/run-spec.md.
 */

const s3Uri = z
  .string()
  .regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/, 'must be an S3 URI like s3://bucket/prefix/');

const absolutePath = z
  .string()
  .regex(/^\/[^\0]*$/, 'must be an absolute path on the instance, like /data')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ".." segments');

/** A duration: seconds as a number, or a string like `90s`, `45m`, `12h`, `7d`. */
export const DurationSchema = z.union([
  z.number().int().positive(),
  z
    .string()
    .regex(/^\d+(s|m|h|d)$/, 'must be a duration like 90s, 45m, 12h or 7d')
    .transform((v) => {
      const n = Number(v.slice(0, -1));
      const unit = v.slice(-1);
      return n * ({ s: 1, m: 60, h: 3600, d: 86400 } as const)[unit as 's' | 'm' | 'h' | 'd'];
    }),
]);

const instanceTypeName = z
  .string()
  .regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, 'must be an EC2 instance type like g5.xlarge');

const CodeSchema = z
  .object({
    /** S3 URI of the code bundle (a .tar.gz), as uploaded by `runctl submit`. */
    bundle: s3Uri,
    /** Script to run, relative to the bundle root. */
    entrypoint: z.string().min(1).optional(),
    /** Interpreter for the entrypoint. Default `python3`. */
    interpreter: z.string().min(1).default('python3'),
    /** A full command (argv) instead of interpreter + entrypoint. */
    command: z.array(z.string().min(1)).min(1).optional(),
  })
  .refine((c) => c.entrypoint !== undefined || c.command !== undefined, {
    message: 'set code.entrypoint (e.g. "train.py") or code.command (e.g. ["python3", "train.py"])',
  });

const InstanceSchema = z.object({
  /** Instance types in order of preference; the first with capacity wins. */
  types: z
    .union([z.string(), z.array(z.string())])
    .transform((v) => (typeof v === 'string' ? v.split(',').map((t) => t.trim()) : v))
    .pipe(z.array(instanceTypeName).min(1, 'list at least one instance type')),
  /** Spot (default) or on-demand. */
  spot: z.boolean().default(true),
  /** Fall back to on-demand when no spot capacity is to be had. Default false. */
  onDemandFallback: z.boolean().default(false),
  /** Highest spot price in USD per hour; default: the on-demand price (AWS's own default). */
  maxSpotPriceUsd: z.number().positive().optional(),
  /** Subnets to launch in, in order of preference. Default: the account's default VPC subnets. */
  subnets: z.array(z.string().regex(/^subnet-[0-9a-f]+$/, 'must be a subnet id like subnet-0abc')).default([]),
  /** Availability zones to prefer when no subnets are given. */
  availabilityZones: z.array(z.string().regex(/^[a-z]{2}-[a-z]+-\d[a-z]$/, 'must be an AZ like us-east-1a')).default([]),
  /** AMI id; default: the Deep Learning AMI (GPU PyTorch) from its public SSM parameter. */
  ami: z.string().regex(/^ami-[0-9a-f]+$/, 'must be an AMI id like ami-0abc').optional(),
  /** Instance profile name the training instance runs as. Default: the stack's profile. */
  instanceProfile: z.string().min(1).optional(),
  /** Root volume size in GiB. Default 100. */
  rootVolumeGiB: z.number().int().min(8).max(16384).default(100),
});

const DataSourceSchema = z.object({
  /** S3 prefix or object to copy. */
  source: s3Uri,
  /** Where it lands on the instance. */
  target: absolutePath,
});

/** `s3://bucket/prefix/:/data` → { source, target } — the CLI's `--data` form. */
const dataEntry = z.union([
  DataSourceSchema,
  z
    .string()
    .regex(/^s3:\/\/.+:\/.*$/, 'must be "s3://bucket/prefix/:/path/on/instance"')
    .transform((v) => {
      const at = v.lastIndexOf(':/');
      return { source: v.slice(0, at), target: v.slice(at + 1) };
    })
    .pipe(DataSourceSchema),
]);

const VolumeSchema = z.object({
  /** Dataset URI of a catalogued pre-warmed volume (see `runctl volumes prewarm`). */
  dataset: s3Uri,
  /** Where the volume is mounted (read-only). */
  mountPath: absolutePath.default('/data'),
  /** Read every block once after restore so the first epoch does not pay lazy loading. */
  initialize: z.boolean().default(false),
  /** Keep a volume created for this run after the run ends. Default false. */
  keep: z.boolean().default(false),
});

const DockerSchema = z.union([
  z.literal('auto'),
  z.object({
    /** Image URI (ECR or public). */
    image: z.string().min(1).optional(),
    /** Build from a Dockerfile in the code bundle (path relative to the bundle root). */
    build: z.object({ dockerfile: z.string().min(1).default('Dockerfile') }).optional(),
  }).refine((d) => d.image !== undefined || d.build !== undefined, {
    message: 'set docker.image, docker.build, or use docker: "auto"',
  }),
]);

const CheckpointSchema = z.object({
  /** Directory the script writes checkpoints to (exported as RUNCTL_CHECKPOINT_DIR). */
  dir: absolutePath.default('/opt/runctl/checkpoints'),
  /** How often the agent syncs the checkpoint dir to S3. Default 300 s. */
  intervalSeconds: z.number().int().min(5).max(86400).default(300),
  /** Signal that asks the script to checkpoint and exit. Default SIGTERM. */
  stopSignal: z.enum(['SIGTERM', 'SIGINT', 'SIGUSR1', 'SIGUSR2', 'SIGHUP']).default('SIGTERM'),
  /** Seconds the script gets after the stop signal before it is killed. Default 90 (spot gives 120). */
  graceSeconds: z.number().int().min(1).max(110).default(90),
});

const RecoverySchema = z.object({
  /** Spot interruptions / lost instances tolerated before FAILED_NO_CAPACITY. Default 10. */
  maxInterruptions: z.number().int().min(0).max(100).default(10),
  /** Non-zero exits retried before FAILED_USER. Default 0. */
  maxRestartsOnError: z.number().int().min(0).max(20).default(0),
  /** Checkpoint early on an EC2 rebalance recommendation. Default false. */
  checkpointOnRebalance: z.boolean().default(false),
  /** How long to keep trying when no capacity is to be had. Default 1 h. */
  maxWaitForCapacity: DurationSchema.default(3600),
});

const LimitsSchema = z.object({
  /** Wall-clock limit for the whole run across attempts (seconds or `12h`). Default 7 days. */
  maxRuntime: DurationSchema.default(7 * 86400),
  /** Spend limit in USD (instance hours × price). Default: none. */
  maxCostUsd: z.number().positive().optional(),
});

const MetricDefinitionSchema = z.object({
  /** Metric name, e.g. `loss`. */
  name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_.:/-]{0,63}$/, 'must be a metric name like loss or val/acc'),
  /** Regex with one capture group for the value, matched on each log line. */
  regex: z.string().min(1).refine((r) => {
    try {
      return new RegExp(r).source.length > 0;
    } catch {
      return false;
    }
  }, 'must be a valid regular expression with one capture group'),
});

const envName = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const RunSpecSchema = z.object({
  /** Human name of the run. */
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be 1-63 letters, digits, ".", "_" or "-"'),
  code: CodeSchema,
  /** Extra script arguments, passed after the hyperparameters, verbatim. */
  args: z.array(z.string()).default([]),
  /** `{ epochs: 50 }` or `"epochs=50,lr=0.001"`; become `--epochs 50 --lr 0.001`. */
  hyperparameters: HyperparametersSchema.default({}),
  instance: InstanceSchema,
  data: z.array(dataEntry).default([]),
  volume: VolumeSchema.optional(),
  docker: DockerSchema.optional(),
  checkpoint: CheckpointSchema.default(CheckpointSchema.parse({})),
  recovery: RecoverySchema.default(RecoverySchema.parse({})),
  limits: LimitsSchema.default(LimitsSchema.parse({})),
  /** Environment variables for the script. Names starting with RUNCTL_ or AWS_ are reserved. */
  env: z
    .record(
      z.string().regex(envName, 'must be an environment variable name').refine((k) => !/^(RUNCTL_|AWS_)/.test(k), 'RUNCTL_ and AWS_ names are reserved'),
      z.string(),
    )
    .default({}),
  /** Tags for the run's instances and volumes (besides runctl's own). */
  tags: z.record(z.string().regex(/^(?!aws:|runctl:)[\w .:/=+\-@]{1,128}$/, 'must be a tag key not starting with aws: or runctl:'), z.string().max(256)).default({}),
  metricDefinitions: z.array(MetricDefinitionSchema).default([]),
});

export type RunSpecInput = z.input<typeof RunSpecSchema>;
export type RunSpec = z.output<typeof RunSpecSchema>;

/** Turns zod issues into field-level messages: `instance.types.0: must be an EC2 instance type like g5.xlarge`. */
export function toFieldIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => ({
    path: issue.path.map(String).join('.') || '(root)',
    message: issue.message,
  }));
}

/** Validates a run spec; throws RunInvalidError naming each bad field and what to fix. */
export function parseRunSpec(input: unknown): RunSpec {
  const result = RunSpecSchema.safeParse(input);
  if (result.success) return result.data;
  const issues = toFieldIssues(result.error);
  throw new RunInvalidError(
    `Invalid run spec: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
    issues,
  );
}
