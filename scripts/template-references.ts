/**
 * Every reference in a CloudFormation template must resolve: `Ref`, `Fn::GetAtt` and the
 * `${…}` names of `Fn::Sub` name a resource, a parameter or a pseudo parameter (and a
 * `DependsOn` a resource). cfn-lint checks much, but a reference to a resource that a plugin
 * renamed or dropped is only found at deploy time; this finds it offline.
 *
 *   npx tsx scripts/template-references.ts .serverless/cloudformation-template-update-stack.json
 */
import { readFileSync } from 'node:fs';

const PSEUDO_PARAMETERS = new Set([
  'AWS::AccountId',
  'AWS::NotificationARNs',
  'AWS::NoValue',
  'AWS::Partition',
  'AWS::Region',
  'AWS::StackId',
  'AWS::StackName',
  'AWS::URLSuffix',
]);

export interface UnresolvedReference {
  /** Where the reference is: `Resources.X.Properties.…`. */
  at: string;
  reference: string;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The references of a template that name nothing in it. */
export function unresolvedReferences(template: { [key: string]: Json }): UnresolvedReference[] {
  const resources = asObject(template.Resources);
  const parameters = asObject(template.Parameters);
  const known = new Set([...Object.keys(resources), ...Object.keys(parameters), ...PSEUDO_PARAMETERS]);
  const found: UnresolvedReference[] = [];
  const check = (name: string, at: string, resourcesOnly = false) => {
    if (resourcesOnly ? !(name in resources) : !known.has(name)) found.push({ at, reference: name });
  };
  const walk = (node: Json, at: string): void => {
    if (Array.isArray(node)) {
      node.forEach((item, i) => walk(item, `${at}[${i}]`));
      return;
    }
    if (node === null || typeof node !== 'object') return;
    for (const [key, value] of Object.entries(node)) {
      const here = `${at}.${key}`;
      if (key === 'Ref' && typeof value === 'string') check(value, here);
      else if (key === 'Fn::GetAtt') {
        const target = Array.isArray(value) ? value[0] : typeof value === 'string' ? value.split('.')[0] : undefined;
        if (typeof target === 'string') check(target, here, true);
      } else if (key === 'Fn::Sub') {
        const [text, variables] = Array.isArray(value) ? [value[0], asObject(value[1] ?? null)] : [value, {}];
        if (typeof text === 'string') {
          for (const match of text.matchAll(/\$\{([^!}][^}]*)\}/g)) {
            const name = (match[1] ?? '').split('.')[0] ?? '';
            if (!(name in variables)) check(name, here);
          }
        }
      } else if (key === 'DependsOn' && at.split('.').length === 2) {
        for (const name of Array.isArray(value) ? value : [value]) if (typeof name === 'string') check(name, here, true);
      }
      walk(value, here);
    }
  };
  walk(asObject(template.Resources), 'Resources');
  walk(asObject(template.Outputs), 'Outputs');
  walk(asObject(template.Conditions), 'Conditions');
  return found;
}

function asObject(value: Json | undefined): { [key: string]: Json } {
  return value !== null && value !== undefined && typeof value === 'object' && !Array.isArray(value) ? value : {};
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2] ?? '.serverless/cloudformation-template-update-stack.json';
  const problems = unresolvedReferences(JSON.parse(readFileSync(file, 'utf8')));
  for (const problem of problems) console.error(`${problem.at}: ${problem.reference} names no resource, parameter or pseudo parameter`);
  if (problems.length > 0) process.exit(1);
  console.log(`every Ref, Fn::GetAtt, Fn::Sub and DependsOn in ${file} resolves`);
}
