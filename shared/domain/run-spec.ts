import { z } from 'zod';
import { RunInvalidError, type FieldIssue } from '../errors';
import { ExperimentNameSchema } from './experiment';
import { buildTrainingArgv, findArgConflicts, HyperparametersSchema } from './hyperparameters';
import { argvEnvBytes, rawInputIssues, SPEC_LIMITS, specSizeIssue } from './spec-limits';
import { hasNvidiaGpu } from './instance-gpus';
import { DEFAULT_MASTER_PORT, MAX_NODES, MAX_NPROC_PER_NODE, multiNodeIssues } from './multi-node';
import { secretRefIssues, SecretRefSchema, type SecretsScope } from './secret-refs';

/**
 * The run spec: everything a run needs, as submitted through the API, a schedule or the Step
 * Functions console. The same schema validates all three (the state machine never trusts that
 * the API did). Every default is written here and listed in docs/run-spec.md.
 */

const s3Uri = z
  .string()
  .regex(
    /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/,
    'must be an S3 URI like s3://bucket/prefix/ (bucket names are 3-63 lowercase letters, digits, "." or "-")',
  );

/** No program argument or environment value can carry a NUL character. */
const argument = z.string().refine((v) => !v.includes('\0'), 'must not contain a NUL character');

const absolutePath = z
  .string()
  .regex(/^\/[^\0\n\r]*$/, 'must be an absolute path on the instance, like /data (one line)')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ".." segments');

const SECONDS_PER_UNIT: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400 };

/** `12h` → 43200. The regex has already admitted only the units above. */
function durationSeconds(text: string): number {
  const match = /^(\d+)([smhd])$/.exec(text);
  return Number(match?.[1]) * (SECONDS_PER_UNIT[match?.[2] ?? ''] ?? Number.NaN);
}

/** A duration of at most `maxSeconds`: seconds as a number, or a string like `90s`, `45m`, `12h`, `7d`. */
function durationSchema(maxSeconds: number, maxText: string) {
  return z
    .union([
      z.number().int('must be a whole number of seconds').positive('must be a positive number of seconds'),
      z
        .string()
        .regex(/^[1-9]\d{0,9}[smhd]$/, 'must be a duration like 90s, 45m, 12h or 7d (or a number of seconds)')
        .transform(durationSeconds),
    ])
    .pipe(z.number().max(maxSeconds, `must be at most ${maxText} (${maxSeconds} s)`));
}

/** A duration: seconds as a number, or a string like `90s`, `45m`, `12h`, `7d`; at most one year. */
export const DurationSchema = durationSchema(SPEC_LIMITS.maxRuntimeSeconds, '365d');

/** `{ tags: … }` maps: at most `max` entries. */
function atMostKeys(max: number) {
  return (map: Readonly<Record<string, unknown>>) => Object.keys(map).length <= max;
}

const instanceTypeName = z
  .string()
  .regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, 'must be an EC2 instance type like g5.xlarge');

const CodeSchema = z
  .strictObject({
    /** S3 URI of the code bundle (a .tar.gz), as uploaded by `runctl submit`. */
    bundle: s3Uri,
    /** Script to run, relative to the bundle root. */
    entrypoint: argument
      .regex(/^[^/-]/, 'must be a path relative to the code bundle root, like train.py or src/train.py')
      .refine((p) => !p.split('/').includes('..'), 'must not contain ".." segments')
      .optional(),
    /** Interpreter for the entrypoint. Default `python3`. */
    interpreter: argument.min(1, 'must name a program, like python3').default('python3'),
    /** A full command (argv) instead of interpreter + entrypoint. */
    command: z
      .array(argument.min(1, 'must not be empty'))
      .min(1, 'must name a program, like ["torchrun", "train.py"]')
      .max(SPEC_LIMITS.command, `must have at most ${SPEC_LIMITS.command} elements`)
      .optional(),
  })
  .superRefine((c, ctx) => {
    if (c.entrypoint === undefined && c.command === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['entrypoint'],
        message: 'set code.entrypoint (e.g. "train.py") or code.command (e.g. ["python3", "train.py"])',
      });
    }
    if (c.entrypoint !== undefined && c.command !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['command'], message: 'set code.entrypoint or code.command, not both' });
    }
  });

const InstanceSchema = z.strictObject({
  /** Instance types in order of preference; the first with capacity wins. */
  types: z
    .union([z.string(), z.array(z.string())], { error: 'must be a list like ["g5.xlarge", "g6.xlarge"] or "g5.xlarge,g6.xlarge"' })
    .transform((v) => (typeof v === 'string' ? v.split(',').map((t) => t.trim()).filter((t) => t !== '') : v))
    .pipe(
      z
        .array(instanceTypeName)
        .min(1, 'list at least one instance type, like ["g5.xlarge"]')
        .max(SPEC_LIMITS.instanceTypes, `list at most ${SPEC_LIMITS.instanceTypes} instance types`),
    ),
  /** Spot (default) or on-demand. */
  spot: z.boolean().default(true),
  /** Fall back to on-demand when no spot capacity is to be had. Default false. */
  onDemandFallback: z.boolean().default(false),
  /** Highest spot price in USD per hour; default: the on-demand price (AWS's own default). */
  maxSpotPriceUsd: z
    .number()
    .min(SPEC_LIMITS.minUsd, `must be a price in USD per hour of at least ${SPEC_LIMITS.minUsd}`)
    .max(SPEC_LIMITS.maxSpotPriceUsd, `must be at most ${SPEC_LIMITS.maxSpotPriceUsd} USD per hour`)
    .optional(),
  /** Subnets to launch in, in order of preference. Default: the account's default VPC subnets. */
  subnets: z
    .array(z.string().regex(/^subnet-[0-9a-f]{1,32}$/, 'must be a subnet id like subnet-0abc'))
    .max(SPEC_LIMITS.subnets, `list at most ${SPEC_LIMITS.subnets} subnets`)
    .default([]),
  /** Availability zones to prefer when no subnets are given. */
  availabilityZones: z
    .array(z.string().regex(/^[a-z]{2}-[a-z]+-\d[a-z]$/, 'must be an AZ like us-east-1a'))
    .max(SPEC_LIMITS.availabilityZones, `list at most ${SPEC_LIMITS.availabilityZones} availability zones`)
    .default([]),
  /** AMI id; default: the Deep Learning AMI (GPU PyTorch) from its public SSM parameter. */
  ami: z.string().regex(/^ami-[0-9a-f]+$/, 'must be an AMI id like ami-0abc').optional(),
  /** Instance profile name the training instance runs as. Default: the stack's profile. */
  instanceProfile: z.string().min(1).optional(),
  /** Root volume size in GiB. Default 100. */
  rootVolumeGiB: z.number().int().min(8, 'must be at least 8 GiB').max(16384, 'must be at most 16384 GiB').default(100),
});

const DataSourceSchema = z.strictObject({
  /** S3 prefix or object to copy. */
  source: s3Uri,
  /** Where it lands on the instance. */
  target: absolutePath,
});

/** `s3://bucket/prefix/:/data` → { source, target }: the CLI's `--data` form. */
function splitDataString(text: string, ctx: z.RefinementCtx): z.input<typeof DataSourceSchema> {
  // The last ":/" separates: the target is a path, and the source's "s3://" comes first.
  const at = text.lastIndexOf(':/');
  if (!text.startsWith('s3://') || at <= 's3:'.length) {
    ctx.addIssue({ code: 'custom', message: 'must be "s3://bucket/prefix/:/path/on/instance" or { "source", "target" }' });
    return z.NEVER;
  }
  return { source: text.slice(0, at), target: text.slice(at + 1) };
}

const dataEntry = z
  .union([z.string().transform(splitDataString), DataSourceSchema], {
    error: 'must be "s3://bucket/prefix/:/path/on/instance" or { "source", "target" }',
  })
  .pipe(DataSourceSchema);

const VolumeSchema = z.strictObject({
  /** Dataset URI of a catalogued pre-warmed volume (see `runctl volumes prewarm`). */
  dataset: s3Uri,
  /** Where the volume is mounted (read-only). */
  mountPath: absolutePath.default('/data'),
  /** Read every block once after restore so the first epoch does not pay lazy loading. */
  initialize: z.boolean().default(false),
  /** Keep a volume created for this run after the run ends. Default false. */
  keep: z.boolean().default(false),
});

const DockerSchema = z.union(
  [
    z.literal('auto'),
    z
      .strictObject({
        /** Image URI (ECR or public). */
        image: z
          .string()
          .regex(/^[a-z0-9][a-z0-9._/:@-]{0,511}$/, 'must be an image reference like 123456789012.dkr.ecr.us-east-1.amazonaws.com/train:latest or pytorch/pytorch:2.4.0')
          .optional(),
        /** Build from a Dockerfile in the code bundle (path relative to the bundle root). */
        build: z
          .strictObject({
            dockerfile: z
              .string()
              .regex(/^[A-Za-z0-9_.][A-Za-z0-9_./-]{0,255}$/, 'must be a path relative to the bundle root, like docker/Dockerfile.gpu')
              .refine((p) => !p.split('/').includes('..'), 'must not contain ".." segments')
              .default('Dockerfile'),
          })
          .optional(),
        /**
         * GPUs for the container. Default `auto`: all of the instance's GPUs when it has any
         * (`nvidia-smi -L` lists one), none on a CPU type. `all` or a count insist on GPUs, so
         * every instance type listed must have NVIDIA GPUs; `none` never passes `--gpus`.
         */
        gpus: z
          .union([z.enum(['auto', 'all', 'none']), z.number().int().min(1, 'must be at least 1').max(16, 'must be at most 16')], {
            error: 'must be "auto", "all", "none" or a number of GPUs',
          })
          .default('auto'),
      })
      .refine((d) => d.image !== undefined || d.build !== undefined, {
        message: 'set docker.image, docker.build, or use docker: "auto"',
      }),
  ],
  { error: 'set docker.image, docker.build, or use docker: "auto"' },
);

/** The agent's own directories on the instance: its state, the code and resume dirs, the outputs. */
const AGENT_DIRS = ['/opt/runctl/attempts', '/opt/runctl/work', '/opt/runctl/output'] as const;

/** `a` is `b` or contains it (`/opt` and `/opt/runctl/work`), or lies inside it. */
function overlaps(a: string, b: string): boolean {
  const norm = (p: string) => `${p.replace(/\/+/g, '/').replace(/\/$/, '')}/`;
  return norm(b).startsWith(norm(a)) || norm(a).startsWith(norm(b));
}

const CheckpointSchema = z.strictObject({
  /**
   * Directory the script writes checkpoints to (exported as RUNCTL_CHECKPOINT_DIR). It is synced
   * to S3 as a whole and restored on resume, so it may not be `/` nor hold the agent's own files.
   */
  dir: absolutePath
    .refine(
      (dir) => !AGENT_DIRS.some((own) => overlaps(dir, own)),
      `must be a directory of its own, like /opt/runctl/checkpoints or /data/ckpt: not /, and not containing or inside the agent's ${AGENT_DIRS.join(', ')}`,
    )
    .default('/opt/runctl/checkpoints'),
  /** How often the agent syncs the checkpoint dir to S3. Default 300 s. */
  intervalSeconds: z.number().int().min(5, 'must be at least 5 seconds').max(86400, 'must be at most 86400 (one day)').default(300),
  /** Signal that asks the script to checkpoint and exit. Default SIGTERM. */
  stopSignal: z.enum(['SIGTERM', 'SIGINT', 'SIGUSR1', 'SIGUSR2', 'SIGHUP']).default('SIGTERM'),
  /**
   * Seconds the script gets after the stop signal before it is killed. Default 90. Spot gives
   * 120 s from warning to reclaim; the last 10 are left for the checkpoint upload to finish.
   */
  graceSeconds: z
    .number()
    .int()
    .min(1, 'must be at least 1 second')
    .max(110, 'must be at most 110: spot reclaims the instance 120 s after its warning, and the upload needs the rest')
    .default(90),
  /**
   * Which ranks' checkpoint dirs make a checkpoint in a multi-node run (docs/multi-node.md):
   * `rank0` (the default, when absent) uploads rank 0's alone, `all` one part per rank (sharded
   * checkpoints), complete only when every part is in. Optional, so existing specs keep their hash.
   */
  ranks: z.enum(['rank0', 'all'], { error: 'must be "rank0" (rank 0 writes the checkpoint) or "all" (every rank uploads its own part)' }).optional(),
});

/** How the agent starts the command on every node of a multi-node run (docs/multi-node.md). */
const DistributedSchema = z.strictObject({
  /** The launcher the agent starts on each node; torchrun is the one runctl knows. */
  launcher: z.literal('torchrun', { error: 'must be "torchrun" (for another launcher, start it in code.command with the RUNCTL_NODE_* environment)' }).default('torchrun'),
  /** Processes per node: `auto` (torchrun: one per GPU, else one per CPU) or a count. */
  nprocPerNode: z
    .union([
      z.literal('auto'),
      z.number().int('must be a whole number of processes').min(1, 'must be at least 1').max(MAX_NPROC_PER_NODE, `must be at most ${MAX_NPROC_PER_NODE}`),
    ], { error: `must be "auto" or a number of processes from 1 to ${MAX_NPROC_PER_NODE}` })
    .default('auto'),
  /** TCP port of the rendezvous on rank 0's node. Default 29500 (torchrun's own). */
  port: z
    .number()
    .int('must be a whole port number')
    .min(1024, 'must be at least 1024 (ports below are privileged)')
    .max(65535, 'must be at most 65535')
    .default(DEFAULT_MASTER_PORT),
});

const RecoverySchema = z.strictObject({
  /** Spot interruptions / lost instances tolerated before FAILED_NO_CAPACITY. Default 10. */
  maxInterruptions: z.number().int().min(0).max(100).default(10),
  /** Non-zero exits retried before FAILED_USER. Default 0. */
  maxRestartsOnError: z.number().int().min(0).max(20).default(0),
  /** Checkpoint early on an EC2 rebalance recommendation. Default false. */
  checkpointOnRebalance: z.boolean().default(false),
  /**
   * Launch the next attempt's instance on the spot warning, while the old one checkpoints, so it
   * boots, comes online and copies the data meanwhile (docs/recovery.md). Default true; false
   * keeps the sequential path (checkpoint, release, then launch).
   */
  provisionOnWarning: z.boolean().default(true),
  /** Also launch the next instance on a rebalance recommendation (with checkpointOnRebalance). Default false. */
  preProvisionOnRebalance: z.boolean().default(false),
  /** How long to keep trying when no capacity is to be had. Default 1 h. */
  maxWaitForCapacity: durationSchema(SPEC_LIMITS.maxWaitForCapacitySeconds, '365d').default(3600),
});

const LimitsSchema = z.strictObject({
  /** Wall-clock limit for the whole run across attempts (seconds or `12h`). Default 7 days. */
  maxRuntime: DurationSchema.default(7 * 86400),
  /** Spend limit in USD (instance hours × price). Default: none. */
  maxCostUsd: z
    .number()
    .min(SPEC_LIMITS.minUsd, `must be an amount in USD of at least ${SPEC_LIMITS.minUsd}`)
    .max(SPEC_LIMITS.maxCostUsd, `must be at most ${SPEC_LIMITS.maxCostUsd} USD`)
    .optional(),
});

const MetricDefinitionSchema = z.strictObject({
  /** Metric name, e.g. `loss`. */
  name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_.:/-]{0,63}$/, 'must be a metric name like loss or val/acc'),
  /** Regex matched on each log line; its first capture group is the value. */
  regex: z.string().min(1).refine(hasCaptureGroup, 'must be a valid regular expression whose first capture group is the value, like "loss=([0-9.]+)"'),
});

function hasCaptureGroup(source: string): boolean {
  try {
    new RegExp(source);
    // An alternation with the empty pattern matches "", so exec reports the group count.
    return (new RegExp(`(?:${source})|`).exec('')?.length ?? 0) > 1;
  } catch {
    return false;
  }
}

const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'must be an environment variable name like WANDB_PROJECT (at most 128 characters)')
  .refine((k) => !/^(RUNCTL_|AWS_)/.test(k), 'RUNCTL_ and AWS_ names are reserved for runctl and the AWS CLI');

const tagKey = z
  .string()
  // No '/' and not dots only: instance tags are exposed in instance metadata, which forbids both.
  .regex(/^(?!aws:|runctl:)(?!\.+$)[\w .:=+\-@]{1,128}$/, 'must be a tag key of 1-128 letters, digits, spaces or _.:=+-@ (no "/"), not starting with aws: or runctl:');

/**
 * The top level strips unknown keys (so a caller may pass the spec beside its own fields);
 * nested objects are strict, so a misspelt option is an error rather than silently ignored.
 */
/** The spec's fields (what `RunSpecSchema` parses once the raw input passed its checks); its `shape` names each field's schema. */
export const RunSpecFieldsSchema = z
  .object({
    /** Human name of the run. */
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be 1-63 letters, digits, ".", "_" or "-"'),
    /** Experiment the run belongs to (docs/sweeps.md); default: its sweep's, else the run's name. */
    experiment: ExperimentNameSchema.optional(),
    code: CodeSchema,
    /** Extra script arguments, passed after the hyperparameters, verbatim. */
    args: z.array(argument).max(SPEC_LIMITS.args, `must have at most ${SPEC_LIMITS.args} elements`).default([]),
    /** `{ epochs: 50 }` or `"epochs=50,lr=0.001"`; become `--epochs 50 --lr 0.001`. */
    hyperparameters: HyperparametersSchema.default({}),
    instance: InstanceSchema,
    /**
     * Instances the run trains on at once, each a node with its own rank (docs/multi-node.md).
     * Absent means 1; optional, so single-node specs keep their hash.
     */
    nodes: z
      .number({ error: `must be a number of nodes from 1 to ${MAX_NODES}` })
      .int('must be a whole number of nodes')
      .min(1, 'must be at least 1')
      .max(MAX_NODES, `must be at most ${MAX_NODES} (runctl's limit per run)`)
      .optional(),
    /** Start the command through torchrun on every node, with the rendezvous filled in. */
    distributed: DistributedSchema.optional(),
    data: z.array(dataEntry).max(SPEC_LIMITS.data, `list at most ${SPEC_LIMITS.data} data sources`).default([]),
    volume: VolumeSchema.optional(),
    docker: DockerSchema.optional(),
    checkpoint: CheckpointSchema.default(CheckpointSchema.parse({})),
    recovery: RecoverySchema.default(RecoverySchema.parse({})),
    limits: LimitsSchema.default(LimitsSchema.parse({})),
    /** Environment variables for the script. Names starting with RUNCTL_ or AWS_ are reserved. */
    env: z
      .record(envName, argument)
      .refine(atMostKeys(SPEC_LIMITS.env), `must have at most ${SPEC_LIMITS.env} variables`)
      .default({}),
    /**
     * Secrets for the script's environment: variable name → `ssm:<parameter name>` or a Secrets
     * Manager ARN under the owner's secrets path. The agent reads each on the instance with the
     * run's credentials; only the references are ever stored or shipped. Optional, so specs
     * without secrets keep their hash.
     */
    secrets: z
      .record(envName, SecretRefSchema)
      .refine(atMostKeys(SPEC_LIMITS.secrets), `must have at most ${SPEC_LIMITS.secrets} secrets`)
      .optional(),
    /** Tags for the run's instances and volumes (besides runctl's own). */
    tags: z
      .record(tagKey, z.string().max(256, 'must be at most 256 characters'))
      .refine(atMostKeys(SPEC_LIMITS.tags), `must have at most ${SPEC_LIMITS.tags} tags (EC2 allows 50 per resource; runctl adds its own)`)
      .default({}),
    metricDefinitions: z
      .array(MetricDefinitionSchema)
      .max(SPEC_LIMITS.metricDefinitions, `list at most ${SPEC_LIMITS.metricDefinitions} metric definitions`)
      .default([]),
  })
  .superRefine((spec, ctx) => {
    // Caught here, at ValidateRun, rather than when the command is built on the instance.
    const conflicts = findArgConflicts(spec.hyperparameters, spec.args);
    for (const issue of conflicts) {
      ctx.addIssue({ code: 'custom', path: issue.path.split('.'), message: issue.message });
    }
    if (spec.docker !== undefined) {
      // Mounted into the container with docker's -v, which splits at ":" and ",".
      spec.data.forEach((entry, index) => {
        if (/[:,]/.test(entry.target)) ctx.addIssue({ code: 'custom', path: ['data', index, 'target'], message: 'must not contain ":" or "," in a docker run (docker -v separators)' });
      });
      if (spec.volume !== undefined && /[:,]/.test(spec.volume.mountPath)) {
        ctx.addIssue({ code: 'custom', path: ['volume', 'mountPath'], message: 'must not contain ":" or "," in a docker run (docker -v separators)' });
      }
      if (/[:,]/.test(spec.checkpoint.dir)) {
        ctx.addIssue({ code: 'custom', path: ['checkpoint', 'dir'], message: 'must not contain ":" or "," in a docker run (docker -v separators)' });
      }
    }
    // One environment: a secret would silently replace (or be replaced by) an env value.
    for (const name of Object.keys(spec.secrets ?? {})) {
      if (Object.hasOwn(spec.env, name)) {
        ctx.addIssue({ code: 'custom', path: ['secrets', name], message: `is also set in env: give ${name} either a value (env) or a secret (secrets), not both` });
      }
    }
    if (Object.keys(spec.hyperparameters).length > SPEC_LIMITS.hyperparameters) {
      ctx.addIssue({ code: 'custom', path: ['hyperparameters'], message: `must have at most ${SPEC_LIMITS.hyperparameters} entries` });
    }
    // What is stored and shipped is the spec with its defaults: it must fit too.
    const size = specSizeIssue(spec, '(root)');
    if (size !== undefined) ctx.addIssue({ code: 'custom', path: [], message: size.message });
    if (conflicts.length === 0) {
      // The kernel refuses (E2BIG) an exec whose argv and environment together pass ARG_MAX.
      const bytes = argvEnvBytes(trainingArgvOrEmpty(spec), spec.env);
      if (bytes > SPEC_LIMITS.argvEnvBytes) {
        ctx.addIssue({
          code: 'custom',
          path: ['args'],
          message: `the training command and env come to ${bytes} bytes; at most ${SPEC_LIMITS.argvEnvBytes} fit in one exec (put large values in a file in the code bundle)`,
        });
      }
    }
    for (const issue of multiNodeIssues(spec)) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
    // A container asking for GPUs on a CPU type would fail at `docker run --gpus` ("could not
    // select device driver") after an instance was paid for: refuse it before.
    const gpus = typeof spec.docker === 'object' ? spec.docker.gpus : 'auto';
    if (gpus !== 'auto' && gpus !== 'none') {
      const without = spec.instance.types.filter((type) => !hasNvidiaGpu(type));
      if (without.length > 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['docker', 'gpus'],
          message: `asks for GPUs, but ${without.join(', ')} ${without.length === 1 ? 'has' : 'have'} no NVIDIA GPU: use GPU types (g5, g6, p4d, …) or docker.gpus "auto"`,
        });
      }
    }
  });

/** The training argv, or none when the spec has other issues (they are reported on their own fields). */
function trainingArgvOrEmpty(spec: Parameters<typeof buildTrainingArgv>[0]): string[] {
  try {
    return buildTrainingArgv(spec);
  } catch {
    return [];
  }
}

/**
 * The run spec schema. Raw input is checked first (forbidden keys such as `__proto__`, lone
 * surrogates, oversized strings, nesting, the whole size) so that no later step ever reads a
 * value that cannot be stored, shipped or exec'd; then the fields. API, schedules and ValidateRun
 * all parse with this one schema.
 */
export const RunSpecSchema = z
  .unknown()
  .superRefine((input, ctx) => {
    for (const issue of rawInputIssues(input)) {
      ctx.addIssue({ code: 'custom', path: issue.path === '(root)' ? [] : issue.path.split('.'), message: issue.message });
    }
    const size = specSizeIssue(input, '(root)');
    if (size !== undefined) ctx.addIssue({ code: 'custom', path: [], message: size.message });
  })
  .pipe(RunSpecFieldsSchema);

export type RunSpecInput = z.input<typeof RunSpecFieldsSchema>;
export type RunSpec = z.output<typeof RunSpecSchema>;

/** A union branch whose only complaint is the input's type or value at its root was written for another form. */
function isOtherForm(branch: readonly z.core.$ZodIssue[]): boolean {
  return branch.every((i) => i.path.length === 0 && (i.code === 'invalid_type' || i.code === 'invalid_value'));
}

function explain(issue: z.core.$ZodIssue, prefix: readonly PropertyKey[]): FieldIssue[] {
  const path = [...prefix, ...issue.path];
  if (issue.code === 'invalid_union') {
    // A field that takes two forms (a string or an object) reports the form the input was in.
    const tried = issue.errors.filter((branch) => !isOtherForm(branch));
    const [only] = tried;
    if (tried.length === 1 && only !== undefined) return only.flatMap((inner) => explain(inner, path));
  }
  if (issue.code === 'invalid_key') return issue.issues.flatMap((inner) => explain(inner, path));
  const required = issue.code === 'invalid_type' && 'input' in issue && issue.input === undefined;
  return [{
    path: path.map(String).join('.') || '(root)',
    message: required ? `is required (expected ${issue.expected})` : issue.message,
  }];
}

/** Turns zod issues into field-level messages: `instance.types.0: must be an EC2 instance type like g5.xlarge`. */
export function toFieldIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.flatMap((issue) => explain(issue, []));
}

/** What a spec is checked against besides its own fields: the stack it runs in. */
export interface SpecContext {
  /** The stack's runs bucket: its `runs/` prefix holds every run's files, `bundles/` the code uploads. */
  runsBucket: string;
  /** The stack's secrets prefix and the run's owner; without them a spec with secrets is refused. */
  secrets?: SecretsScope;
}

/** `s3://bucket/key` → [bucket, key]. */
function splitS3Uri(uri: string): [bucket: string, key: string] {
  const rest = uri.slice('s3://'.length);
  const slash = rest.indexOf('/');
  return slash === -1 ? [rest, ''] : [rest.slice(0, slash), rest.slice(slash + 1)];
}

/** A prefix or object of the runs bucket that reaches into `runs/` (the bucket's root included). */
function reachesRuns(key: string): boolean {
  const trimmed = key.replace(/\/+$/, '');
  return trimmed === '' || trimmed === 'runs' || key.startsWith('runs/');
}

/**
 * Where the spec points inside the runs bucket. A run's instance may read what the spec names,
 * so naming `runs/<another run>/…` would copy another run's checkpoints, logs or outputs in:
 * code comes only from the content-addressed uploads (`bundles/<sha256>.tar.gz`), and data and
 * dataset volumes never from `runs/`. Other buckets are the owner's own to grant.
 */
export function runsBucketIssues(spec: Pick<RunSpec, 'code' | 'data' | 'volume'>, context: SpecContext): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const { runsBucket } = context;
  const [bundleBucket, bundleKey] = splitS3Uri(spec.code.bundle);
  if (bundleBucket === runsBucket && !/^bundles\/[0-9a-f]{64}\.tar\.gz$/.test(bundleKey)) {
    issues.push({
      path: 'code.bundle',
      message: `must be a code bundle uploaded through POST /uploads (s3://${runsBucket}/bundles/<sha256>.tar.gz, as runctl submit does), not another key of the runs bucket`,
    });
  }
  spec.data.forEach((entry, index) => {
    const [bucket, key] = splitS3Uri(entry.source);
    if (bucket === runsBucket && reachesRuns(key)) {
      issues.push({ path: `data.${index}.source`, message: `must not point into s3://${runsBucket}/runs/, where every run's files live; copy the data you need to its own prefix or bucket` });
    }
  });
  if (spec.volume !== undefined) {
    const [bucket, key] = splitS3Uri(spec.volume.dataset);
    if (bucket === runsBucket && reachesRuns(key)) {
      issues.push({ path: 'volume.dataset', message: `must not point into s3://${runsBucket}/runs/, where every run's files live` });
    }
  }
  return issues;
}

/**
 * Validates a run spec; throws RunInvalidError naming each bad field and what to fix. With a
 * context (the API, schedules and ValidateRun pass the stack's), it also refuses locations that
 * reach into other runs' files and secrets outside the owner's secrets path.
 */
export function parseRunSpec(input: unknown, context?: SpecContext): RunSpec {
  // reportInput lets a missing field read "is required"; the inputs never leave this function.
  const result = RunSpecSchema.safeParse(input, { reportInput: true });
  if (result.success) {
    const located = context === undefined
      ? []
      : [...runsBucketIssues(result.data, context), ...secretRefIssues(result.data.secrets ?? {}, context.secrets)];
    if (located.length === 0) return result.data;
    throw new RunInvalidError(`Invalid run spec: ${located.map((i) => `${i.path}: ${i.message}`).join('; ')}`, located);
  }
  const issues = toFieldIssues(result.error);
  throw new RunInvalidError(
    `Invalid run spec: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
    issues,
  );
}
