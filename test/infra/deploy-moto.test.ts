import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensurePackagedTemplate } from './packaged-template';

const ROOT = join(import.meta.dirname, '..', '..');

beforeAll(() => ensurePackagedTemplate(), 900_000);

/** Created / not created per resource type, from the script's table. */
function table(stdout: string): Map<string, { created: number; missing: number }> {
  const rows = new Map<string, { created: number; missing: number }>();
  for (const match of stdout.matchAll(/^\| (AWS::\S+) \| (\d+) \| (\d+) \|$/gm)) {
    rows.set(match[1] ?? '', { created: Number(match[2]), missing: Number(match[3]) });
  }
  return rows;
}

describe('scripts/deploy-moto.sh (docs/deploy.md)', () => {
  it('creates the packaged stack in moto_server: CREATE_COMPLETE, every function, role, state machine, table and bucket', () => {
    const result = spawnSync('bash', ['scripts/deploy-moto.sh'], { cwd: ROOT, encoding: 'utf8', timeout: 600_000 });

    expect(result.status, `${result.stdout}\n${result.stderr}`).toBe(0);
    expect(result.stdout).toContain('stack status: CREATE_COMPLETE');
    const rows = table(result.stdout);
    for (const type of ['AWS::Lambda::Function', 'AWS::IAM::Role', 'AWS::StepFunctions::StateMachine', 'AWS::DynamoDB::Table', 'AWS::S3::Bucket', 'AWS::Events::Rule', 'AWS::Logs::LogGroup']) {
      const row = rows.get(type);
      expect(row, type).toBeDefined();
      expect(row?.created, type).toBeGreaterThan(0);
      expect(row?.missing, type).toBe(0);
    }
    expect(rows.get('AWS::StepFunctions::StateMachine')?.created).toBe(5);
  }, 600_000);
});
