/// <reference types="vite/client" />
import { AgentIdSchema, ControlSchema, parseAgentConfig, type AgentConfigInput } from './agent-config';
// agent.sh is the single source of the agent. `?raw` imports it as text: vitest (vite)
// understands the suffix natively; esbuild strips an unresolvable `?raw` suffix and loads
// the file with the `.sh` → `text` loader that the handler bundles configure. Reading the file
// at run time (fs + import.meta.url) would not survive bundling. The triple-slash reference
// above only brings in the `*?raw` module type.
import agentScript from './agent.sh?raw';
import controlScript from './control.py?raw';
import verifyManifestScript from './verify_manifest.py?raw';
import { DATASET_MANIFEST_NAME } from '../domain/dataset-manifest';

/** Text of the agent script that the launch command installs. */
export const AGENT_SCRIPT: string = agentScript;

/** Text of the control client (control.py) every training-instance command installs. */
export const CONTROL_SCRIPT: string = controlScript;

/** Exit codes of the prefetch command, distinct so the handler can name the failure. */
export const PREFETCH_EXIT = { sourceMissing: 20, accessDenied: 21, copyFailed: 22, manifestMismatch: 23 } as const;

/** Exit code of a control command (checkpoint now, stop) when no agent runs that attempt. */
export const CONTROL_EXIT_NO_AGENT = 3;

/** Single-quotes a value for bash: nothing inside is expanded. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

function base64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

/** Instance path of one attempt's agent state, as bash text (ids are validated: no quoting needed). */
function attemptDir(runId: string, attempt: number): string {
  const id = AgentIdSchema.parse(runId);
  if (!Number.isInteger(attempt) || attempt < 1) throw new Error(`attempt must be a positive integer, got ${attempt}`);
  return `"\${RUNCTL_INSTANCE_ROOT:-}/opt/runctl/attempts/${id}/${attempt}"`;
}

/** Where a training instance reaches the control plane, and for which run and attempt it asks. */
export interface ControlTarget {
  /** Base URL of runctl's HTTP API (its agent routes). */
  endpoint: string;
  region: string;
  runId: string;
  attempt: number;
}

/**
 * Bash lines that give the rest of a training-instance command the run's own credentials: they
 * install control.py and an AWS CLI config whose `credential_process` asks the agent routes for
 * the run's short-lived credentials, and drop any other credentials from the environment. The
 * instance role itself can do nothing a run needs (see docs/deploy.md), so every AWS CLI call
 * after these lines acts as the run, and only as the run.
 */
export function runCredentialsPreamble(target: ControlTarget): string[] {
  const control = ControlSchema.parse({ endpoint: target.endpoint });
  const runId = AgentIdSchema.parse(target.runId);
  if (!Number.isInteger(target.attempt) || target.attempt < 1) throw new Error(`attempt must be a positive integer, got ${target.attempt}`);
  if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(target.region)) throw new Error(`region must look like us-east-1, got ${target.region}`);
  // Every value is validated above to hold no whitespace or quotes: botocore splits the line like a shell.
  const process = [
    'python3 "$ctl/control.py"',
    `--endpoint ${control.endpoint}`,
    `--region ${target.region}`,
    `--run-id ${runId}`,
    `--attempt ${target.attempt}`,
    `--cache "$ctl/credentials-${runId}-${target.attempt}.json"`,
    'credentials',
  ].join(' ');
  return [
    'ctl="${RUNCTL_INSTANCE_ROOT:-}/opt/runctl/control"',
    '(umask 077 && mkdir -p "$ctl")',
    // Written beside and renamed: an agent's heartbeat may be starting control.py at this moment.
    `(umask 077 && printf '%s' '${base64(CONTROL_SCRIPT)}' | base64 -d > "$ctl/control.py.$$" && mv -f "$ctl/control.py.$$" "$ctl/control.py")`,
    `(umask 077 && printf '[default]\nregion = %s\ncredential_process = %s\n' '${target.region}' "${process.replaceAll('"', '\\"')}" > "$ctl/aws-config-${runId}-${target.attempt}")`,
    `export AWS_CONFIG_FILE="$ctl/aws-config-${runId}-${target.attempt}" RUNCTL_CONTROL_PY="$ctl/control.py"`,
    'unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE',
    // Fetched into control.py's cache in the background while the first AWS CLI imports (about
    // 0.8 s of CPU): its credential_process then reads the cache instead of waiting on the
    // agent routes. A failure here is the CLI's to report, when it asks for itself.
    `(${process} >/dev/null 2>&1 &)`,
  ];
}

/**
 * The bash text sent through SSM `AWS-RunShellScript` that installs and starts the agent for
 * one attempt. It returns at once: the agent runs detached (`setsid nohup`), so SSM's 48 hour
 * command limit does not apply. A second launch of the same attempt exits 0 without starting
 * anything (an atomic `mkdir` marker), so retried LaunchTraining states are harmless.
 * The script and config travel as base64 (≈25 KB, well inside SSM's parameter size limit);
 * the task token is not in either.
 */
export function buildAgentLaunchCommand(input: AgentConfigInput): string {
  const config = parseAgentConfig(input);
  const dir = attemptDir(config.runId, config.attempt);
  return [
    '#!/bin/bash',
    'set -euo pipefail',
    `dir=${dir}`,
    'mkdir -p "$dir"',
    'if ! mkdir "$dir/launched" 2>/dev/null; then',
    `  echo '{"launched":false,"reason":"this attempt was already launched on this instance"}'`,
    '  exit 0',
    'fi',
    'umask 077',
    ...runCredentialsPreamble({ endpoint: config.control.endpoint, region: config.region, runId: config.runId, attempt: config.attempt }),
    `printf '%s' '${base64(AGENT_SCRIPT)}' | base64 -d > "$dir/agent.sh"`,
    `printf '%s' '${base64(JSON.stringify(config))}' | base64 -d > "$dir/config.json"`,
    'setsid nohup bash "$dir/agent.sh" "$dir" </dev/null >>"$dir/agent.log" 2>&1 &',
    `echo '{"launched":true}'`,
    '',
  ].join('\n');
}

function controlCommand(runId: string, attempt: number, file: string, content: string): string {
  const dir = attemptDir(runId, attempt);
  return [
    '#!/bin/bash',
    'set -euo pipefail',
    `dir=${dir}`,
    'if [ ! -d "$dir/launched" ]; then',
    `  echo "no runctl agent for attempt ${attempt} of run ${runId} on this instance" >&2`,
    `  exit ${CONTROL_EXIT_NO_AGENT}`,
    'fi',
    'mkdir -p "$dir/control"',
    // Written then renamed, so the agent never reads a half-written file.
    `printf '%s' '${content}' > "$dir/control/${file}.tmp"`,
    `mv "$dir/control/${file}.tmp" "$dir/control/${file}"`,
    `echo '{"delivered":"${file}"}'`,
    '',
  ].join('\n');
}

/** Asks the agent of an attempt to checkpoint now and call back `Spot.Interrupted`. */
export function checkpointNowCommand(
  runId: string,
  attempt: number,
  reason: 'spot-warning' | 'requested' | 'handover' = 'spot-warning',
): string {
  return controlCommand(runId, attempt, 'checkpoint-now', reason);
}

/** Asks the agent of an attempt to checkpoint, stop and call back `Run.Cancelled`. */
export function stopCommand(runId: string, attempt: number): string {
  return controlCommand(runId, attempt, 'stop', 'requested');
}

export interface PrefetchItem {
  /** `s3://bucket/prefix/` (synced) or `s3://bucket/key` of one object (copied). */
  source: string;
  /** Absolute instance path; a prefix lands inside it, an object lands at it (or inside it when it ends with "/"). */
  target: string;
}

/**
 * The bash text that copies each data source to its target on the instance. It prints one JSON
 * line per source (`{"source","target","bytes","seconds"}`), and stops with exit code
 * `PREFETCH_EXIT.sourceMissing` when a source lists nothing, `accessDenied` when S3 refuses, and
 * `manifestMismatch` when a prefix carries a dataset manifest (`_runctl_manifest.json`) that its
 * copy does not match (verify_manifest.py names the first bad file).
 */
export function prefetchCommand(data: readonly PrefetchItem[], control: ControlTarget): string {
  const lines = [
    '#!/bin/bash',
    'set -uo pipefail',
    ...runCredentialsPreamble(control),
    `(umask 077 && printf '%s' '${base64(verifyManifestScript)}' | base64 -d > "$ctl/verify_manifest.py")`,
    'root="${RUNCTL_INSTANCE_ROOT:-}"',
    // Refused credentials count as denied too: either way the instance role needs fixing.
    'denied="AccessDenied|Forbidden|403|InvalidAccessKeyId|SignatureDoesNotMatch|ExpiredToken"',
    'fetch() {',
    '  local source=$1 target="$root$2" started err listing bucket key object rc',
    '  started=$(date +%s%N)',
    '  err=$(mktemp)',
    '  bucket=${source#s3://}; key=${bucket#*/}; bucket=${bucket%%/*}',
    '  list() {',
    '    listing=$(aws s3api list-objects-v2 --bucket "$bucket" --prefix "$1" --max-items 1 --query "Contents[].Key" --output text 2>"$err")',
    '    local rc=$?',
    '    if [ "$listing" = None ]; then listing=""; fi',
    '    if [ $rc -eq 0 ]; then return 0; fi',
    // A bucket that does not exist is a spec to fix, like a prefix with nothing under it.
    '    if grep -q NoSuchBucket "$err"; then',
    `      echo "runctl prefetch: data source $source is missing (bucket $bucket does not exist)" >&2; exit ${PREFETCH_EXIT.sourceMissing}`,
    '    fi',
    '    if grep -qE "$denied" "$err"; then',
    `      echo "runctl prefetch: access denied to $source: $(tail -n 1 "$err")" >&2; exit ${PREFETCH_EXIT.accessDenied}`,
    '    fi',
    `    echo "runctl prefetch: cannot list $source: $(tail -n 1 "$err")" >&2; exit ${PREFETCH_EXIT.copyFailed}`,
    '  }',
    '  missing() {',
    `    echo "runctl prefetch: data source $source is missing (nothing under it)" >&2; exit ${PREFETCH_EXIT.sourceMissing}`,
    '  }',
    '  object=no',
    '  if [ "${source%/}" != "$source" ]; then',
    // A source ending in "/" is a prefix: copy at once, and list only when the copy brought nothing
    // (a missing or empty prefix, or the files already there): one AWS CLI start on the common
    // path instead of two (each costs seconds on a busy instance), the same outcome on the others.
    '    mkdir -p "$target"',
    '    aws s3 sync "$source" "$target" --no-progress 2>"$err" >"$err.out"',
    '    rc=$?',
    '    if [ $rc -ne 0 ] && grep -q NoSuchBucket "$err"; then',
    `      echo "runctl prefetch: data source $source is missing (bucket $bucket does not exist)" >&2; exit ${PREFETCH_EXIT.sourceMissing}`,
    '    fi',
    '    if [ $rc -eq 0 ] && ! grep -q "^download: " "$err.out"; then list "$key"; if [ -z "$listing" ]; then missing; fi; fi',
    '    rm -f "$err.out"',
    '  else',
    // One key is enough to tell an object from a prefix from nothing; a full listing of a large dataset is slow.
    '    list "$key"; if [ "$listing" = "$key" ]; then object=yes; else key="$key/"; list "$key"; fi',
    '    if [ -z "$listing" ]; then missing; fi',
    '    if [ $object = yes ]; then',
    // One object: copy it to the target path (or into the target directory).
    '      if [ "${target%/}" != "$target" ]; then mkdir -p "$target"; else mkdir -p "$(dirname "$target")"; fi',
    '      aws s3 cp "$source" "$target" --only-show-errors 2>"$err" >&2',
    '    else',
    '      mkdir -p "$target"',
    '      aws s3 sync "$source/" "$target" --only-show-errors 2>"$err" >&2',
    '    fi',
    '    rc=$?',
    '  fi',
    '  if [ $rc -ne 0 ]; then',
    '    if grep -qE "$denied" "$err"; then',
    `      echo "runctl prefetch: access denied to $source: $(tail -n 1 "$err")" >&2; exit ${PREFETCH_EXIT.accessDenied}`,
    '    fi',
    `    echo "runctl prefetch: copying $source failed: $(tail -n 1 "$err")" >&2; exit ${PREFETCH_EXIT.copyFailed}`,
    '  fi',
    // The copy is checked before training sees it: a manifest that does not match is the dataset's to fix.
    `  if [ $object = no ] && [ -f "$target/${DATASET_MANIFEST_NAME}" ]; then`,
    `    python3 "$ctl/verify_manifest.py" "$source" "$target" || exit ${PREFETCH_EXIT.manifestMismatch}`,
    '  fi',
    '  rm -f "$err"',
    '  python3 - "$source" "$2" "$target" "$started" "$(date +%s%N)" <<\'PY\'',
    'import json, os, sys',
    'source, shown, target, started, ended = sys.argv[1:6]',
    'if os.path.isdir(target):',
    '    size = sum(os.path.getsize(os.path.join(b, n)) for b, _, ns in os.walk(target) for n in ns)',
    'else:',
    '    size = os.path.getsize(target)',
    'print(json.dumps({"source": source, "target": shown, "bytes": size, "seconds": round((int(ended) - int(started)) / 1e9, 3)}))',
    'PY',
    '}',
  ];
  for (const item of data) {
    if (!/^s3:\/\/[^/]+\/?/.test(item.source)) throw new Error(`data source must be an s3:// URI, got ${item.source}`);
    if (!item.target.startsWith('/') || item.target.split('/').includes('..')) {
      throw new Error(`data target must be an absolute path without "..", got ${item.target}`);
    }
    lines.push(`fetch ${shellQuote(item.source)} ${shellQuote(item.target)}`);
  }
  lines.push('');
  return lines.join('\n');
}
