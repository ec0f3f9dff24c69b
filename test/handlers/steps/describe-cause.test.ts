import { describe, expect, it } from 'vitest';
import { describeCause, scriptTail } from '../../../shared/usecases/step-event';

const failedLog = [
  '2026-11-25T06:00:00Z [runctl] starting attempt 1',
  '{"epoch": 3, "loss": 0.41}',
  'Traceback (most recent call last):',
  '  File "train.py", line 88, in <module>',
  'ValueError: fail-at-epoch 4 reached',
  '2026-11-25T06:00:09Z [runctl] training exited with 1; uploading the log',
  '2026-11-25T06:00:10Z [runctl] checkpoint uploaded',
  '',
].join('\n');

describe('describeCause', () => {
  it('shows the script\'s own last lines for a Training.Failed cause, not the agent\'s', () => {
    const reason = describeCause(JSON.stringify({ exitCode: 1, logTail: failedLog }));

    expect(reason).toMatch(/^exit code 1; log tail: /);
    expect(reason).toContain('ValueError: fail-at-epoch 4 reached');
    expect(reason).not.toContain('[runctl]');
  });

  it('caps a long tail and keeps its end', () => {
    const tail = scriptTail(`${'x'.repeat(2000)}\nlast line`, 6, 100);

    expect(tail.length).toBeLessThanOrEqual(101);
    expect(tail.endsWith('last line')).toBe(true);
  });

  it('passes plain and Lambda-shaped causes through', () => {
    expect(describeCause('plain text')).toBe('plain text');
    expect(describeCause(JSON.stringify({ errorMessage: 'boom' }))).toBe('boom');
    expect(describeCause(JSON.stringify({ exitCode: 2 }))).toBe('exit code 2');
  });
});
