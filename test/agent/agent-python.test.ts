import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AGENT_SCRIPT } from '../../shared/agent/commands';

/** The agent's Python helper, as agent.sh writes it on the instance. */
const dir = mkdtempSync(join(tmpdir(), 'runctl-agent-py-'));
const helper = join(dir, 'agent.py');
const start = AGENT_SCRIPT.indexOf("<<'PY'\n") + "<<'PY'\n".length;
writeFileSync(helper, AGENT_SCRIPT.slice(start, AGENT_SCRIPT.indexOf('\nPY\n', start) + 1));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const py = (args: string[], input = '') => execFileSync('python3', [helper, ...args], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });

describe("the agent's Python helper", () => {
  it('upload-progress keeps the newest figures of the AWS CLI transfer progress and passes other lines on', () => {
    const out = join(dir, 'progress.json');
    // What `aws s3 cp --recursive` prints (its \r turned into newlines by the agent).
    const transcript = ['Completed 256.0 KiB/~1.9 GiB (1.2 MiB/s) with ~3 file(s) remaining', 'Completed 1.2 GiB/2.0 GiB (98.0 MiB/s) with 1 file(s) remaining', ''].join('\n');
    py(['upload-progress', out], transcript.split('\n')[0] ?? '');
    // "~": the CLI is still listing files, so the total is a lower bound.
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual({ bytes: 256 * 1024, totalBytes: Math.trunc(1.9 * 2 ** 30) });
    py(['upload-progress', out], transcript);
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual({ bytes: Math.trunc(1.2 * 2 ** 30), totalBytes: 2 * 2 ** 30 });
  });

  it('upload-progress writes nothing for output without progress, passes errors on and drops per-file lines', () => {
    const out = join(dir, 'none.json');
    const result = spawnSync('python3', [helper, 'upload-progress', out], {
      input: 'upload: ./a to s3://b/a\nupload failed: ./c to s3://b/c An error occurred (AccessDenied)\n',
      encoding: 'utf8',
    });
    expect(() => readFileSync(out, 'utf8')).toThrow();
    expect(result.stderr).toBe('upload failed: ./c to s3://b/c An error occurred (AccessDenied)\n');
  });

  it('request passes a json@ field as a JSON value, and skips it when the file is missing', () => {
    const body = join(dir, 'body.json');
    writeFileSync(join(dir, 'upload.json'), JSON.stringify({ bytes: 5, totalBytes: 10 }));
    py(['request', body, `upload=json@${join(dir, 'upload.json')}`, 'error=Spot.Interrupted', `gone=json@${join(dir, 'missing.json')}`]);
    expect(JSON.parse(readFileSync(body, 'utf8'))).toEqual({ upload: { bytes: 5, totalBytes: 10 }, error: 'Spot.Interrupted' });
  });
});
