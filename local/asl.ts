import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The ASL files under statemachines/ name their Lambda tasks the CloudFormation way
 * (`{"Fn::GetAtt": ["ValidateRunLambdaFunction", "Arn"]}`), which serverless-step-functions
 * turns into ARNs at package time. Everything that runs or checks a definition outside
 * CloudFormation (the local runtime, the state machine tests, the validator) loads it through
 * here, so the same file serves both.
 */

/** The repository's statemachines/ folder. */
export const STATE_MACHINES_DIR = fileURLToPath(new URL('../statemachines/', import.meta.url));

/** A loaded state machine definition with every intrinsic replaced by a plain string. */
export type AslDefinition = Record<string, unknown>;

/** Maps a CloudFormation logical id (e.g. `ValidateRunLambdaFunction`) to the ARN to use. */
export type ArnResolver = (logicalId: string) => string;

/** ARN of a Lambda function in the local backend's fake account (the logical id is its name). */
export function localLambdaArn(logicalId: string): string {
  return `arn:aws:lambda:us-east-1:000000000000:function:${logicalId}`;
}

/** Inverse of localLambdaArn: the logical id in a local ARN, or undefined for any other ARN. */
export function logicalIdFromLocalArn(arn: string): string | undefined {
  const prefix = localLambdaArn('');
  return arn.startsWith(prefix) && arn.length > prefix.length ? arn.slice(prefix.length) : undefined;
}

/** Reads `statemachines/<name>.asl.json` and resolves its `Fn::GetAtt … Arn` and `Ref` references. */
export function loadAsl(name: string, resolveArn: ArnResolver, dir: string = STATE_MACHINES_DIR): AslDefinition {
  const file = join(dir, `${name}.asl.json`);
  const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
  const resolved = resolveIntrinsics(parsed, resolveArn, file);
  if (!isPlainObject(resolved)) {
    throw new Error(`${file} must hold a JSON object (a state machine definition)`);
  }
  return resolved;
}

/**
 * Returns a copy of `value` with each `{"Fn::GetAtt": [id, "Arn"]}` (or `"id.Arn"`) and each
 * `{"Ref": id}` replaced by `resolveArn(id)`. Any other intrinsic is an error: nothing outside
 * CloudFormation could evaluate it, so a local run would silently differ from the deployed one.
 */
export function resolveIntrinsics(value: unknown, resolveArn: ArnResolver, where = 'definition'): unknown {
  if (Array.isArray(value)) return value.map((item) => resolveIntrinsics(item, resolveArn, where));
  if (!isPlainObject(value)) return value;

  const keys = Object.keys(value);
  const intrinsic = keys.find((key) => key === 'Ref' || key.startsWith('Fn::'));
  if (intrinsic !== undefined) {
    if (keys.length !== 1) {
      throw new Error(`${where}: an object with ${intrinsic} must have no other keys (found ${keys.join(', ')})`);
    }
    return resolveArn(referencedLogicalId(intrinsic, value[intrinsic], where));
  }
  return Object.fromEntries(keys.map((key) => [key, resolveIntrinsics(value[key], resolveArn, where)]));
}

/** Every logical id that the definition names through `Fn::GetAtt` or `Ref`, in order of appearance. */
export function referencedLogicalIds(name: string, dir: string = STATE_MACHINES_DIR): string[] {
  const ids: string[] = [];
  loadAsl(
    name,
    (logicalId) => {
      if (!ids.includes(logicalId)) ids.push(logicalId);
      return localLambdaArn(logicalId);
    },
    dir,
  );
  return ids;
}

function referencedLogicalId(intrinsic: string, argument: unknown, where: string): string {
  if (intrinsic === 'Ref' && typeof argument === 'string' && argument !== '') return argument;
  if (intrinsic === 'Fn::GetAtt') {
    if (Array.isArray(argument) && argument.length === 2 && typeof argument[0] === 'string' && argument[1] === 'Arn') {
      return argument[0];
    }
    if (typeof argument === 'string' && argument.endsWith('.Arn') && argument.length > '.Arn'.length) {
      return argument.slice(0, -'.Arn'.length);
    }
  }
  throw new Error(
    `${where}: unsupported intrinsic ${JSON.stringify({ [intrinsic]: argument })}; ` +
      'use {"Fn::GetAtt": ["<LogicalId>", "Arn"]} or {"Ref": "<LogicalId>"}',
  );
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
