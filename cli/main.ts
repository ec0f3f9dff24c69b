import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { CommandContext } from './context';
import { CliError, UsageError } from './errors';
import { runctlVersion } from './version';

// Only argument parsing and help load at start; each command's code (and zod, the SDK's
// credential chain, the local backend) is imported when that command runs.

const HELP = `runctl — run ML training on EC2 spot instances, through interruptions, to a finished model

Usage: runctl <command> [options]

  submit [DIR] [ENTRYPOINT]   pack DIR (default .), upload it and start a run
      -f, --file run.yaml        a run spec (YAML or JSON); flags override its fields
      --entrypoint train.py      script to run, relative to DIR
      --hyperparameters k=v,…    passed to the script as --k v (alias --hyperparams)
      --instance-type a,b        instance types in order of preference
      --spot | --on-demand       market (default spot)
      --data s3://…:/data        copy an S3 prefix to a path on the instance (repeatable)
      --max-cost USD             stop the run (checkpointed) when it has cost this much
      --max-runtime 12h          stop the run after this long
      --name NAME                run name (default: the directory name)
      --follow                   follow the run to its end
      --rerun                    start a new run even if this exact submission ran before
      --client-token TOKEN       idempotency token (default: derived from spec + code hash)
      --no-check-args            skip checking the hyperparameters against the script's argparse flags
  ls [--status S] [--limit N] [--all]    your runs, newest first
  status RUN [--follow]                  phase, attempts, cost so far, newest checkpoint
  logs RUN [-f] [--attempt N] [--tail N] [--node R] every attempt's log (or one; node R's), live with -f
  metrics RUN [--metric loss] [--last N] metrics table and a plot over steps
  checkpoints RUN                        complete checkpoints, newest first
  cancel RUN [--force]                   checkpoint and stop (--force: stop now)
  whoami                                 the owner your runs belong to, its owner key and secrets path
  sweep [DIR] [ENTRYPOINT]    pack DIR as submit does and start a hyperparameter sweep over it
      --grid lr=0.1,0.01         a grid axis (repeatable): every combination is a trial
      --random 'lr=loguniform(1e-4,1e-1)' --trials 40 [--seed N]
                                 random draws (uniform, loguniform, int, choice)
      --objective loss [--maximize]   what to optimise (default: minimise loss)
      --max-parallel N, --max-trials N, --budget USD (the whole sweep; --max-cost caps each trial)
      --early-stopping median    stop trials worse than the median of the others
      and the submit options (--entrypoint, --hyperparameters, --instance-type, --data, --no-check-args, …)
  sweeps status SWEEP | sweeps stop SWEEP
  experiments ls                         your experiments (every run belongs to one)
  compare EXP [--metric M] [--maximize] [--csv]
                             hyperparameters × final and best metrics, best first, and a plot
  models register RUN --name NAME        the run's outputs become the next version of model NAME
  models ls                              your models: latest version and stages
  models show NAME [--version N]         versions, stages and their history; or one version's files and lineage
  models download NAME VERSION [--to DIR]
                             each file of a version (VERSION may be a stage), checked against its sha256
  models promote NAME VERSION --stage production
                             point a stage at a version (one version per stage, history kept)
  data manifest DIR           write DIR/_runctl_manifest.json (path, size, sha256 of every file): upload it with
                             the dataset and the prefetch checks each copy against it
  volumes prewarm --dataset s3://bucket/prefix/ --az us-east-1a --size GiB
                             fill an EBS volume with a dataset and snapshot it, for runs to mount
      --type gp3                 gp3 (default), gp2, io1, io2, st1, sc1
      --iops N, --throughput N   gp3 and io1/io2 IOPS; gp3 MiB/s
      --from-snapshot snap-…     restore this snapshot and sync the dataset onto it
      --client-token TOKEN       idempotency token (default: derived from the request)
  volumes ls                             the pre-warmed volumes (dataset, AZ, size, volume, snapshot)
  images build [DIR]          pack DIR (default .) as submit does and build its Docker image in ECR
      --dockerfile PATH          Dockerfile inside DIR (default Dockerfile, docker/ or .docker/Dockerfile)
      --repository NAME          ECR repository under runctl/ (default training)
      --rebuild                  build again even when this code has an image
  ui [--port 4568] [--open]              the web dashboard on 127.0.0.1 (runs, timelines, charts, logs)
  dev [--port 4567] [--root .runctl]     serve the API on localhost over the embedded local backend,
                                         keeping runs, objects and instances under --root
  local interrupt RUN [--root .runctl]   a spot interruption of RUN on runctl dev (the endpoint from
                                         --endpoint, RUNCTL_ENDPOINT, or the dev.json under --root)
  local secrets set NAME [--from-env VAR] | ls | rm NAME  [--root .runctl]
                                         secrets for runs on runctl dev (value from stdin or VAR);
                                         set prints the reference to put in spec.secrets

Options for every command:
  --endpoint URL    the runctl API (or RUNCTL_ENDPOINT, or "endpoint" in ~/.runctl/config.json)
  --profile NAME    AWS profile for signing (or AWS_PROFILE)
  --region REGION   AWS region of the API (or AWS_REGION)
  --json            exactly one JSON document on stdout (progress and warnings on stderr)
  --debug           on an error, the stack trace and its causes too
  --version         the runctl version

Local endpoints (127.0.0.1, localhost) are called unsigned; deployed ones with SigV4.
Docs: docs/cli.md`;

/** The instance type a submit to `runctl dev` gets when it names none: the local backend has one kind. */
const LOCAL_INSTANCE_TYPES = ['local.sandbox'];

const GLOBAL = {
  endpoint: { type: 'string' },
  profile: { type: 'string' },
  region: { type: 'string' },
  json: { type: 'boolean', default: false },
  debug: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} satisfies ParseArgsConfig['options'];

/** The run-spec options a submit and a sweep's base run both take. */
const SPEC_OPTIONS = {
  file: { type: 'string', short: 'f' },
  entrypoint: { type: 'string' },
  hyperparameters: { type: 'string' },
  hyperparams: { type: 'string' },
  'instance-type': { type: 'string' },
  'instance-types': { type: 'string' },
  spot: { type: 'boolean' },
  'on-demand': { type: 'boolean' },
  data: { type: 'string', multiple: true },
  'max-cost': { type: 'string' },
  'max-runtime': { type: 'string' },
  name: { type: 'string' },
} satisfies ParseArgsConfig['options'];

const COMMAND_OPTIONS = {
  submit: {
    ...SPEC_OPTIONS,
    follow: { type: 'boolean', default: false },
    rerun: { type: 'boolean', default: false },
    'client-token': { type: 'string' },
    'no-check-args': { type: 'boolean', default: false },
  },
  ls: { status: { type: 'string' }, limit: { type: 'string' }, all: { type: 'boolean', default: false } },
  status: { follow: { type: 'boolean', default: false } },
  logs: { follow: { type: 'boolean', short: 'f', default: false }, attempt: { type: 'string' }, tail: { type: 'string' }, node: { type: 'string' } },
  metrics: { metric: { type: 'string' }, last: { type: 'string' } },
  checkpoints: {},
  cancel: { force: { type: 'boolean', default: false } },
  whoami: {},
  sweep: {
    ...SPEC_OPTIONS,
    experiment: { type: 'string' },
    grid: { type: 'string', multiple: true },
    random: { type: 'string', multiple: true },
    trials: { type: 'string' },
    seed: { type: 'string' },
    objective: { type: 'string' },
    maximize: { type: 'boolean', default: false },
    'max-parallel': { type: 'string' },
    'max-trials': { type: 'string' },
    budget: { type: 'string' },
    'early-stopping': { type: 'string' },
    'client-token': { type: 'string' },
    'no-check-args': { type: 'boolean', default: false },
  },
  'sweeps status': {},
  'sweeps stop': {},
  'experiments ls': {},
  compare: { metric: { type: 'string' }, maximize: { type: 'boolean', default: false }, csv: { type: 'boolean', default: false } },
  'models register': { name: { type: 'string' } },
  'models ls': {},
  'models show': { version: { type: 'string' } },
  'models download': { to: { type: 'string' } },
  'models promote': { stage: { type: 'string' } },
  'volumes prewarm': {
    dataset: { type: 'string' },
    az: { type: 'string' },
    size: { type: 'string' },
    type: { type: 'string' },
    iops: { type: 'string' },
    throughput: { type: 'string' },
    'from-snapshot': { type: 'string' },
    'client-token': { type: 'string' },
  },
  'volumes ls': {},
  ui: { port: { type: 'string' }, open: { type: 'boolean', default: false } },
  'images build': {
    dockerfile: { type: 'string' },
    repository: { type: 'string' },
    rebuild: { type: 'boolean', default: false },
  },
} satisfies Record<string, ParseArgsConfig['options']>;

type CommandName = keyof typeof COMMAND_OPTIONS;

function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMAND_OPTIONS, name);
}

function positiveInt(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9]\d*$/.test(value)) throw new UsageError(`--${flag} must be a positive whole number (got "${value}")`);
  return Number(value);
}

function rank(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^(0|[1-9]\d*)$/.test(value)) throw new UsageError(`--${flag} must be a node rank, a whole number from 0 (got "${value}")`);
  return Number(value);
}

function onlyRun(command: string, positionals: string[]): string {
  const [runId, ...extra] = positionals;
  if (runId === undefined) throw new UsageError(`runctl ${command} needs a run id, e.g. runctl ${command} r-0123abcd (see runctl ls)`);
  if (extra.length > 0) throw new UsageError(`Unexpected arguments: ${extra.join(' ')}`);
  return runId;
}

/** `models show NAME`, `models download NAME VERSION`: exactly the model name, and the version when the command takes one. */
function modelArguments(command: string, positionals: string[], count: 1 | 2): [string, string] {
  const [name, version, ...extra] = positionals;
  const usage = count === 1 ? `runctl ${command} NAME` : `runctl ${command} NAME VERSION`;
  if (name === undefined || (count === 2 && version === undefined)) throw new UsageError(`${usage} needs ${count === 1 ? 'a model name' : 'a model name and a version'} (see runctl models ls)`);
  const rest = count === 1 ? [version, ...extra] : extra;
  const unexpected = rest.filter((r): r is string => r !== undefined);
  if (unexpected.length > 0) throw new UsageError(`Unexpected arguments: ${unexpected.join(' ')}`);
  return [name, version ?? ''];
}

function versionNumber(value: string): number {
  if (!/^[1-9]\d*$/.test(value)) throw new UsageError(`VERSION must be a version number like 3 (got "${value}")`);
  return Number(value);
}

/** Commands with subcommands, and the subcommands they have. */
const GROUPS: Record<string, readonly string[]> = { volumes: ['prewarm', 'ls'], images: ['build'], experiments: ['ls'], sweeps: ['status', 'stop'], models: ['register', 'ls', 'show', 'download', 'promote'] };

/** `volumes prewarm …` → the command `volumes prewarm` and the rest of the line. */
function commandOf(argv: string[]): { command: string; rest: string[] } {
  const [first = '', second, ...rest] = argv;
  const subcommands = GROUPS[first];
  if (subcommands === undefined) return { command: first, rest: argv.slice(1) };
  if (second === '--help' || second === '-h') return { command: `${first} ${subcommands[0] ?? ''}`, rest: ['--help'] };
  if (second === undefined || !subcommands.includes(second)) {
    const got = second === undefined ? '' : ` (got "${second}")`;
    throw new UsageError(`runctl ${first} needs one of: ${subcommands.map((s) => `${first} ${s}`).join(', ')}${got}`);
  }
  return { command: `${first} ${second}`, rest };
}

/** Runs one command line; returns the exit code. */
export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env, options: { parseOnly?: boolean } = {}): Promise<number> {
  if (argv[0] === undefined || argv[0] === 'help' || argv[0] === '--help' || argv[0] === '-h') {
    console.log(HELP);
    return argv[0] === undefined ? 2 : 0;
  }
  if (argv[0] === '--version' || argv[0] === 'version') {
    console.log(`runctl ${runctlVersion()}`);
    return 0;
  }
  if (argv[0] === 'dev') return (await import('./commands/local')).runDev(argv.slice(1), options);
  if (argv[0] === 'local') return (await import('./commands/local')).runLocal(argv.slice(1), env, options);
  if (argv[0] === 'data') return (await import('./commands/data')).runData(argv.slice(1), options);
  const { command, rest } = commandOf(argv);
  if (!isCommand(command)) throw new UsageError(`Unknown command "${command}"`);

  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: { ...GLOBAL, ...COMMAND_OPTIONS[command] }, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    console.log(HELP);
    return 0;
  }
  const pick = (name: string): unknown => (Object.hasOwn(values, name) ? Object.getOwnPropertyDescriptor(values, name)?.value : undefined);
  const text = (name: string): string | undefined => {
    const value = pick(name);
    return typeof value === 'string' ? value : undefined;
  };
  const flag = (name: string): boolean => pick(name) === true;

  const takesRun = !['submit', 'ls', 'volumes prewarm', 'volumes ls', 'images build', 'experiments ls', 'compare', 'sweep', 'sweeps status', 'sweeps stop', 'models ls', 'models show', 'models download', 'models promote', 'ui', 'whoami'].includes(command);
  if (takesRun) onlyRun(command, positionals);
  // The documentation test checks every documented command line this far without running it.
  if (options.parseOnly === true) return 0;
  const [{ resolveConfig }, { ApiClient, defaultCredentials }] = await Promise.all([import('./config'), import('./api-client')]);
  const config = resolveConfig({ endpoint: values.endpoint, region: values.region, profile: values.profile }, env);
  const client = new ApiClient(config, config.local ? undefined : await defaultCredentials(config.profile));
  const pollMs = positiveInt('poll', env.RUNCTL_POLL_INTERVAL_MS) ?? 1000;
  const context: CommandContext = { client, json: values.json, out: (t) => console.log(t), err: (t) => console.error(t), pollMs };

  switch (command) {
    case 'submit': {
      const [dir, entrypoint, ...extra] = positionals;
      if (extra.length > 0) throw new UsageError(`Unexpected arguments: ${extra.join(' ')}`);
      if (flag('spot') && flag('on-demand')) throw new UsageError('Choose --spot or --on-demand, not both');
      const data = pick('data');
      return (await import('./commands/submit')).submit(context, {
        file: text('file'),
        dir,
        entrypoint: text('entrypoint') ?? entrypoint,
        name: text('name'),
        hyperparameters: text('hyperparameters') ?? text('hyperparams'),
        instanceTypes: text('instance-type') ?? text('instance-types'),
        spot: flag('spot') ? true : flag('on-demand') ? false : undefined,
        data: Array.isArray(data) ? data.filter((d): d is string => typeof d === 'string') : undefined,
        maxCost: text('max-cost'),
        maxRuntime: text('max-runtime'),
        defaultInstanceTypes: config.local ? LOCAL_INSTANCE_TYPES : undefined,
        follow: flag('follow'),
        rerun: flag('rerun'),
        clientToken: text('client-token'),
        checkArgs: !flag('no-check-args'),
      });
    }
    case 'sweep': {
      const [dir, entrypoint, ...extra] = positionals;
      if (extra.length > 0) throw new UsageError(`Unexpected arguments: ${extra.join(' ')}`);
      const strings = (name: string): string[] => {
        const value = pick(name);
        return Array.isArray(value) ? value.filter((d): d is string => typeof d === 'string') : [];
      };
      const seed = text('seed');
      if (seed !== undefined && !/^\d+$/.test(seed)) throw new UsageError(`--seed must be a whole number ≥ 0 (got "${seed}")`);
      return (await import('./commands/sweep')).submitSweep(context, {
        file: text('file'),
        dir,
        entrypoint: text('entrypoint') ?? entrypoint,
        name: text('name'),
        hyperparameters: text('hyperparameters') ?? text('hyperparams'),
        instanceTypes: text('instance-type') ?? text('instance-types'),
        spot: flag('spot') ? true : flag('on-demand') ? false : undefined,
        data: strings('data'),
        maxCost: text('max-cost'),
        maxRuntime: text('max-runtime'),
        defaultInstanceTypes: config.local ? LOCAL_INSTANCE_TYPES : undefined,
        grid: strings('grid'),
        random: strings('random'),
        trials: positiveInt('trials', text('trials')),
        seed: seed === undefined ? undefined : Number(seed),
        objective: text('objective'),
        maximize: flag('maximize'),
        maxParallel: positiveInt('max-parallel', text('max-parallel')),
        maxTrials: positiveInt('max-trials', text('max-trials')),
        budget: text('budget'),
        earlyStopping: text('early-stopping'),
        experiment: text('experiment'),
        clientToken: text('client-token'),
        checkArgs: !flag('no-check-args'),
      });
    }
    case 'sweeps status':
      return (await import('./commands/sweep')).sweepStatus(context, onlyRun(command, positionals));
    case 'sweeps stop':
      return (await import('./commands/sweep')).stopSweep(context, onlyRun(command, positionals));
    case 'ls':
      if (positionals.length > 0) throw new UsageError(`Unexpected arguments: ${positionals.join(' ')}`);
      return (await import('./commands/runs')).listRuns(context, { status: text('status'), limit: positiveInt('limit', text('limit')), all: flag('all') });
    case 'status':
      return (await import('./commands/runs')).showStatus(context, onlyRun(command, positionals), { follow: flag('follow') });
    case 'logs':
      if (values.json && flag('follow')) throw new UsageError('--json prints one document and cannot follow; drop -f (runctl logs RUN --json gives the log so far)');
      return (await import('./commands/logs')).showLogs(context, onlyRun(command, positionals), {
        follow: flag('follow'),
        attempt: positiveInt('attempt', text('attempt')),
        tail: positiveInt('tail', text('tail')),
        node: rank('node', text('node')),
      });
    case 'metrics':
      return (await import('./commands/metrics')).showMetrics(context, onlyRun(command, positionals), { metric: text('metric'), last: positiveInt('last', text('last')) });
    case 'checkpoints':
      return (await import('./commands/metrics')).showCheckpoints(context, onlyRun(command, positionals));
    case 'cancel':
      return (await import('./commands/runs')).cancelRun(context, onlyRun(command, positionals), { force: flag('force') });
    case 'whoami':
      if (positionals.length > 0) throw new UsageError(`Unexpected arguments: ${positionals.join(' ')}`);
      return (await import('./commands/whoami')).whoAmI(context, { local: config.local, region: config.region });
    case 'experiments ls':
      if (positionals.length > 0) throw new UsageError(`Unexpected arguments: ${positionals.join(' ')}`);
      return (await import('./commands/experiments')).listExperiments(context);
    case 'compare': {
      const [experiment, ...extra] = positionals;
      if (extra.length > 0) throw new UsageError(`Unexpected arguments: ${extra.join(' ')}`);
      return (await import('./commands/experiments')).compare(context, experiment, { metric: text('metric'), maximize: flag('maximize'), csv: flag('csv') });
    }
    case 'models register':
      return (await import('./commands/models')).registerModel(context, onlyRun(command, positionals), text('name'));
    case 'models ls':
      if (positionals.length > 0) throw new UsageError(`Unexpected arguments: ${positionals.join(' ')}`);
      return (await import('./commands/models')).listModels(context);
    case 'models show':
      return (await import('./commands/models')).showModel(context, modelArguments(command, positionals, 1)[0], positiveInt('version', text('version')));
    case 'models download': {
      const [name, version] = modelArguments(command, positionals, 2);
      return (await import('./commands/models')).downloadModel(context, name, version, text('to'));
    }
    case 'models promote': {
      const [name, version] = modelArguments(command, positionals, 2);
      return (await import('./commands/models')).promoteModel(context, name, versionNumber(version), text('stage'));
    }
    case 'volumes prewarm': {
      // The dataset may be given as --dataset or as the one positional argument (docs/volumes.md).
      const [dataset, ...extra] = positionals;
      if (extra.length > 0) throw new UsageError(`Unexpected arguments: ${extra.join(' ')}`);
      if (dataset !== undefined && text('dataset') !== undefined) throw new UsageError('Give the dataset once: --dataset s3://… or as the argument');
      return (await import('./commands/volumes')).prewarmVolume(context, {
        dataset: text('dataset') ?? dataset,
        az: text('az'),
        size: text('size'),
        type: text('type'),
        iops: text('iops'),
        throughput: text('throughput'),
        fromSnapshot: text('from-snapshot'),
        clientToken: text('client-token'),
      });
    }
    case 'ui': {
      if (positionals.length > 0) throw new UsageError(`Unexpected arguments: ${positionals.join(' ')}`);
      const port = text('port') === undefined ? 4568 : Number(text('port'));
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be a port number (got "${text('port') ?? ''}")`);
      return (await import('./commands/ui')).runUi(context, { port, open: flag('open'), local: config.local });
    }
    case 'volumes ls':
      if (positionals.length > 0) throw new UsageError(`Unexpected arguments: ${positionals.join(' ')}`);
      return (await import('./commands/volumes')).listVolumes(context);
    case 'images build': {
      const [dir, ...extra] = positionals;
      if (extra.length > 0) throw new UsageError(`Unexpected arguments: ${extra.join(' ')}`);
      return (await import('./commands/images')).buildImage(context, { dir, dockerfile: text('dockerfile'), repository: text('repository'), rebuild: flag('rebuild') });
    }
  }
}

/**
 * Entry point: every error is one line on stderr that says what to do; the stack trace and the
 * causes only with --debug (or RUNCTL_DEBUG=1).
 */
export async function run(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const debug = argv.includes('--debug') || env.RUNCTL_DEBUG === '1';
  try {
    process.exitCode = await main(argv, env);
  } catch (error) {
    process.exitCode = error instanceof CliError ? error.exitCode : 1;
    console.error(`runctl: ${describeError(error)}`);
    if (debug) console.error(debugReport(error));
  }
}

/** The message a user sees: a CliError's own, anything else named as a fault of runctl with the way to learn more. */
export function describeError(error: unknown): string {
  if (error instanceof CliError) return error.message;
  const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
  return `internal error: ${message} (this is a runctl bug; run again with --debug for the details)`;
}

function debugReport(error: unknown): string {
  const lines: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && depth < 5; depth += 1) {
    lines.push(current instanceof Error ? (current.stack ?? current.message) : String(current));
    current = current instanceof Error ? current.cause : undefined;
    if (current !== undefined) lines.push('caused by:');
  }
  return lines.join('\n');
}
