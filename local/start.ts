/**
 * `npm start`: the README's first command. Starts the embedded local backend under `.runctl/`,
 * uploads the linear example and its dataset to the local S3, submits a run, shows its phase,
 * attempt and live metrics, interrupts it once like a spot reclaim (unless `--no-interrupt`),
 * and prints the summary. Exits non-zero unless the run SUCCEEDED.
 *
 * With `--docker` the run trains in a container: the image is built from the example's
 * Dockerfile on the local Docker engine and pushed to the local registry first
 * (scripts/docker-test-env.sh start sets both up).
 *
 * With `--nodes N` it trains examples/ddp across N local nodes, interrupts node 1, and shows the
 * run resume with that node alone replaced (local/start-nodes.ts).
 *
 * With `--sweep` it runs a 4-trial learning-rate sweep of the example instead, one trial stopped
 * early by the median rule, prints the comparison and registers the best model (local/start-sweep.ts).
 *
 *   npm start [-- --no-interrupt] [--docker] [--epochs 12] [--root .runctl]
 *   npm start -- --sweep [--root .runctl]
 *   npm start -- --nodes 2 [--epochs 8] [--root .runctl]
 */
import { parseArgs } from 'node:util';
import { preflight } from './preflight';
import { registerRawImports } from './runtime-raw-imports';

/** The epoch after which the first attempt waits for the simulated reclaim. */
const HOLD_EPOCH = 3;
const USAGE =
  'usage: npm start -- [--no-interrupt] [--docker] [--epochs N] [--root DIR]\n       npm start -- --sweep [--root DIR]\n       npm start -- --nodes N [--epochs N] [--root DIR]';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      'no-interrupt': { type: 'boolean', default: false },
      docker: { type: 'boolean', default: false },
      sweep: { type: 'boolean', default: false },
      nodes: { type: 'string' },
      epochs: { type: 'string', default: '12' },
      root: { type: 'string', default: '.runctl' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.sweep && (values.docker || values['no-interrupt'])) {
    console.error(`--sweep runs its own 4 trials on the host: it takes no --docker or --no-interrupt\n${USAGE}`);
    return 2;
  }
  const nodes = values.nodes === undefined ? undefined : Number(values.nodes);
  if (nodes !== undefined && (!Number.isInteger(nodes) || nodes < 2 || nodes > 8 || values.sweep || values.docker || values['no-interrupt'])) {
    console.error(`--nodes takes a whole number from 2 to 8 (local nodes share this machine) and no --sweep, --docker or --no-interrupt, got ${values.nodes}\n${USAGE}`);
    return 2;
  }
  const epochs = Number(values.epochs);
  if (!Number.isInteger(epochs) || epochs < 2) {
    console.error(`--epochs must be a whole number of at least 2, got ${values.epochs}\n${USAGE}`);
    return 2;
  }
  const problems = preflight();
  if (problems.length > 0) {
    console.error('runctl needs a few tools to run training locally:');
    for (const problem of problems) console.error(`  - ${problem.message}`);
    return 1;
  }

  // The handlers log JSON lines for CloudWatch; here the terminal shows the run instead.
  process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
  registerRawImports();
  const { startLocalBackend } = await import('./runtime');
  const { prepareExample, exampleSpec } = await import('../examples/linear/prepare');
  const { followRun, readMetrics, renderSummary, summarize } = await import('./summary');

  const started = Date.now();
  console.log(`Starting the local backend under ${values.root}/ (S3, DynamoDB, Step Functions, EventBridge, compute) …`);
  const backend = await startLocalBackend({ root: values.root, persist: true });
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    console.log('\nStopping: terminating local instances …');
    await backend.stop({ terminateInstances: true });
    process.exit(code);
  };
  // Ctrl-C in a terminal reaches both tsx and this process: the second SIGINT must not cut the clean-up short.
  process.on('SIGINT', () => void stop(130));
  process.on('SIGTERM', () => void stop(143));
  try {
    if (values.docker && !backend.docker.available) {
      console.error(`--docker: ${backend.docker.reason}`);
      return 1;
    }
    if (backend.resumed.length > 0) console.log(`Resumed ${backend.resumed.length} run(s) left live by an earlier start: ${backend.resumed.join(', ')}`);
    if (nodes !== undefined) {
      const { runNodesDemo } = await import('./start-nodes');
      // Fewer epochs than the single-node demo: every epoch of DDP runs every node's process.
      return await runNodesDemo(backend, { nodes, epochs: values.epochs === '12' ? 8 : epochs }, started);
    }
    if (values.sweep) {
      const { runSweepDemo } = await import('./start-sweep');
      return await runSweepDemo(backend, started);
    }
    // The container has Python 3 and no torch: the pure Python script.
    const example = await prepareExample(backend.s3, backend.services.bucket, { dataset: { rows: 20_000 }, preferTorch: !values.docker });
    console.log(`Code bundle ${example.bundle}\nDataset     ${example.dataset} → /data\nScript      ${example.entrypoint}`);
    // Epochs last at least a second (PyTorch trains this MLP far faster). With the simulated spot
    // reclaim, the first attempt holds after epoch HOLD_EPOCH, checkpointed, until the warning's
    // stop signal: the reclaim lands mid-training, after a checkpoint, on any machine.
    const holdEpoch = Math.min(HOLD_EPOCH, epochs - 1);
    const hold: Record<string, number> = values['no-interrupt'] ? {} : { hold_after_epoch: holdEpoch };
    const submitted = await backend.submit({
      spec: {
        ...exampleSpec(example, { epochs, lr: 0.3, batch_size: 32, hidden: 32, min_epoch_seconds: 1, ...hold }),
        // Built from examples/linear/Dockerfile before the first instance, then reused.
        ...(values.docker ? { docker: 'auto' } : {}),
      },
    });
    const runId = submitted.runId;
    console.log(`Submitted run ${runId}\n`);

    let interrupted = values['no-interrupt'];
    const record = await followRun(backend, runId, started, async (current) => {
      // One simulated spot reclaim, once the held epoch's checkpoint is safe in S3, so the
      // resume shows. An earlier checkpoint is not enough: the reclaim must find the script holding.
      if (!interrupted && current.status === 'TRAINING' && ((await backend.artifacts.latestCheckpoint(runId))?.epoch ?? 0) >= holdEpoch) {
        interrupted = true;
        const result = await backend.interrupt(runId);
        console.log(`  ⚡ spot interruption warning for ${result.instanceId} (attempt ${result.attempt}); reclaimed at ${result.reclaimAt}`);
      }
    });
    const metrics = await readMetrics(backend.s3, backend.services.bucket, runId);
    const latest = await backend.artifacts.latestCheckpoint(runId);
    console.log(renderSummary(summarize(record, metrics, Date.now() - started, latest?.uri)));
    return record.status === 'SUCCEEDED' ? 0 : 1;
  } finally {
    if (!stopping) {
      stopping = true;
      await backend.stop({ terminateInstances: true });
    }
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  },
);
