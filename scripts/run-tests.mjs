#!/usr/bin/env node
// `npm test`: the whole suite, with the container tests in a pass of their own after the rest.
// A container on the vfs storage driver keeps a core busy for minutes, and the timing of the
// local end-to-end and chaos runs (heartbeats, grace periods) must not share the machine with it.
// Given arguments (`npm test -- test/foo.test.ts`), it runs just those, as vitest does.
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const vitest = (extra) => spawnSync('vitest', ['run', ...extra], { stdio: 'inherit', shell: false }).status ?? 1;

if (args.length > 0) process.exit(vitest(args));
const rest = vitest(['--exclude', 'test/docker/**']);
const containers = vitest(['test/docker/']);
process.exit(rest !== 0 ? rest : containers);
