import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { registerRawImports } from '../local/runtime-raw-imports';
import { measureBundles } from './bundles';

/**
 * `npm run bench`: every figure of DESIGN.md §9 (see docs/performance.md). The local backend and
 * the handlers reach the agent script through a `?raw` import, so the hook goes in first and the
 * sections that need it are imported after.
 */
registerRawImports();
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';

const root = resolve(import.meta.dirname, '..');

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

async function bundles(): Promise<void> {
  const { empty, handlers } = await measureBundles(root, resolve(root, '.runctl/bench'));
  console.log('\nHandler bundles (esbuild, minified ESM, node22) and module load time (median of 5 fresh processes)');
  console.log(`${'handler'.padEnd(32)} ${'size'.padStart(11)} ${'× empty'.padStart(9)} ${'load ms'.padStart(9)} ${'× empty'.padStart(9)}`);
  for (const f of [empty, ...handlers]) {
    console.log(
      `${f.handler.padEnd(32)} ${kib(f.bytes).padStart(11)} ${(f.bytes / empty.bytes).toFixed(0).padStart(9)} ${f.loadMs.toFixed(1).padStart(9)} ${(f.loadMs / empty.loadMs).toFixed(1).padStart(9)}`,
    );
  }
}

async function transitions(): Promise<void> {
  const { measureTransitions } = await import('./transitions');
  const figures = await measureTransitions();
  console.log('\nStep Functions state transitions per run (train-run ASL on the local backend, real handlers and agent)');
  console.log(`${'run'.padEnd(34)} ${'epochs'.padStart(6)} ${'status'.padStart(10)} ${'attempts'.padStart(8)} ${'transitions'.padStart(11)} ${'of which polls'.padStart(14)} ${'wall s'.padStart(7)}`);
  for (const f of figures) {
    console.log(
      `${f.run.padEnd(34)} ${String(f.epochs).padStart(6)} ${f.status.padStart(10)} ${String(f.attempts).padStart(8)} ${String(f.transitions).padStart(11)} ${String(f.pollTransitions).padStart(14)} ${f.wallSeconds.toFixed(1).padStart(7)}`,
    );
  }
  const [one, fifty, interrupted] = figures;
  if (one === undefined || fifty === undefined || interrupted === undefined) return;
  const fixed = (f: typeof one) => f.transitions - f.pollTransitions;
  const equal = fixed(one) === fixed(fifty);
  console.log(
    `1 epoch vs 50 epochs: ${one.transitions} vs ${fifty.transitions} transitions (${fixed(one)} vs ${fixed(fifty)} without extra polls): ${equal ? 'EQUAL — training time costs no transitions' : 'NOT EQUAL'}`,
  );
  console.log(`transitions per interruption: ${fixed(interrupted)} - ${fixed(fifty)} = ${fixed(interrupted) - fixed(fifty)} (without extra polls)`);
  if (!equal) process.exitCode = 1;
}

async function spotPath(): Promise<void> {
  const { measureSpotPath } = await import('./spot-path');
  const dir = await mkdtemp(join(tmpdir(), 'runctl-bench-spot-'));
  try {
    const cases = await measureSpotPath(dir);
    console.log('\nAWS calls on the spot-warning path (real handler; dynalite, counted EC2 and SSM clients)');
    console.log(`${'case'.padEnd(40)} ${'action'.padEnd(22)} ${'ec2'.padStart(4)} ${'dynamodb'.padStart(9)} ${'ssm'.padStart(4)} ${'total'.padStart(6)}`);
    for (const c of cases) {
      console.log(
        `${c.case.padEnd(40)} ${c.action.padEnd(22)} ${String(c.calls.ec2).padStart(4)} ${String(c.calls.dynamodb).padStart(9)} ${String(c.calls.ssm).padStart(4)} ${String(c.total).padStart(6)}`,
      );
    }
    const main = cases[0];
    if (main !== undefined) console.log(`warning → "checkpoint now": ${main.total} AWS calls (must be ≤ 3): ${main.total <= 3 ? 'holds' : 'DOES NOT HOLD'}`);
    if (main !== undefined && main.total > 3) process.exitCode = 1;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function reconcilePass(): Promise<void> {
  const { measureReconcile } = await import('./reconcile');
  const dir = await mkdtemp(join(tmpdir(), 'runctl-bench-reconcile-'));
  try {
    const passes = await measureReconcile(dir, 200);
    console.log('\nReconciler: AWS calls of one pass over 200 TRAINING runs (dynalite, mocked EC2/SSM/Step Functions)');
    passes.forEach((p, i) => {
      const commands = Object.entries(p.byCommand).map(([k, v]) => `${k}×${v}`).join(', ');
      console.log(
        `pass ${i + 1}: ${p.awsRequests} requests (dynamodb ${p.byService.dynamodb}, ec2 ${p.byService.ec2}, ssm ${p.byService.ssm}, sfn ${p.byService.sfn}); costs written ${p.costsUpdated}, errors ${p.errors}, ${p.ms.toFixed(0)} ms`,
      );
      console.log(`        ${commands}`);
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function sweeps(): Promise<void> {
  const { measureSweeps } = await import('./sweeps');
  const dir = await mkdtemp(join(tmpdir(), 'runctl-bench-sweeps-'));
  try {
    const f = await measureSweeps(dir);
    console.log('\nSweeps: the sweep machine (real ASL and steps over dynalite; each trial a stand-in train-run that ends at once)');
    console.log(`${'trials'.padStart(6)} ${'parallel'.padStart(8)} ${'map'.padEnd(11)} ${'transitions'.padStart(11)} ${'/trial'.padStart(7)} ${'lambdas'.padStart(8)} ${'children'.padStart(8)} ${'dynamodb'.padStart(9)} ${'/trial'.padStart(7)} ${'ms'.padStart(7)}`);
    for (const s of f.sweeps) {
      console.log(
        `${String(s.trials).padStart(6)} ${String(s.maxParallel).padStart(8)} ${s.map.padEnd(11)} ${String(s.transitions).padStart(11)} ${(s.transitions / s.trials).toFixed(2).padStart(7)} ${String(s.lambdaInvocations).padStart(8)} ${String(s.childExecutions).padStart(8)} ${String(s.dynamodb).padStart(9)} ${(s.dynamodb / s.trials).toFixed(2).padStart(7)} ${s.ms.toFixed(0).padStart(7)}`,
      );
    }
    const last = f.sweeps.at(-2);
    if (last !== undefined) console.log(`        DynamoDB requests of the ${last.trials}-trial sweep: ${Object.entries(last.byCommand).map(([k, v]) => `${k.replace(/Command$/, '')}×${v}`).join(', ')}`);
    console.log('\nrunctl compare over one experiment (the real GET /experiments/{name}/runs over dynalite, the CLI\'s own paging, 100 runs a page)');
    console.log(`${'runs'.padStart(6)} ${'pages'.padStart(6)} ${'queries'.padStart(8)} ${'ms'.padStart(8)} ${'ms/1000 runs'.padStart(13)}`);
    for (const c of f.compare) {
      console.log(`${String(c.runs).padStart(6)} ${String(c.pages).padStart(6)} ${String(c.dynamodbQueries).padStart(8)} ${c.ms.toFixed(0).padStart(8)} ${((c.ms / c.runs) * 1000).toFixed(0).padStart(13)}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function cli(): Promise<void> {
  const { measureCli, percentile } = await import('./cli');
  const f = await measureCli();
  const ms = (v: number | undefined) => (v === undefined ? 'n/a' : `${v.toFixed(0)} ms`);
  console.log('\nCLI start (wall time, median of 7 fresh processes, this machine now)');
  console.log(`node -e 0 ${ms(f.node)} · aws --version ${ms(f.aws)} · runctl --version ${ms(f.version)} · runctl --help ${ms(f.help)} (target ≤ 150 ms) · runctl status RUN against runctl dev ${ms(f.status)} (target ≤ 400 ms)`);
  console.log(`runctl --help ${f.help <= 150 ? 'holds' : 'misses'} 150 ms; runctl status ${f.status <= 400 ? 'holds' : 'misses'} 400 ms; --help is ${(f.help - f.node).toFixed(0)} ms over bare node`);
  console.log('Live output: delay from the script printing a line to seeing it (local backend; target ≤ 2 s)');
  for (const [what, delays] of [['runctl logs -f', f.logDelays], ['metrics API, polled every 1 s', f.metricDelays]] as const) {
    console.log(`${what.padEnd(32)} ${String(delays.length).padStart(3)} lines  p50 ${ms(percentile(delays, 50))}  p95 ${ms(percentile(delays, 95))}  max ${ms(Math.max(...delays))}`);
  }
}

async function recovery(checkpointBytes?: number): Promise<void> {
  const { measureRecovery, TIME_SCALE, CHECKPOINT_BYTES } = await import('./recovery');
  const bytes = checkpointBytes ?? CHECKPOINT_BYTES;
  const { model, timelines, target, ratio, handoverRatio, idealRatio } = await measureRecovery((line) => console.log(`  ${line}`), bytes);
  console.log(
    `\nRecovery timeline under the ${model.name} latency model (launch ${model.launchMs / 1000} s, SSM online ${model.ssmOnlineMs / 1000} s, ` +
      `S3 ${(model.s3DownloadBytesPerSecond ?? 0) / 1e6} MB/s down / ${(model.s3UploadBytesPerSecond ?? 0) / 1e6} MB/s up): ${bytes / 1e9} GB checkpoint, 10 GB dataset; ` +
      `model seconds after the warning (the handover: after its rebalance recommendation, no warning) ` +
      `(${TIME_SCALE === 1 ? 'run in real time' : `run ${TIME_SCALE}× faster and multiplied back; the stop signal in real seconds`})`,
  );
  const cell = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(1)).padStart(12);
  console.log(
    `${'path'.padEnd(12)} ${'status'.padEnd(10)} ${'stop signal'.padStart(12)} ${'checkpoint'.padStart(12)} ${'repl. ready'.padStart(12)} ${'data ready'.padStart(12)} ${'agent start'.padStart(12)} ${'resumed'.padStart(12)} ${'idle'.padStart(12)}`,
  );
  for (const t of timelines) {
    console.log(
      `${t.path.padEnd(12)} ${t.status.padEnd(10)} ${cell(t.stopSignal)} ${cell(t.checkpointComplete)} ${cell(t.replacementReady)} ${cell(t.dataReady)} ${cell(t.agentStarted)} ${cell(t.trainingResumed)} ${cell(t.idle)}`,
    );
  }
  for (const t of timelines) if (t.status !== 'SUCCEEDED') console.log(`${t.path} run ${t.runId} ended ${t.status}: ${t.statusReason ?? 'no reason recorded'}`);
  const overlapped = timelines.find((t) => t.path === 'overlapped');
  const resumed = overlapped?.trainingResumed ?? Infinity;
  console.log(`overlapped warning → resumed ${resumed.toFixed(1)} s; target ≤ max(launch + readiness + copy, upload) + agent start + 5 s = ${target.toFixed(1)} s: ${resumed <= target ? 'holds' : 'DOES NOT HOLD'}`);
  console.log(
    `sequential / overlapped: ${ratio.toFixed(2)}× (${ratio >= 2 ? 'at least 2×' : 'under 2×'}; ` +
      `overlapping can give at most (upload + launch + readiness + copy + agent start) / (max(upload, launch + readiness + copy) + agent start) = ${idealRatio.toFixed(2)}× under this model)`,
  );
  console.log(
    `idle (stop signal → training resumed), sequential / handover: ${handoverRatio.toFixed(2)}× (${handoverRatio >= 2 ? 'at least 2×' : 'under 2×'}): ` +
      'a rebalance recommendation early enough lets the replacement be prepared while the old instance trains on',
  );
  const stops = timelines.filter((t) => t.path !== 'handover').map((t) => t.stopSignal ?? Infinity);
  console.log(`warning → stop signal at the script: ${stops.map((s) => `${s.toFixed(2)} s`).join(', ')} (target ≤ 1 s: ${stops.every((s) => s <= 1) ? 'holds' : 'DOES NOT HOLD'})`);
  if (!(resumed <= target) || timelines.some((t) => t.status !== 'SUCCEEDED')) process.exitCode = 1;
}

/**
 * The same with a 10 GB checkpoint, whose upload (100 s) is about as long as the replacement's
 * launch, readiness and copy (108 s): where overlapping the two can come near halving the
 * recovery. Run on request only (`npm run bench -- recovery-10gb`, about 8 minutes).
 */
async function recoveryBalanced(): Promise<void> {
  await recovery(10e9);
}

async function nodes(): Promise<void> {
  const { measureNodeRecovery, measureNodeTransitions, TIME_SCALE } = await import('./nodes');
  const counts = await measureNodeTransitions();
  console.log('\nStep Functions transitions per multi-node run (train-run ASL on the local backend, instant model, examples/node-contract)');
  console.log(`${'nodes'.padStart(5)} ${'steps'.padStart(6)} ${'status'.padStart(10)} ${'transitions'.padStart(11)} ${'of which polls'.padStart(14)}`);
  for (const f of counts) console.log(`${String(f.nodes).padStart(5)} ${String(f.steps).padStart(6)} ${f.status.padStart(10)} ${String(f.transitions).padStart(11)} ${String(f.pollTransitions).padStart(14)}`);
  const fixed = new Set(counts.map((f) => f.transitions - f.pollTransitions));
  console.log(`without the timing polls: ${[...fixed].join(', ')} — ${fixed.size === 1 ? 'the same for every node count and training length' : 'NOT the same'}`);
  if (fixed.size !== 1 || counts.some((f) => f.status !== 'SUCCEEDED')) process.exitCode = 1;

  const figures = await measureNodeRecovery((line) => console.log(`  ${line}`));
  console.log(
    `\nOne interruption of a 4-node run under the aws latency model (2 GB checkpoint, 10 GB dataset per node; run ${TIME_SCALE}× faster, model seconds shown)`,
  );
  console.log(`${'recovery'.padEnd(28)} ${'status'.padEnd(10)} ${'warning → resumed'.padStart(18)} ${'instances launched'.padStart(19)} ${'dataset copied'.padStart(15)}`);
  for (const f of figures) {
    console.log(`${f.mode.padEnd(28)} ${f.status.padEnd(10)} ${(f.resumed === undefined ? '-' : `${f.resumed.toFixed(1)} s`).padStart(18)} ${String(f.launched).padStart(19)} ${`${f.copiedBytes / 1e9} GB`.padStart(15)}`);
  }
  for (const f of figures) if (f.status !== 'SUCCEEDED') console.log(`${f.mode} ended ${f.status}: ${f.statusReason ?? ''}`);
  if (figures.some((f) => f.status !== 'SUCCEEDED')) process.exitCode = 1;
}

async function stopPath(): Promise<void> {
  const { measureStopPath } = await import('./stop-path');
  const cores = availableParallelism();
  const rows = await measureStopPath(cores);
  console.log('\nSpot warning on the local backend, small model (1 MB checkpoint, instant latency model): seconds after the warning');
  console.log(`${'machine'.padEnd(16)} ${'load'.padStart(5)} ${'stop signal'.padStart(12)} ${'checkpoint'.padStart(11)} ${'reported'.padStart(9)} ${'resumed'.padStart(8)} ${'last line → SUCCEEDED'.padStart(22)}`);
  for (const r of rows) {
    const s = (v: number, width: number) => (Number.isFinite(v) ? v.toFixed(2) : '-').padStart(width);
    console.log(`${r.label.padEnd(16)} ${r.loadAverage.toFixed(1).padStart(5)} ${s(r.stopSignal, 12)} ${s(r.checkpointComplete, 11)} ${s(r.outcomeReported, 9)} ${s(r.trainingResumed, 8)} ${s(r.lastLineToSucceeded, 22)}`);
  }
  const quiet = rows[0];
  console.log(`warning → stop signal at the script (quiet): ${quiet?.stopSignal.toFixed(2)} s (target ≤ 1 s: ${(quiet?.stopSignal ?? Infinity) <= 1 ? 'holds' : 'DOES NOT HOLD'})`);
}

async function dashboard(): Promise<void> {
  const { measureUi } = await import('./ui');
  const f = await measureUi();
  console.log('\nDashboard first render in chromium (runctl ui over a synthetic API; time from navigation, JS heap after GC)');
  console.log(`${'page'.padEnd(46)} ${'render ms'.padStart(10)} ${'heap MiB'.padStart(9)} ${'DOM nodes'.padStart(10)}`);
  const pages = [
    ['runs list, 1,000 runs', f.runsList],
    ['run, 10,000 metric points × 2 metrics', f.runPage],
    ['experiment, 1,000 runs × 3 hyperparameters', f.experimentPage],
    ['sweep, 200 trials (+ its 1,000-run experiment)', f.sweepPage],
  ] as const;
  for (const [name, p] of pages) {
    console.log(`${name.padEnd(46)} ${p.renderMs.toFixed(0).padStart(10)} ${p.heapMiB.toFixed(1).padStart(9)} ${String(p.domNodes).padStart(10)}`);
  }
  const worst = Math.max(...f.liveMs);
  console.log(`new metric line in the API → on the chart: ${f.liveMs.map((ms) => ms.toFixed(0)).join(', ')} ms (worst ${worst.toFixed(0)} ms; the page polls every 1,000 ms)`);
}

async function containers(): Promise<void> {
  const { measureContainers, SLOW_REPEATS, FAST_REPEATS } = await import('./containers');
  const f = await measureContainers();
  if (!f.available) {
    // A machine without Docker still benches the rest: said loudly, not failed.
    console.log(`\n${'!'.repeat(100)}\n!! SKIPPING the containers section: ${f.reason}\n${'!'.repeat(100)}`);
    return;
  }
  const time = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : ms >= 10 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(2)} ms`);
  const sample = (s: { median: number; min: number; max: number }) => `${time(s.median)} (${time(s.min)}–${time(s.max)})`;
  console.log(
    `\nContainers: what the Docker path adds on this machine (engine ${f.engine}, storage driver ${f.storageDriver}, client ${f.client}; ` +
      `base image ${f.baseImageMiB.toFixed(0)} MiB, example image ${f.imageMiB.toFixed(0)} MiB; median (min–max) of ${SLOW_REPEATS} builds, pushes and pulls, ${FAST_REPEATS} creates, starts and signals; ` +
      `load average ${f.load.before.toFixed(1)} at the start, ${f.load.after.toFixed(1)} at the end)`,
  );
  console.log(`${'step'.padEnd(60)} ${'docker path'.padEnd(28)} ${'host path'.padEnd(42)} note`);
  for (const row of f.rows) {
    console.log(`${row.step.padEnd(60)} ${sample(row.docker).padEnd(28)} ${(row.host === undefined ? (row.hostNote ?? '') : sample(row.host)).padEnd(42)} ${row.note ?? ''}`);
  }
  console.log(`left behind: ${f.leftBehind.length === 0 ? 'nothing (containers, images and registry tags removed; the base image restored)' : f.leftBehind.join(', ')}`);
  if (f.leftBehind.length > 0) process.exitCode = 1;
}

/** `npm run bench` runs every section but those run on request; `npm run bench -- ui spot` only those named. */
const sections: Record<string, () => Promise<void>> = {
  bundles,
  cli,
  spot: spotPath,
  reconcile: reconcilePass,
  sweeps,
  transitions,
  recovery: () => recovery(),
  'recovery-10gb': recoveryBalanced,
  stop: stopPath,
  nodes,
  ui: dashboard,
  containers,
};
const ON_REQUEST = new Set(['recovery-10gb']);
const chosen = process.argv.slice(2).filter((a) => !a.startsWith('-'));
for (const name of chosen) if (!(name in sections)) throw new Error(`Unknown bench section "${name}"; choose from ${Object.keys(sections).join(', ')}`);
for (const [name, section] of Object.entries(sections)) {
  if (chosen.includes(name) || (chosen.length === 0 && !ON_REQUEST.has(name))) await section();
}
