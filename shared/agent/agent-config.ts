import { z } from 'zod';
import { SecretRefSchema } from '../domain/secret-refs';
import { MAX_NODES, MAX_NPROC_PER_NODE } from '../domain/multi-node';

/**
 * The configuration the on-instance agent (agent.sh) runs with, one per attempt. The launch
 * handler builds it, `buildAgentLaunchCommand` ships it as base64 JSON inside the SSM command,
 * and the agent reads it with python3. It holds no credential and no task token: the agent
 * reports through the control plane's agent routes (see `control`), which relay its callbacks
 * with the token stored on the run record, so no token ever reaches the instance.
 */

/** Ids that end up in instance paths and in the text of SSM commands: no shell metacharacters. */
export const AgentIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'letters, digits, ".", "_" or "-", starting with a letter or digit');

const S3UriSchema = z.string().regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/.*$/, 'an s3://bucket/key URI');

/** An absolute instance path; the agent prefixes it with RUNCTL_INSTANCE_ROOT. */
const InstancePathSchema = z
  .string()
  .regex(/^\/[^\0\n]*$/, 'an absolute path')
  .refine((path) => !path.split('/').includes('..'), 'no ".." segments');

/** Where the agent reaches the control plane: the base URL of runctl's HTTP API (no whitespace or quotes). */
export const ControlSchema = z.object({
  endpoint: z
    .string()
    .regex(/^https?:\/\/[A-Za-z0-9.-]+(:\d+)?(\/[A-Za-z0-9._~-]+)*\/?$/, 'an http(s) base URL such as https://abc123.execute-api.us-east-1.amazonaws.com'),
});

const SignalSchema = z
  .string()
  .regex(/^(SIG)?[A-Z0-9+-]+$/, 'a signal name such as SIGTERM or SIGINT')
  .transform((signal) => (signal.startsWith('SIG') ? signal.slice(3) : signal));

/** A path mounted into the training container at the same place: docker's `-v` splits at ":" and ",". */
const MountPathSchema = InstancePathSchema.refine((path) => !/[:,]/.test(path), 'no ":" or "," (docker -v separators)');

/**
 * Train inside a container. The agent logs in to `registry` (ECR, with the instance role's
 * password piped to `docker login --password-stdin`), pulls `image`, and runs the training
 * through `docker run --init --gpus …` (the layout of `dockerRunArgv` in docker.ts) with the
 * code, checkpoint, output and resume dirs and `mounts` bound at the same paths as on the
 * instance, so RUNCTL_* paths mean the same place inside and outside.
 */
export const AgentDockerSchema = z.object({
  /** Pulled and run by digest when it came from a build (`<repo>@sha256:…`). */
  image: z.string().regex(/^[a-z0-9][a-z0-9._/:@-]*$/, 'an image reference like registry/repository@sha256:…'),
  /**
   * Registry host to log in to with `aws ecr get-login-password`: ECR, or the loopback registry
   * that stands in for it on the local backend. Absent for a public image.
   */
  registry: z
    .string()
    .regex(
      /^(\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?|(127\.0\.0\.1|localhost):\d{1,5})$/,
      'an ECR registry host like 123456789012.dkr.ecr.us-east-1.amazonaws.com',
    )
    .optional(),
  /** Region of the registry; default: the run's region. */
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'a region like us-east-1').optional(),
  /**
   * `auto`: `--gpus all` when `nvidia-smi -L` lists a GPU on the instance, none otherwise (a CPU
   * type has no NVIDIA runtime, and `--gpus` there fails "could not select device driver").
   * `all` or a count: asked for by the spec; `none`: never.
   */
  gpus: z.union([z.literal('auto'), z.literal('all'), z.literal('none'), z.number().int().min(1)]).default('auto'),
  /** Data targets (read-write) and the dataset volume (read-only), besides the agent's own dirs. */
  mounts: z.array(z.object({ path: MountPathSchema, readOnly: z.boolean().default(false) })).default([]),
});

export const MetricDefinitionSchema = z.object({
  name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_.:/-]{0,127}$/, 'a metric name'),
  /** A Python regular expression; its first group (or the whole match) is the value. */
  regex: z.string().min(1),
});

/**
 * One node of a multi-node run (docs/multi-node.md): its rank, the rendezvous every node of the
 * attempt shares, and the launcher. The agent exports RUNCTL_NODE_RANK, RUNCTL_NUM_NODES,
 * RUNCTL_MASTER_ADDR and RUNCTL_MASTER_PORT to the training, and with `distributed` starts
 * `torchrun` with them (the argv of `torchrunArgv`, shared/agent/node.ts), `argv` being the
 * script and its arguments. A rank above 0 uploads its log under its own key, writes no
 * metrics, and with `checkpoint.ranks: "all"` answers rank 0's checkpoint rounds.
 */
export const AgentNodeSchema = z
  .object({
    /** 0 is the node whose address is the rendezvous and whose metrics are the run's. */
    rank: z.number().int().min(0).max(MAX_NODES - 1),
    count: z.number().int().min(1).max(MAX_NODES),
    /** Rank 0's private address (an IP address or a host name): no shell metacharacters. */
    masterAddr: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.:-]{0,252}$/, 'an IP address or host name'),
    masterPort: z.number().int().min(1024).max(65535),
    /** New for every attempt, the same on every node of it: torchrun's `--rdzv-id`. */
    rendezvousId: AgentIdSchema,
    /** Start the command through this launcher; absent: the command reads the environment itself. */
    distributed: z
      .object({
        launcher: z.literal('torchrun'),
        nprocPerNode: z.union([z.literal('auto'), z.number().int().min(1).max(MAX_NPROC_PER_NODE)]),
      })
      .optional(),
    /**
     * With `checkpoint.ranks: "all"`: how long rank 0 waits for every rank's part of a checkpoint,
     * and a rank above 0 for rank 0's last round, before giving up on it (the previous complete
     * checkpoint stays the latest). Default 90 s, the default grace period.
     */
    partsWaitSeconds: z.number().positive().default(90),
  })
  .refine((node) => node.rank < node.count, { path: ['rank'], message: 'must be below count' });

export const AgentConfigSchema = z.object({
  runId: AgentIdSchema,
  /** 1-based attempt number. */
  attempt: z.number().int().min(1).max(9999),
  region: z.string().min(1),
  bucket: z.string().min(3),
  /** `runs/<runId>`, no trailing slash. */
  runPrefix: z.string().regex(/^[^/].*[^/]$/, 'a key prefix without leading or trailing "/"'),
  /** s3 URI of the code bundle (.tar.gz). */
  codeBundle: S3UriSchema,
  /** s3 URI prefix of a complete checkpoint to resume from. */
  resumeFrom: S3UriSchema.optional(),
  /**
   * The full training command; every element reaches the process as one argv element. With
   * `node.distributed`, the script and its arguments that the launcher runs (`agentArgvFor`).
   */
  argv: z.array(z.string().refine((arg) => !arg.includes('\0'), 'no NUL characters')).min(1),
  env: z
    .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name'), z.string())
    .default({}),
  /**
   * Environment variable → secret reference (`ssm:<name>` or a Secrets Manager ARN). The agent
   * reads each with the run's credentials before anything else and puts the values in the
   * training process's environment only; this config, like the SSM command, holds references.
   */
  secrets: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name'), SecretRefSchema).default({}),
  checkpoint: z
    .object({
      dir: InstancePathSchema.default('/opt/runctl/checkpoints'),
      intervalSeconds: z.number().positive().default(300),
      stopSignal: SignalSchema.default('TERM'),
      /** Spot gives two minutes' notice; the upload needs part of it. */
      graceSeconds: z.number().nonnegative().default(90),
      /** Absent or `rank0`: rank 0's dir is the checkpoint; `all`: one part per rank (with `node`). */
      ranks: z.enum(['rank0', 'all']).optional(),
    })
    .prefault({}),
  outputDir: InstancePathSchema.default('/opt/runctl/output'),
  workDir: InstancePathSchema.default('/opt/runctl/work'),
  metricDefinitions: z.array(MetricDefinitionSchema).default([]),
  /** Run the training in this container instead of directly on the instance. */
  docker: AgentDockerSchema.optional(),
  /** What the code bundle may unpack to (its compressed size is capped at upload). */
  bundleLimits: z
    .object({
      maxUnpackedBytes: z.number().int().positive().default(4 * 1024 ** 3),
      maxEntries: z.number().int().positive().default(100_000),
    })
    .prefault({}),
  heartbeatSeconds: z.number().positive().default(60),
  /** AWS advises polling the spot instance-action every 5 seconds. */
  imdsPollSeconds: z.number().positive().default(5),
  /** The agent routes it reports to and takes its run's credentials from. */
  control: ControlSchema,
  /** This node of a multi-node run; absent: a single-node run, exactly as before. */
  node: AgentNodeSchema.optional(),
})
  // torchrun reads an argument starting with "-" as one of its own options, not as the script.
  .refine((c) => c.node?.distributed === undefined || !(c.argv[0] ?? '').startsWith('-'), {
    path: ['argv', 0],
    message: 'must be the script torchrun runs, not an option',
  });

export type AgentConfig = z.infer<typeof AgentConfigSchema>;
/** What a caller writes before defaults are applied. */
export type AgentConfigInput = z.input<typeof AgentConfigSchema>;

/** Validates and fills in defaults; throws a ZodError that names the bad field. */
export function parseAgentConfig(input: unknown): AgentConfig {
  return AgentConfigSchema.parse(input);
}
