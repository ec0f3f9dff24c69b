#!/usr/bin/env bash
# Creates the packaged CloudFormation stack in moto_server's CloudFormation API and reports, per
# resource type, which resources moto created and which it could not: deploy fidelity beyond
# cfn-lint, with no AWS account. moto creates what it models and skips (or fails) the rest.
#
#   bash scripts/deploy-moto.sh [.serverless/cloudformation-template-update-stack.json]
set -euo pipefail

template=${1:-.serverless/cloudformation-template-update-stack.json}
[ -f "$template" ] || { echo "no packaged template at $template: run npm run package first" >&2; exit 1; }
command -v moto_server >/dev/null || { echo 'moto_server is required: pip install "moto[server]==5.*"' >&2; exit 1; }

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$port" >/tmp/runctl-deploy-moto.$$.log 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null; [ -n "${KEEP_MOTO_LOG:-}" ] || rm -f /tmp/runctl-deploy-moto.$$.log' EXIT
endpoint=http://127.0.0.1:$port
for _ in $(seq 1 100); do curl -s -o /dev/null "$endpoint/moto-api/" && break; sleep 0.2; done

export AWS_ACCESS_KEY_ID=moto AWS_SECRET_ACCESS_KEY=moto AWS_DEFAULT_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN
aws() { command aws --endpoint-url "$endpoint" "$@"; }

# The template is larger than CreateStack's inline limit (51,200 bytes): it goes through S3, as
# `osls deploy` sends it (moto reads the S3 URL from its own S3).
#
# moto substitutes Fn::Sub variables with Python's string.Template, whose names cannot start with
# a digit; the state machines' variables (hashes from serverless-step-functions) often do. Each
# such variable is renamed, within its own Fn::Sub, to the same name behind a `v`: the same
# template to CloudFormation, one moto can read.
moto_template=$(mktemp)
trap 'kill $moto 2>/dev/null; rm -f "$moto_template"; [ -n "${KEEP_MOTO_LOG:-}" ] || rm -f /tmp/runctl-deploy-moto.$$.log' EXIT
python3 - "$template" "$moto_template" <<'PY'
import json, re, sys

def rename(node):
    if isinstance(node, list):
        return [rename(item) for item in node]
    if not isinstance(node, dict):
        return node
    sub = node.get('Fn::Sub')
    if isinstance(sub, list) and len(sub) == 2 and isinstance(sub[0], str) and isinstance(sub[1], dict):
        text, variables = sub
        renamed = {}
        for name, value in variables.items():
            new = 'v' + name if name[:1].isdigit() else name
            text = text.replace('${%s}' % name, '${%s}' % new)
            renamed[new] = rename(value)
        return {'Fn::Sub': [text, renamed]}
    return {key: rename(value) for key, value in node.items()}

json.dump(rename(json.load(open(sys.argv[1]))), open(sys.argv[2], 'w'))
PY
aws s3 mb s3://runctl-deploy-check >/dev/null
aws s3 cp "$moto_template" s3://runctl-deploy-check/template.json --only-show-errors
aws cloudformation create-stack --stack-name runctl-ci \
  --template-url https://runctl-deploy-check.s3.amazonaws.com/template.json \
  --capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM CAPABILITY_AUTO_EXPAND >/dev/null || {
  echo "moto refused CreateStack (above)" >&2
  exit 1
}
status=CREATE_IN_PROGRESS
for _ in $(seq 1 300); do
  status=$(aws cloudformation describe-stacks --stack-name runctl-ci --query 'Stacks[0].StackStatus' --output text)
  [ "$status" != CREATE_IN_PROGRESS ] && break
  sleep 1
done
aws cloudformation list-stack-resources --stack-name runctl-ci --output json >/tmp/runctl-deploy-moto.$$.json

python3 - "$template" /tmp/runctl-deploy-moto.$$.json "$status" <<'PY'
import collections, json, sys
template = json.load(open(sys.argv[1]))
listed = {r['LogicalResourceId']: r for r in json.load(open(sys.argv[2]))['StackResourceSummaries']}
status = sys.argv[3]
by_type = collections.defaultdict(lambda: [0, 0, []])
for logical_id, resource in template['Resources'].items():
    entry = by_type[resource['Type']]
    summary = listed.get(logical_id)
    if summary and summary.get('ResourceStatus', '').endswith('COMPLETE') and summary.get('PhysicalResourceId'):
        entry[0] += 1
    else:
        entry[1] += 1
        entry[2].append(logical_id)
print(f'stack status: {status}')
print('| resource type | created | not created |')
print('|---|---:|---:|')
for kind in sorted(by_type):
    created, missing, _ = by_type[kind]
    print(f'| {kind} | {created} | {missing} |')
total_created = sum(v[0] for v in by_type.values())
total = len(template['Resources'])
print(f'\n{total_created} of {total} resources created')
PY
rm -f /tmp/runctl-deploy-moto.$$.json
