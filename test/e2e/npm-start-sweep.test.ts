import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { npmStart } from '../support/npm-start';

let root: string | undefined;
afterEach(async () => {
  if (root !== undefined) await rm(root, { recursive: true, force: true });
  root = undefined;
});

describe('npm start -- --sweep', () => {
  it('runs 4 trials through the sweep machine, stops the one that does not learn by the median rule, compares and registers the best', async () => {
    root = await mkdtemp(join(tmpdir(), 'runctl-npm-start-sweep-'));
    const { code, stdout, stderr } = await npmStart(['--root', root, '--sweep'], 240_000);

    expect(code, `${stdout}\n${stderr}`).toBe(0);
    const sweepId = /^Submitted sweep (sw-[0-9a-f]{16}): 4 trials/m.exec(stdout)?.[1];
    expect(sweepId, stdout).toBeDefined();
    expect(stdout).toMatch(new RegExp(`^Sweep {7}${sweepId}: SUCCEEDED — 4 trial\\(s\\) ran, 0 skipped`, 'm'));
    // The comparison, as runctl compare prints it: best first, the stopped trial (lr 0.003) last.
    const table = stdout.slice(stdout.indexOf('$ runctl compare'));
    const rows = table.split('\n').filter((line) => line.startsWith(`${sweepId}-`));
    expect(rows.slice(0, 4).map((row) => row.split(/\s+/)[1])).toEqual(['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED', 'STOPPED_EARLY']);
    expect(rows[3]).toMatch(/\s0\.003\s/);
    expect(stdout).toMatch(/Stopped early by the median rule of sweep sw-[0-9a-f]{16}: best loss 0\.7\d+ by epoch [23], median of 3 other trial\(s\)/);
    // The best trial's outputs became version 1 of the model.
    const best = rows[0]?.split(/\s+/)[0];
    expect(stdout).toContain(`$ runctl models register ${best} --name linear-sweep`);
    expect(stdout).toMatch(new RegExp(`^Registered linear-sweep version 1 from run ${best}: 2 file\\(s\\)`, 'm'));
    expect(stdout).toMatch(/^linear-sweep:1$/m);
  }, 300_000);

  it('refuses --sweep with --docker, exit 2', async () => {
    const { code, stderr } = await npmStart(['--sweep', '--docker'], 60_000);
    expect(code).toBe(2);
    expect(stderr).toContain('--sweep runs its own 4 trials on the host');
  }, 90_000);
});
