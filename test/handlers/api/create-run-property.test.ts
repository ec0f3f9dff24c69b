import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../../shared/agent/agent-config';
import { buildAgentLaunchCommand } from '../../../shared/agent/commands';
import { agentArgvFor, agentNodeConfig, rendezvousIdFor, torchrunArgv } from '../../../shared/agent/node';
import { buildTrainingArgv } from '../../../shared/domain/hyperparameters';
import { argvEnvBytes, SPEC_LIMITS, utf8Bytes } from '../../../shared/domain/spec-limits';
import { nodeCount } from '../../../shared/domain/multi-node';
import { agentConfigFor, agentDockerConfig } from '../../../shared/usecases/launch-training';
import { RUNS_BUCKET, useCreateRunHarness } from '../../support/create-run-harness';

// Generated hostile specs and arbitrary JSON bodies thrown at the real POST /runs handler (over
// dynalite): every answer is 201 or 400, never 500; every 201 stored a spec from which the
// agent's config and launch command build, with an argv the kernel would exec.

/** Linux MAX_ARG_STRLEN: one argv or environment string, NUL included. */
const MAX_ARG_STRLEN = 131_072;

const nastyStrings = fc.constantFrom(
  '', ' ', '\ud800', 'a\udc00', '😀', '$(touch canary)', '`id`', "'; rm -rf / '", 'a\nb', '\r', '\0', '..', '../..', '/',
  '//', '/opt/runctl', '/opt/runctl/work', 'constructor', '__proto__', 'prototype', 'RUNCTL_X', 'AWS_SECRET', '-', '--epochs',
  'x'.repeat(40_000), 'é'.repeat(33_000), 's3://runctl-runs/runs/r-victim/', 's3://runctl-runs/', 's3://runctl-runs/bundles/latest.tar.gz',
  '1e308', '99999999999999999999d', '366d', '0s', 'g5.xlarge', 'a:b,c', '%ff', '\u202e',
);
const hostileString = fc.oneof(nastyStrings, fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 20 }));
const hostileNumber = fc.oneof(
  fc.constantFrom(0, -0, 1, -1, 1e308, -1e308, 5e-324, 2 ** 53, 2 ** 53 + 2, Number.MAX_SAFE_INTEGER, 1e20, 0.0001, 366 * 86400),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
);
const hostileKey = fc.oneof(fc.constantFrom('constructor', '__proto__', 'prototype', '\ud800', 'RUNCTL_X', 'epochs', 'A', 'a b', 'x'.repeat(200)), fc.string({ maxLength: 12 }));
const scalar = fc.oneof(hostileString, hostileNumber, fc.boolean(), fc.constant(null));
const hostileValue = fc.oneof(scalar, fc.array(scalar, { maxLength: 4 }), fc.dictionary(hostileKey, scalar, { maxKeys: 4 }));
/** Maps that are often well-formed (valid names, unusual values), so accepted specs are reached too. */
const plausibleMap = fc.dictionary(fc.stringMatching(/^[A-Za-z][A-Za-z0-9_]{0,8}$/), fc.oneof(hostileString, fc.integer(), fc.boolean()), { maxKeys: 6 });
const hostileMap = fc.oneof(plausibleMap, fc.dictionary(hostileKey, scalar, { maxKeys: 6 }), hostileValue);

const base = {
  name: 'prop',
  code: { bundle: `s3://${RUNS_BUCKET}/bundles/${'f'.repeat(64)}.tar.gz`, entrypoint: 'train.py' },
  instance: { types: ['g5.xlarge'] },
};

/** A spec that starts valid and has some of its fields replaced by hostile values. */
const hostileSpec = fc
  .record(
    {
      name: hostileValue,
      code: fc.record(
        { bundle: fc.oneof(hostileString, fc.constant(base.code.bundle)), entrypoint: hostileValue, interpreter: hostileValue, command: hostileValue },
        { requiredKeys: [] },
      ),
      args: fc.oneof(fc.array(hostileString, { maxLength: 5 }), hostileValue),
      hyperparameters: hostileMap,
      env: hostileMap,
      tags: hostileMap,
      data: fc.oneof(fc.array(fc.oneof(hostileString, fc.record({ source: hostileString, target: hostileString })), { maxLength: 3 }), hostileValue),
      volume: fc.oneof(fc.record({ dataset: hostileString, mountPath: hostileString }, { requiredKeys: ['dataset'] }), hostileValue),
      docker: fc.oneof(fc.constant('auto'), fc.record({ image: hostileString }), fc.record({ build: fc.record({ dockerfile: hostileString }) }), hostileValue),
      checkpoint: fc.record({ dir: hostileString, intervalSeconds: hostileNumber, stopSignal: hostileValue, graceSeconds: hostileNumber, ranks: fc.oneof(fc.constantFrom('rank0', 'all'), hostileValue) }, { requiredKeys: [] }),
      nodes: fc.oneof(fc.integer({ min: 1, max: 64 }), hostileNumber, hostileValue),
      distributed: fc.oneof(
        fc.constant({}),
        fc.record({ nprocPerNode: fc.integer({ min: 1, max: 8 }), port: fc.integer({ min: 1024, max: 65535 }) }),
        fc.record({ launcher: fc.oneof(fc.constant('torchrun'), hostileValue), nprocPerNode: fc.oneof(fc.constant('auto'), fc.integer({ min: 1, max: 8 }), hostileNumber, hostileValue), port: fc.oneof(fc.integer({ min: 1024, max: 65535 }), hostileNumber) }, { requiredKeys: [] }),
        hostileValue,
      ),
      recovery: fc.record({ maxInterruptions: hostileNumber, maxWaitForCapacity: fc.oneof(hostileNumber, hostileString) }, { requiredKeys: [] }),
      limits: fc.record({ maxRuntime: fc.oneof(hostileNumber, hostileString), maxCostUsd: hostileNumber }, { requiredKeys: [] }),
      instance: fc.record({ types: fc.oneof(hostileString, fc.array(hostileString, { maxLength: 3 })), maxSpotPriceUsd: hostileNumber, subnets: hostileValue }, { requiredKeys: ['types'] }),
      metricDefinitions: fc.oneof(fc.array(fc.record({ name: hostileString, regex: hostileString }), { maxLength: 2 }), hostileValue),
    },
    { requiredKeys: [] },
  )
    .chain((changes) =>
    // One to three fields changed at a time, so a spec is often valid but for what was changed.
    fc.subarray(Object.keys(changes), { minLength: 1, maxLength: 3 }).map((keys) => {
      const picked: Record<string, unknown> = Object.fromEntries(keys.map((k) => [k, (changes as Record<string, unknown>)[k]]));
      const code = picked.code;
      return { ...base, ...picked, code: { ...base.code, ...(typeof code === 'object' && code !== null ? code : {}) } };
    }),
  );

describe('POST /runs under generated hostile input', () => {
  const harness = useCreateRunHarness({ name: 'property' });
  let token = 0;
  let distributedCreated = 0;

  const post = (rawBody: string) => harness.post({ rawBody });

  /** What LaunchTraining would build from the stored record: it must not throw, and its argv must exec. */
  async function expectLaunchable(runId: string): Promise<void> {
    const record = await harness.deps.store.get(runId);
    expect(record).toBeDefined();
    if (record === undefined) return;
    const spec = record.spec;
    const needsBuild = spec.docker !== undefined && (spec.docker === 'auto' || spec.docker.image === undefined);
    const docker = needsBuild ? undefined : await agentDockerConfig(record, 'us-east-1', {});
    const config = agentConfigFor(spec, { runId, attempt: 1, resumeFrom: null, docker }, { region: 'us-east-1', bucket: RUNS_BUCKET, heartbeatSeconds: 60, controlEndpoint: 'https://agentapi01.execute-api.us-east-1.amazonaws.com' });
    expect(buildAgentLaunchCommand(config)).toContain('setsid nohup bash');
    // Every node of an accepted multi-node spec gets a config the agent takes, and torchrun an argv.
    const last = nodeCount(spec) - 1;
    const node = agentNodeConfig(spec, { rank: last, masterAddr: '10.0.0.12', rendezvousId: rendezvousIdFor(runId, 1) });
    const nodeConfig = parseAgentConfig({ ...config, argv: agentArgvFor(spec), node });
    expect(nodeConfig.node?.rank).toBe(last);
    if (nodeConfig.node?.distributed !== undefined) {
      expect(torchrunArgv(nodeConfig.node, nodeConfig.argv)[0]).toBe('torchrun');
      distributedCreated += 1;
    }
    const argv = buildTrainingArgv(spec);
    expect(argvEnvBytes(argv, spec.env)).toBeLessThanOrEqual(SPEC_LIMITS.argvEnvBytes);
    for (const arg of [...argv, ...Object.entries(spec.env).map(([k, v]) => `${k}=${v}`)]) {
      expect(utf8Bytes(arg) + 1).toBeLessThanOrEqual(MAX_ARG_STRLEN);
    }
  }

  it('answers generated hostile specs with 201 or 400, and every 201 is launchable', async () => {
    let created = 0;
    await fc.assert(
      fc.asyncProperty(hostileSpec, async (spec) => {
        const clientToken = `p-${++token}`;
        const { statusCode, body } = await post(JSON.stringify({ clientToken, spec }));
        expect([201, 400], body).toContain(statusCode);
        if (statusCode === 201) {
          created += 1;
          await expectLaunchable(JSON.parse(body).runId);
        } else {
          expect(JSON.parse(body).issues.length, body).toBeGreaterThan(0);
        }
      }),
      { numRuns: 300, seed: 20261201 },
    );
    // The generator reaches accepted specs too, so the launchable half is exercised.
    expect(created).toBeGreaterThan(5);
    expect(distributedCreated).toBeGreaterThan(0);
  });

  it('answers arbitrary JSON bodies (and arbitrary text) with 201 or 400', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.jsonValue().map((v) => JSON.stringify(v)), fc.string({ maxLength: 60 }), fc.json()), async (text) => {
        const { statusCode, body } = await post(text);
        expect([201, 400], `${text} → ${body}`).toContain(statusCode);
      }),
      { numRuns: 200, seed: 20261202 },
    );
  });
});
