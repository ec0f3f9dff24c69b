import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadAsl, localLambdaArn, logicalIdFromLocalArn, referencedLogicalIds } from '../../local/asl';
import { validateStateMachines } from '../../scripts/validate-asl';

const dir = mkdtempSync(join(tmpdir(), 'runctl-asl-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeMachine(name: string, definition: unknown): void {
  writeFileSync(join(dir, `${name}.asl.json`), JSON.stringify(definition));
}

const task = (resource: unknown, next?: string) => ({ Type: 'Task', Resource: resource, ...(next ? { Next: next } : { End: true }) });

describe('loadAsl', () => {
  it('replaces every Fn::GetAtt … Arn and Ref, nested or not, with the resolved ARN', () => {
    writeMachine('refs', {
      StartAt: 'A',
      States: {
        A: task({ 'Fn::GetAtt': ['ValidateRunLambdaFunction', 'Arn'] }, 'B'),
        B: task({ 'Fn::GetAtt': 'CheckInstanceLambdaFunction.Arn' }, 'C'),
        C: {
          Type: 'Task',
          Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
          Parameters: { FunctionName: { Ref: 'LaunchTrainingLambdaFunction' }, 'token.$': '$$.Task.Token' },
          End: true,
        },
      },
    });

    const definition = loadAsl('refs', (id) => `arn:test:${id}`, dir);

    expect(definition).toEqual({
      StartAt: 'A',
      States: {
        A: task('arn:test:ValidateRunLambdaFunction', 'B'),
        B: task('arn:test:CheckInstanceLambdaFunction', 'C'),
        C: {
          Type: 'Task',
          Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
          Parameters: { FunctionName: 'arn:test:LaunchTrainingLambdaFunction', 'token.$': '$$.Task.Token' },
          End: true,
        },
      },
    });
    expect(referencedLogicalIds('refs', dir)).toEqual([
      'ValidateRunLambdaFunction',
      'CheckInstanceLambdaFunction',
      'LaunchTrainingLambdaFunction',
    ]);
  });

  it('refuses intrinsics that only CloudFormation could evaluate', () => {
    writeMachine('sub', { StartAt: 'A', States: { A: task({ 'Fn::Sub': 'arn:${AWS::Partition}:lambda' }) } });
    writeMachine('attribute', { StartAt: 'A', States: { A: task({ 'Fn::GetAtt': ['SomeQueue', 'QueueName'] }) } });

    expect(() => loadAsl('sub', localLambdaArn, dir)).toThrow(/unsupported intrinsic.*Fn::Sub/);
    expect(() => loadAsl('attribute', localLambdaArn, dir)).toThrow(/unsupported intrinsic/);
  });

  it('builds local Lambda ARNs that map back to their logical ids', () => {
    const arn = localLambdaArn('FinishRunLambdaFunction');
    expect(arn).toBe('arn:aws:lambda:us-east-1:000000000000:function:FinishRunLambdaFunction');
    expect(logicalIdFromLocalArn(arn)).toBe('FinishRunLambdaFunction');
    expect(logicalIdFromLocalArn('arn:aws:lambda:eu-west-1:123456789012:function:other')).toBeUndefined();
  });
});

describe('validateStateMachines', () => {
  it('reports invalid ASL and references to functions serverless.yml does not define', () => {
    const checkDir = mkdtempSync(join(dir, 'check-'));
    writeFileSync(
      join(checkDir, 'good.asl.json'),
      JSON.stringify({ StartAt: 'A', States: { A: task({ 'Fn::GetAtt': ['FinishRunLambdaFunction', 'Arn'] }) } }),
    );
    writeFileSync(
      join(checkDir, 'bad.asl.json'),
      JSON.stringify({
        StartAt: 'A',
        States: { A: task({ 'Fn::GetAtt': ['NoSuchStepLambdaFunction', 'Arn'] }, 'Missing') },
      }),
    );

    const reports = validateStateMachines(checkDir);

    expect(reports.map((r) => r.name)).toEqual(['bad', 'good']);
    expect(reports[1]?.errors).toEqual([]);
    const badErrors = reports[0]?.errors.join('\n') ?? '';
    expect(badErrors).toMatch(/NoSuchStepLambdaFunction is not a function or state machine in serverless.yml/);
    expect(badErrors).toMatch(/MISSING_TRANSITION_TARGET/);
  });

  it('finds every state machine in the repository valid', () => {
    for (const report of validateStateMachines()) {
      expect(report.errors, report.name).toEqual([]);
    }
  });
});
