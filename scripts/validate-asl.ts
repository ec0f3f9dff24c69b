/**
 * Checks every statemachines/*.asl.json: the definition is valid ASL (asl-validator, after the
 * Lambda references are resolved to ARNs), and every `Fn::GetAtt` names a function that
 * serverless.yml defines. Run with `npm run validate:asl`; exits non-zero on any problem.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse, type Tags } from 'yaml';
import { z } from 'zod';
import { loadAsl, localLambdaArn, STATE_MACHINES_DIR } from '../local/asl';

/** The repository's serverless.yml. */
export const SERVERLESS_YML = fileURLToPath(new URL('../serverless.yml', import.meta.url));

/** CloudFormation short-form tags (`!Ref`, `!GetAtt`, …) read back into their long form. */
const CLOUDFORMATION_TAGS: Tags = ['Ref', 'Condition'].flatMap((name) => [
  { tag: `!${name}`, resolve: (value: string) => ({ [name]: value }) },
]);
for (const name of [
  'GetAtt', 'Sub', 'Join', 'Select', 'Split', 'If', 'Not', 'Equals', 'And', 'Or',
  'FindInMap', 'ImportValue', 'GetAZs', 'Base64', 'Cidr',
]) {
  const key = `Fn::${name}`;
  CLOUDFORMATION_TAGS.push(
    // `!GetAtt A.Arn` is the scalar short form of ["A", "Arn"].
    { tag: `!${name}`, resolve: (value: string) => ({ [key]: name === 'GetAtt' ? value.split('.') : value }) },
    { tag: `!${name}`, collection: 'seq', resolve: (seq) => ({ [key]: seq.toJSON() }) },
    { tag: `!${name}`, collection: 'map', resolve: (map) => ({ [key]: map.toJSON() }) },
  );
}

/** Parses serverless.yml as data: `${…}` variables stay strings, CloudFormation tags become objects. */
export function readServerlessYml(path: string = SERVERLESS_YML): unknown {
  return parse(readFileSync(path, 'utf8'), { customTags: CLOUDFORMATION_TAGS });
}

/** CloudFormation logical id that osls gives a function's Lambda resource (`validateRun` → `ValidateRunLambdaFunction`). */
export function functionLogicalId(functionKey: string): string {
  const normalized = functionKey.replace(/-/g, 'Dash').replace(/_/g, 'Underscore');
  return `${normalized.charAt(0).toUpperCase()}${normalized.slice(1)}LambdaFunction`;
}

const ServerlessFunctionsSchema = z.object({
  functions: z.record(z.string(), z.unknown()),
  stepFunctions: z.object({ stateMachines: z.record(z.string(), z.object({ id: z.string().optional() }).loose()) }).optional(),
});

/**
 * Logical ids an ASL file may reference: the Lambda functions serverless.yml defines, and its
 * state machines (a `.sync` task starts another machine by `Ref`).
 */
export function definedFunctionLogicalIds(path: string = SERVERLESS_YML): Set<string> {
  const parsed = ServerlessFunctionsSchema.parse(readServerlessYml(path));
  const machines = Object.values(parsed.stepFunctions?.stateMachines ?? {}).flatMap((m) => (m.id === undefined ? [] : [m.id]));
  return new Set([...Object.keys(parsed.functions).map(functionLogicalId), ...machines]);
}

const ValidatorResultSchema = z.object({
  isValid: z.boolean(),
  errors: z.array(z.object({ 'Error code': z.string(), Message: z.string() }).loose()),
});

/** asl-validator ships CommonJS without types: load it and check what it returns. */
function aslValidate(definition: object): z.infer<typeof ValidatorResultSchema> {
  const validator: unknown = createRequire(import.meta.url)('asl-validator');
  if (typeof validator !== 'function') throw new Error('asl-validator does not export a function');
  return ValidatorResultSchema.parse(validator(definition, { checkPaths: true, checkArn: true }));
}

export interface StateMachineReport {
  name: string;
  errors: string[];
}

/** Validates each `<name>.asl.json` in `dir` against ASL and against the functions of `serverlessYml`. */
export function validateStateMachines(
  dir: string = STATE_MACHINES_DIR,
  serverlessYml: string = SERVERLESS_YML,
): StateMachineReport[] {
  const defined = definedFunctionLogicalIds(serverlessYml);
  const names = readdirSync(dir)
    .filter((file) => file.endsWith('.asl.json'))
    .map((file) => file.slice(0, -'.asl.json'.length))
    .sort();
  return names.map((name) => {
    const errors: string[] = [];
    const referenced: string[] = [];
    let definition: object;
    try {
      definition = loadAsl(
        name,
        (logicalId) => {
          referenced.push(logicalId);
          return localLambdaArn(logicalId);
        },
        dir,
      );
    } catch (error) {
      return { name, errors: [error instanceof Error ? error.message : String(error)] };
    }
    for (const logicalId of new Set(referenced)) {
      if (!defined.has(logicalId)) {
        errors.push(`${logicalId} is not a function or state machine in serverless.yml (defined: ${[...defined].sort().join(', ')})`);
      }
    }
    const result = aslValidate(definition);
    for (const error of result.errors) errors.push(`${error['Error code']}: ${error.Message}`);
    return { name, errors };
  });
}

function main(): void {
  const reports = validateStateMachines();
  if (reports.length === 0) {
    console.error(`No state machine definitions (*.asl.json) in ${STATE_MACHINES_DIR}`);
    process.exitCode = 1;
    return;
  }
  for (const report of reports) {
    if (report.errors.length === 0) {
      console.log(`ok    ${report.name}`);
    } else {
      console.error(`FAIL  ${report.name}`);
      for (const error of report.errors) console.error(`      ${error}`);
      process.exitCode = 1;
    }
  }
}

const invokedPath = process.argv[1];
if (invokedPath !== undefined && import.meta.url === pathToFileURL(invokedPath).href) main();
