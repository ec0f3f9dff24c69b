#!/usr/bin/env bash
# runctl agent: runs one training attempt on one instance and reports its outcome to the
# Step Functions execution that waits for it. Started detached by the text that
# buildAgentLaunchCommand (commands.ts) sends through SSM, as `agent.sh <attempt state dir>`;
# the state dir holds config.json. See docs/agent.md.
#
# It needs only bash, coreutils, python3, curl and the AWS CLI (all on a Deep Learning AMI).
# Every instance path is prefixed with RUNCTL_INSTANCE_ROOT (empty on EC2), and every AWS
# endpoint comes from the standard AWS_ENDPOINT_URL_<SERVICE> variables, so the local backend
# runs this same text in a sandbox directory.
#
# No task token and no credential ever reaches the instance: the AWS CLI gets the run's own
# short-lived credentials through the `credential_process` that the launch command set up
# (control.py, AWS_CONFIG_FILE), and heartbeats and outcomes go to runctl's agent routes,
# which relay them with the token stored on the run record (docs/deploy.md).

# Not `set -e`: a failed upload must be reported and retried, never kill the agent silently.
set -uo pipefail
umask 077

STATE_DIR=${1:?usage: agent.sh STATE_DIR}
ROOT=${RUNCTL_INSTANCE_ROOT:-}
IMDS=${RUNCTL_IMDS_ENDPOINT:-http://169.254.169.254}
PY="$STATE_DIR/agent.py"
CONTROL_DIR="$STATE_DIR/control"
CONTROL_PY=${RUNCTL_CONTROL_PY:-$ROOT/opt/runctl/control/control.py}
LATEST_FILE="$STATE_DIR/latest.json"
SEQ_FILE="$STATE_DIR/checkpoint-seq"
FINGERPRINT_FILE="$STATE_DIR/checkpoint-fingerprint"
SNAPSHOT_DIR="$STATE_DIR/snapshot"
UPLOAD_DIR="$STATE_DIR/upload"
TRAIN_PID=""
TRAIN_EXIT=0
SYNC_PID=""
ROUND_PID=""
# Set on the last checkpoint of the attempt (interrupt, finish): a sharded round is then final.
ROUND_FINAL=0
# How often a rank above 0 of a sharded run reads rank 0's round announcement (one signed GET).
ROUND_POLL_MS=2000
HEARTBEAT_LOOP_PID=""
LIVE_PID=""
DOCKER_IMAGE=""
DOCKER_ARGV=()
# NAME=value of each spec.secrets entry, in this process's memory only (see resolve_secrets).
SECRET_ENV=()

write_python_helper() {
  cat >"$PY" <<'PY'
import datetime, hashlib, json, math, os, re, shlex, sys

def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3] + 'Z'

def write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(text)

def read_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default

def files_of(root):
    out = []
    for base, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            full = os.path.join(base, name)
            if os.path.isfile(full):
                out.append((os.path.relpath(full, root), full))
    return out

# --- multi-node runs (docs/multi-node.md): the `node` block of the config; absent on one node ---
def node_of(c):
    return c.get('node') or {}

def rank_of(c):
    return int(node_of(c).get('rank', 0))

def log_key(c):
    # Rank 0 keeps the single-node key (readers of one-node runs need no change).
    rank = rank_of(c)
    return '%s/logs/attempt-%d%s.log' % (c['runPrefix'], int(c['attempt']), '-node-%d' % rank if rank else '')

def node_env(c):
    node = node_of(c)
    if not node:
        return {}
    return {'RUNCTL_NODE_RANK': str(node['rank']), 'RUNCTL_NUM_NODES': str(node['count']),
            'RUNCTL_MASTER_ADDR': node['masterAddr'], 'RUNCTL_MASTER_PORT': str(node['masterPort'])}

def launch_argv(c):
    # The layout of torchrunArgv (shared/agent/node.ts): static rendezvous at rank 0's address,
    # a new rendezvous id per attempt; then the script and its arguments, each one element.
    node = node_of(c)
    dist = node.get('distributed')
    if not dist:
        return list(c['argv'])
    return ['torchrun', '--nnodes', str(node['count']), '--node-rank', str(node['rank']),
            '--master-addr', node['masterAddr'], '--master-port', str(node['masterPort']),
            '--nproc-per-node', str(dist['nprocPerNode']), '--rdzv-id', node['rendezvousId']] + list(c['argv'])

def config(path, argv_out, env_out):
    c = read_json(path)
    ms = lambda seconds: str(int(float(seconds) * 1000))
    ck = c.get('checkpoint', {})
    values = {
        'RUN_ID': c['runId'], 'ATTEMPT': str(c['attempt']), 'REGION': c['region'],
        'BUCKET': c['bucket'], 'RUN_PREFIX': c['runPrefix'], 'CODE_BUNDLE': c['codeBundle'],
        'RESUME_FROM': c.get('resumeFrom') or '',
        'CHECKPOINT_DIR_REL': ck.get('dir', '/opt/runctl/checkpoints'),
        'SYNC_MS': ms(ck.get('intervalSeconds', 300)), 'STOP_SIGNAL': ck.get('stopSignal', 'TERM'),
        'GRACE_MS': ms(ck.get('graceSeconds', 90)),
        'OUTPUT_DIR_REL': c.get('outputDir', '/opt/runctl/output'),
        'WORK_DIR_REL': c.get('workDir', '/opt/runctl/work'),
        'HEARTBEAT_MS': ms(c.get('heartbeatSeconds', 60)), 'IMDS_POLL_MS': ms(c.get('imdsPollSeconds', 5)),
        'CONTROL_ENDPOINT': c['control']['endpoint'],
        'NODE_RANK': str(rank_of(c)), 'NUM_NODES': str(node_of(c).get('count', 1)),
        'CKPT_RANKS': ck.get('ranks') or 'rank0', 'LOG_KEY': log_key(c),
        'PARTS_WAIT_MS': ms(node_of(c).get('partsWaitSeconds', 90)),
    }
    docker = c.get('docker') or {}
    values.update({
        'DOCKER_IMAGE': docker.get('image', ''), 'DOCKER_REGISTRY': docker.get('registry', ''),
        'DOCKER_REGION': docker.get('region') or c['region'], 'DOCKER_GPUS': str(docker.get('gpus', 'auto')),
        'CONTAINER': 'runctl-%s-%s' % (c['runId'], c['attempt']) if docker else '',
    })
    for key, value in values.items():
        print('%s=%s' % (key, shlex.quote(value)))
    # NUL-separated, so newlines and quotes inside an argument survive untouched.
    with open(argv_out, 'w') as f:
        f.write(''.join(arg + '\0' for arg in launch_argv(c)))
    # The node's RUNCTL_* after the run's env: a spec cannot name RUNCTL_ variables anyway.
    with open(env_out, 'w') as f:
        f.write(''.join('%s=%s\0' % kv for kv in list((c.get('env') or {}).items()) + list(node_env(c).items())))

MOUNT_PATH = re.compile(r'^/[^:,\0\n]*$')

def docker_argv(config_path, root, code_dir, checkpoint_dir, output_dir, resume_dir, gpus, out):
    # The layout of dockerRunArgv (shared/agent/docker.ts): --init forwards the stop signal to
    # the training process; every path is mounted at the same place inside, so RUNCTL_* paths
    # mean the same to the script and to the agent that syncs them.
    c = read_json(config_path)
    docker = c['docker']
    ck = c.get('checkpoint', {})
    mounts = [(root + m['path'], bool(m.get('readOnly'))) for m in docker.get('mounts', [])]
    mounts += [(checkpoint_dir, False), (output_dir, False), (code_dir, False)]
    if resume_dir:
        mounts.append((resume_dir, True))
    argv = ['docker', 'run', '--rm', '--init', '--name', 'runctl-%s-%s' % (c['runId'], c['attempt'])]
    # Resolved by the agent: docker.gpus "auto" becomes "all" only where nvidia-smi lists a GPU.
    if gpus != 'none':
        argv += ['--gpus', str(gpus)]
    argv += ['--stop-signal', 'SIG' + ck.get('stopSignal', 'TERM'),
             '--stop-timeout', str(int(math.ceil(float(ck.get('graceSeconds', 90))))),
             '--network', 'host', '--ipc', 'host']
    for path, read_only in mounts:
        if not MOUNT_PATH.match(path):
            sys.exit('runctl agent: %r cannot be mounted into the container (":" and "," are docker separators)' % path)
        argv += ['-v', '%s:%s%s' % (path, path, ':ro' if read_only else '')]
    env = dict(c.get('env') or {})
    env.update({'RUNCTL_RUN_ID': c['runId'], 'RUNCTL_ATTEMPT': str(c['attempt']),
                'RUNCTL_CHECKPOINT_DIR': checkpoint_dir, 'RUNCTL_RESUME_FROM': resume_dir,
                'RUNCTL_OUTPUT_DIR': output_dir})
    env.update(node_env(c))
    if root:
        # The local backend's instance root: a script that reads a fixed path such as /data
        # prefixes it, inside the container as outside (the mounts keep the prefix).
        env['RUNCTL_INSTANCE_ROOT'] = root
    for key, value in env.items():
        argv += ['-e', '%s=%s' % (key, value)]
    # Secrets by name only: docker takes each value from its own environment, which the agent
    # sets for the docker CLI alone, so no value is ever on a command line or in this file.
    for key in sorted(c.get('secrets') or {}):
        argv += ['-e', key]
    argv += ['-w', code_dir, docker['image']] + launch_argv(c)
    with open(out, 'w') as f:
        f.write(''.join(arg + '\0' for arg in argv))

def request(out, *fields):
    body = {}
    for field in fields:
        key, _, value = field.partition('=')
        if value.startswith('json@'):
            # A JSON document as the field's value (an object, not its text); skipped if unreadable.
            parsed = read_json(value[5:])
            if parsed is not None:
                body[key] = parsed
            continue
        if value.startswith('@'):
            with open(value[1:]) as f:
                value = f.read()
        body[key] = value
    write_private(out, json.dumps(body))

def metric_records(defs, text, attempt, stamp):
    records = []
    for line in text.splitlines():
        values = {}
        stripped = line.strip()
        if stripped.startswith('{') and stripped.endswith('}'):
            try:
                obj = json.loads(stripped)
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                for key, value in obj.items():
                    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                        values[key] = value
        for name, rx in defs:
            m = rx.search(line)
            if m:
                try:
                    values[name] = float(m.group(1) if rx.groups else m.group(0))
                except (TypeError, ValueError):
                    pass
        values.pop('ts', None)
        values.pop('attempt', None)
        if values:
            record = {'ts': stamp, 'attempt': int(attempt)}
            record.update(values)
            records.append(record)
    return records

def metric_defs(config_path):
    return [(d['name'], re.compile(d['regex'])) for d in (read_json(config_path) or {}).get('metricDefinitions', [])]

# --- live shipping: the log and the metric rows reach S3 within a second of the print ---
# One long-lived process per attempt (started by the agent beside the training): every 0.25 s
# it reads what the script printed since the last tick, stamps the metric rows with that time,
# and PUTs the new bytes as objects of their own under runs/<id>/live/attempt-<n>/, named by
# their byte offset (log-<offset>, metrics-<offset>), so a reader puts them in order and
# a retried PUT is harmless. It signs with SigV4 itself (no AWS CLI start-up per chunk), with
# the credentials the AWS CLI would use: environment, the config's credential_process (the
# run's own credentials, see control.py), shared credentials file, or the instance role.
import base64, hmac, html, time, urllib.error, urllib.parse, urllib.request, signal, configparser

LIVE_TICK = 0.25
LIVE_MAX_CHUNK = 1024 * 1024
# Live chunks a consolidated upload holds are deleted this long after that upload, checked this often.
LIVE_PRUNE_AFTER = float(os.environ.get('RUNCTL_LIVE_PRUNE_AFTER_SECONDS', '30'))
LIVE_PRUNE_EVERY = 5

class Credentials:
    def __init__(self, imds):
        self.imds = imds
        self.cached = None
        self.expires = 0

    @staticmethod
    def cached_by_process(command):
        if '--cache' not in command[:-1]:
            return None
        doc = read_json(command[command.index('--cache') + 1])
        try:
            expires = datetime.datetime.strptime(doc['Expiration'][:19], '%Y-%m-%dT%H:%M:%S').replace(tzinfo=datetime.timezone.utc)
        except (TypeError, KeyError, ValueError):
            return None
        return doc if expires.timestamp() - time.time() > 20 * 60 else None

    def get(self):
        env = os.environ
        if env.get('AWS_ACCESS_KEY_ID') and env.get('AWS_SECRET_ACCESS_KEY'):
            return env['AWS_ACCESS_KEY_ID'], env['AWS_SECRET_ACCESS_KEY'], env.get('AWS_SESSION_TOKEN') or ''
        if self.cached and time.time() < self.expires - 300:
            return self.cached
        # The run's own credentials: the `credential_process` of the AWS config the launch
        # command wrote (control.py asks the agent routes), run the way the AWS CLI runs it.
        config = configparser.ConfigParser()
        if env.get('AWS_CONFIG_FILE') and config.read(env['AWS_CONFIG_FILE']) and config.has_option('default', 'credential_process'):
            import shlex, subprocess
            command = shlex.split(config.get('default', 'credential_process'))
            # control.py's own cache, read here while fresh (its margin): no process per request.
            doc = self.cached_by_process(command)
            if doc is None:
                out = subprocess.run(command, capture_output=True, check=True, timeout=30)
                doc = json.loads(out.stdout)
            self.cached = (doc['AccessKeyId'], doc['SecretAccessKey'], doc.get('SessionToken', ''))
            self.expires = datetime.datetime.strptime(doc['Expiration'][:19], '%Y-%m-%dT%H:%M:%S').replace(tzinfo=datetime.timezone.utc).timestamp()
            return self.cached
        path = env.get('AWS_SHARED_CREDENTIALS_FILE') or os.path.expanduser('~/.aws/credentials')
        parser = configparser.ConfigParser()
        if parser.read(path):
            section = env.get('AWS_PROFILE') or 'default'
            if parser.has_option(section, 'aws_access_key_id'):
                return (parser.get(section, 'aws_access_key_id'), parser.get(section, 'aws_secret_access_key'),
                        parser.get(section, 'aws_session_token', fallback=''))
        if self.cached and time.time() < self.expires - 300:
            return self.cached
        if self.imds == 'off':
            raise RuntimeError('no AWS credentials in the environment, the credentials file or the instance metadata')
        put = urllib.request.Request(self.imds + '/latest/api/token', method='PUT',
                                     headers={'X-aws-ec2-metadata-token-ttl-seconds': '300'})
        token = urllib.request.urlopen(put, timeout=2).read().decode()
        base = self.imds + '/latest/meta-data/iam/security-credentials/'
        get = lambda url: urllib.request.urlopen(urllib.request.Request(url, headers={'X-aws-ec2-metadata-token': token}), timeout=2).read().decode()
        role = get(base).strip().splitlines()[0]
        doc = json.loads(get(base + role))
        self.cached = (doc['AccessKeyId'], doc['SecretAccessKey'], doc.get('Token', ''))
        expiration = datetime.datetime.strptime(doc['Expiration'], '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=datetime.timezone.utc)
        self.expires = expiration.timestamp()
        return self.cached

def run_credentials():
    """The run's credentials, as every signed request of this helper gets them."""
    return Credentials(os.environ.get('RUNCTL_IMDS_ENDPOINT', 'http://169.254.169.254'))

def sign_v4(creds, service, region, method, path, query, headers, payload_hash):
    """Adds x-amz-date, the session token and the SigV4 authorization to `headers` (which
    holds `host` and every other header to sign), for a request whose body hashes to `payload_hash`."""
    access, secret, session = creds.get()
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime('%Y%m%dT%H%M%SZ'), now.strftime('%Y%m%d')
    headers['x-amz-date'] = amz_date
    if session:
        headers['x-amz-security-token'] = session
    names = sorted(headers)
    canonical = '\n'.join([method, path, query, ''.join('%s:%s\n' % (n, headers[n]) for n in names), ';'.join(names), payload_hash])
    scope = '%s/%s/%s/aws4_request' % (day, region, service)
    to_sign = '\n'.join(['AWS4-HMAC-SHA256', amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key_bytes = ('AWS4' + secret).encode()
    for part in (day, region, service, 'aws4_request'):
        key_bytes = hmac.new(key_bytes, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key_bytes, to_sign.encode(), hashlib.sha256).hexdigest()
    headers['authorization'] = 'AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s' % (access, scope, ';'.join(names), signature)

def s3_location(region, bucket, key):
    """(url, host, path) of an object, path-style on the endpoint AWS_ENDPOINT_URL_S3 names."""
    endpoint = os.environ.get('AWS_ENDPOINT_URL_S3') or os.environ.get('AWS_ENDPOINT_URL')
    quoted = urllib.parse.quote(key, safe='/-_.~')
    if endpoint:
        parts = urllib.parse.urlsplit(endpoint)
        host, path = parts.netloc, (parts.path.rstrip('/') + '/' + bucket + ('/' + quoted if key else ''))
        return '%s://%s%s' % (parts.scheme, host, path), host, path
    host, path = '%s.s3.%s.amazonaws.com' % (bucket, region), '/' + quoted
    return 'https://' + host + path, host, path

def s3_put(creds, region, bucket, key, body, extra_headers=None, subresource='', method='PUT'):
    """One signed PUT of an object (or of its `subresource`, such as `tagging`). `body` is
    bytes or a file path (streamed, hashed first). With method='DELETE' (and an empty body),
    the object is deleted."""
    url, host, path = s3_location(region, bucket, key)
    if subresource:
        url += '?' + subresource
    if isinstance(body, str):
        digest = hashlib.sha256()
        with open(body, 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                digest.update(block)
        payload, length = digest.hexdigest(), os.path.getsize(body)
    else:
        payload, length = hashlib.sha256(body).hexdigest(), len(body)
    headers = {'host': host, 'x-amz-content-sha256': payload}
    headers.update(extra_headers or {})
    sign_v4(creds, 's3', region, method, path, subresource + '=' if subresource else '', headers, payload)
    del headers['host']
    headers['content-length'] = str(length)
    if isinstance(body, str):
        with open(body, 'rb') as f:
            request = urllib.request.Request(url, data=f, method='PUT', headers=headers)
            urllib.request.urlopen(request, timeout=60).read()
    else:
        request = urllib.request.Request(url, data=body if method != 'DELETE' else None, method=method, headers=headers)
        return urllib.request.urlopen(request, timeout=10).read()

class NotFound(Exception):
    pass

def s3_get(creds, region, bucket, key, dest):
    """One signed GET of an object, streamed to `dest` (written whole or not at all). Raises
    NotFound for a missing object."""
    url, host, path = s3_location(region, bucket, key)
    empty = hashlib.sha256(b'').hexdigest()
    headers = {'host': host, 'x-amz-content-sha256': empty}
    sign_v4(creds, 's3', region, 'GET', path, '', headers, empty)
    del headers['host']
    try:
        answer = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            raise NotFound('s3://%s/%s' % (bucket, key))
        raise
    os.makedirs(os.path.dirname(dest) or '.', exist_ok=True)
    partial = dest + '.part'
    with answer, open(partial, 'wb') as f:
        for block in iter(lambda: answer.read(1 << 20), b''):
            f.write(block)
    os.replace(partial, dest)

def split_uri(uri):
    bucket, _, key = uri[len('s3://'):].partition('/')
    return bucket, key

# Objects up to this size move with one signed request each, 8 at a time, from this helper: no
# AWS CLI start-up (about a second, several on a loaded instance) on the paths a spot warning
# waits for. A tree holding a larger file goes through the AWS CLI's parallel multipart transfer.
DIRECT_MAX_BYTES = int(os.environ.get('RUNCTL_AGENT_DIRECT_MAX_BYTES', str(64 << 20)))
DIRECT = 3  # exit code: the tree is too large for direct transfer; nothing was sent

def transfer_all(jobs, progress_out, total):
    import threading
    from concurrent.futures import ThreadPoolExecutor
    done, lock = [0], threading.Lock()
    def run(job):
        action, size = job
        action()
        with lock:
            done[0] += size
            if progress_out:
                write_private(progress_out, json.dumps({'bytes': min(done[0], total), 'totalBytes': total}))
    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(run, job) for job in jobs]:
            future.result()

def put_tree(config_path, root, uri, progress_out=''):
    # put-tree CONFIG DIR s3://BUCKET/PREFIX/ [PROGRESS]: every file under DIR to PREFIX/<its
    # relative path>. Exit 3, having sent nothing, when a file is over DIRECT_MAX_BYTES.
    c = read_json(config_path)
    files = [(rel, full, os.path.getsize(full)) for rel, full in files_of(root)]
    if any(size > DIRECT_MAX_BYTES for _, _, size in files):
        sys.exit(DIRECT)
    bucket, prefix = split_uri(uri)
    creds = run_credentials()
    creds.get()
    def put_one(rel, full):
        return lambda: s3_put(creds, c['region'], bucket, prefix + rel.replace(os.sep, '/'), full)
    try:
        transfer_all([(put_one(rel, full), size) for rel, full, size in files], progress_out, sum(f[2] for f in files))
    except Exception as error:
        sys.stderr.write('upload to %s failed: %s\n' % (uri, error))
        sys.exit(1)

def get(config_path, uri, dest, *flags):
    # get CONFIG s3://BUCKET/KEY FILE [--optional]: one object to FILE. Exit 4 when it does not
    # exist and --optional is given, 1 on any other failure.
    c = read_json(config_path)
    bucket, key = split_uri(uri)
    creds = run_credentials()
    try:
        s3_get(creds, c['region'], bucket, key, dest)
    except NotFound:
        if '--optional' in flags:
            sys.exit(4)
        sys.stderr.write('%s does not exist\n' % uri)
        sys.exit(1)
    except Exception as error:
        sys.stderr.write('download of %s failed: %s\n' % (uri, error))
        sys.exit(1)

def get_checkpoint(config_path, uri, dest, *flags):
    # get-checkpoint CONFIG s3://BUCKET/PREFIX/ DIR [--rank R]: the files its _COMPLETE.json lists,
    # into DIR; with --rank, only rank R's part of a sharded checkpoint (rank-R/…, without that
    # prefix). Exit 3, having written nothing, when the marker lists no files (written before it
    # did) or a file is over DIRECT_MAX_BYTES.
    c = read_json(config_path)
    part = 'rank-%d/' % int(flags[flags.index('--rank') + 1]) if '--rank' in flags else ''
    bucket, prefix = split_uri(uri)
    creds = run_credentials()
    marker = os.path.join(os.path.dirname(config_path), 'resume-complete.json')
    try:
        s3_get(creds, c['region'], bucket, prefix + '_COMPLETE.json', marker)
    except Exception as error:
        sys.stderr.write('reading %s_COMPLETE.json failed: %s\n' % (uri, error))
        sys.exit(1)
    paths = (read_json(marker, {}) or {}).get('paths')
    if not isinstance(paths, list) or any(p.get('bytes', 0) > DIRECT_MAX_BYTES for p in paths):
        sys.exit(DIRECT)
    if part:
        paths = [dict(p, key=p['key'][len(part):], source=p['key']) for p in paths if p['key'].startswith(part)]
        if not paths:
            sys.stderr.write('%s_COMPLETE.json holds no part for %s\n' % (uri, part.rstrip('/')))
            sys.exit(1)
    root = os.path.realpath(dest)
    jobs = []
    for p in paths:
        target = os.path.realpath(os.path.join(root, p['key']))
        if not target.startswith(root + os.sep):
            sys.stderr.write('%s_COMPLETE.json lists %r, outside the checkpoint\n' % (uri, p['key']))
            sys.exit(1)
        jobs.append(((lambda key, target: lambda: s3_get(creds, c['region'], bucket, prefix + key, target))(p.get('source', p['key']), target), p['bytes']))
    try:
        transfer_all(jobs, '', sum(p['bytes'] for p in paths))
    except Exception as error:
        sys.stderr.write('restoring %s failed: %s\n' % (uri, error))
        sys.exit(1)

# --- secrets: spec.secrets read with the run's credentials, into the training's environment only ---
# Parameter Store (`ssm:<name>`, GetParameter WithDecryption) and Secrets Manager (an ARN,
# GetSecretValue), each one signed JSON request (no AWS CLI start-up per secret). The values go to
# stdout, NUL-separated NAME=value records that the agent keeps in memory: never a file, a log
# line or an argv. An error names the variable and the reference, never a value.
SECRET_SERVICES = {
    # reference kind: (SigV4 service, X-Amz-Target, AWS_ENDPOINT_URL_<…> of the AWS CLI)
    'ssm': ('ssm', 'AmazonSSM.GetParameter', 'SSM'),
    'secretsmanager': ('secretsmanager', 'secretsmanager.GetSecretValue', 'SECRETS_MANAGER'),
}
SECRET_ARN = re.compile(r'^arn:aws[a-z-]*:secretsmanager:([a-z]{2}(?:-[a-z]+)+-\d):\d{12}:secret:.+$')
MAX_SECRET_BYTES = 64 * 1024

class SecretError(Exception):
    pass

def aws_json(creds, kind, region, body):
    """One signed JSON 1.1 call to Parameter Store or Secrets Manager; returns the decoded answer,
    or raises SecretError with AWS's error type (retried on throttling, 5xx and network errors)."""
    service, target, endpoint_var = SECRET_SERVICES[kind]
    endpoint = os.environ.get('AWS_ENDPOINT_URL_' + endpoint_var) or os.environ.get('AWS_ENDPOINT_URL')
    if endpoint:
        parts = urllib.parse.urlsplit(endpoint)
        host, path, url = parts.netloc, parts.path or '/', endpoint
    else:
        host = '%s.%s.amazonaws.com%s' % (service, region, '.cn' if region.startswith('cn-') else '')
        path, url = '/', 'https://%s/' % host
    payload = json.dumps(body).encode()
    for attempt in range(4):
        headers = {'host': host, 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': target}
        sign_v4(creds, service, region, 'POST', path, '', headers, hashlib.sha256(payload).hexdigest())
        del headers['host']
        try:
            with urllib.request.urlopen(urllib.request.Request(url, data=payload, method='POST', headers=headers), timeout=10) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as error:
            try:
                detail = json.loads(error.read() or b'{}')
            except ValueError:
                detail = {}
            kind_of = str(detail.get('__type', 'HTTP %d' % error.code)).rsplit('#', 1)[-1]
            transient = error.code >= 500 or 'Throttl' in kind_of or 'TooManyRequests' in kind_of
            if not transient or attempt == 3:
                message = str(detail.get('message') or detail.get('Message') or '')[:300]
                raise SecretError(kind_of + (': ' + message if message else ''))
        except (urllib.error.URLError, OSError) as error:
            if attempt == 3:
                raise SecretError('cannot reach %s (%s)' % (url, getattr(error, 'reason', error)))
        time.sleep(0.5 * 2 ** attempt)

def secret_value(creds, region, reference):
    if reference.startswith('ssm:'):
        answer = aws_json(creds, 'ssm', region, {'Name': reference[4:], 'WithDecryption': True})
        return (answer.get('Parameter') or {}).get('Value')
    arn = SECRET_ARN.match(reference)
    if arn is None:
        raise SecretError('not a Parameter Store reference (ssm:/…) or a Secrets Manager ARN')
    # The secret's own region: its ARN names it, and the request must go there.
    answer = aws_json(creds, 'secretsmanager', arn.group(1), {'SecretId': reference})
    if 'SecretString' in answer:
        return answer['SecretString']
    if 'SecretBinary' in answer:
        try:
            return base64.b64decode(answer['SecretBinary']).decode('utf-8')
        except (ValueError, UnicodeDecodeError):
            raise SecretError('the secret is binary, not text an environment variable can hold')
    return None

def secrets(config_path):
    # secrets CONFIG: every spec.secrets entry resolved, as NAME=value\0 records on stdout; the first
    # failure ends it with exit 1 and one line on stderr naming the variable and the reference.
    c = read_json(config_path)
    wanted = c.get('secrets') or {}
    if not wanted:
        return
    creds = run_credentials()
    out = []
    for name, reference in sorted(wanted.items()):
        try:
            value = secret_value(creds, c['region'], reference)
            if not isinstance(value, str):
                raise SecretError('the answer holds no value')
            if '\0' in value:
                raise SecretError('the value holds a NUL character, which no environment variable can')
            if len(value.encode('utf-8')) > MAX_SECRET_BYTES:
                raise SecretError('the value is over %d bytes: too large for an environment variable' % MAX_SECRET_BYTES)
        except Exception as error:
            reason = str(error) if isinstance(error, SecretError) else 'reading it failed (%s)' % type(error).__name__
            sys.stderr.write('secret %s (%s) could not be read: %s\n' % (name, reference, reason))
            sys.exit(1)
        out.append(('%s=%s\0' % (name, value)).encode('utf-8'))
    sys.stdout.buffer.write(b''.join(out))
    sys.stdout.flush()

def prune_chunks(creds, c, chunks, sizes):
    """Deletes the live chunks a consolidated upload already holds: `chunks` maps key → end
    offset in its stream (log or metrics), `sizes` the consolidated objects' sizes. Returns the
    chunks kept. A chunk not yet covered (the tail of a lost attempt) stays: readers need it."""
    covered = [key for key, end in chunks.items() if end <= sizes.get('log' if '/log-' in key else 'metrics', 0)]
    deleted = set()
    for start in range(0, len(covered), 1000):
        batch = covered[start:start + 1000]
        body = ('<Delete><Quiet>true</Quiet>%s</Delete>'
                % ''.join('<Object><Key>%s</Key></Object>' % html.escape(key) for key in batch)).encode()
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        try:
            answer = s3_put(creds, c['region'], c['bucket'], '', body, {'content-md5': md5}, 'delete', method='POST')
        except Exception as error:
            sys.stderr.write('%s [runctl] deleting %d live chunks failed (%s); they expire with the logs\n' % (now_iso(), len(batch), error))
            continue
        # Quiet mode lists only the keys that could not be deleted.
        failed = set(re.findall(r'<Key>([^<]*)</Key>', (answer or b'').decode('utf-8', 'replace')))
        deleted.update(key for key in batch if html.escape(key) not in failed and key not in failed)
    return {key: end for key, end in chunks.items() if key not in deleted}

def consolidated_sizes(c, state_dir):
    """Sizes of the log and metrics objects as last uploaded (put-seen.json: key → size:mtime)."""
    seen = read_json(os.path.join(state_dir, 'put-seen.json'), {}) or {}
    def size(key):
        stamp = seen.get(key)
        return int(stamp.split(':')[0]) if stamp else 0
    return {'log': size(log_key(c)),
            'metrics': size('%s/metrics.jsonl' % c['runPrefix'])}

def prune(config_path):
    # prune CONFIG: after the attempt's last upload, the live chunks it holds are deleted.
    c = read_json(config_path)
    state_dir = os.path.dirname(config_path)
    chunks_path = os.path.join(state_dir, 'live-chunks.json')
    chunks = read_json(chunks_path, {}) or {}
    if not chunks:
        return
    creds = run_credentials()
    write_private(chunks_path, json.dumps(prune_chunks(creds, c, chunks, consolidated_sizes(c, state_dir))))

def put(config_path, *args):
    # put CONFIG [--tagging=K=V] FILE KEY [FILE KEY ...]: in order, stopping at the first failure, so a
    # pointer written after the object it points at is never written without it. A file whose
    # size and modification time match its last upload is skipped.
    args = list(args)
    tagging = args.pop(0)[len('--tagging='):] if args and args[0].startswith('--tagging=') else ''
    c = read_json(config_path)
    creds = run_credentials()
    seen_path = os.path.join(os.path.dirname(config_path), 'put-seen.json')
    seen = read_json(seen_path, {}) or {}
    for path, key in zip(args[0::2], args[1::2]):
        if not os.path.exists(path):
            continue
        st = os.stat(path)
        stamp = '%d:%d' % (st.st_size, st.st_mtime_ns)
        if seen.get(key) == stamp:
            continue
        try:
            s3_put(creds, c['region'], c['bucket'], key, path)
        except Exception as error:
            sys.stderr.write('upload of s3://%s/%s failed: %s\n' % (c['bucket'], key, error))
            sys.exit(1)
        if tagging:
            tag_key, _, tag_value = tagging.partition('=')
            body = ('<Tagging><TagSet><Tag><Key>%s</Key><Value>%s</Value></Tag></TagSet></Tagging>'
                    % (html.escape(tag_key), html.escape(tag_value))).encode()
            md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
            try:
                s3_put(creds, c['region'], c['bucket'], key, body, {'content-md5': md5}, 'tagging')
            except Exception as error:
                sys.stderr.write('%s [runctl] tagging %s for expiry failed (%s); it is kept until deleted\n'
                                 % (now_iso(), key, error))
        seen[key] = stamp
        write_private(seen_path, json.dumps(seen))

def live(config_path, log_path, jsonl_path, last_path, state_dir):
    c = read_json(config_path)
    region, bucket, attempt = c['region'], c['bucket'], int(c['attempt'])
    # A rank above 0 ships its log under a prefix of its own, and no metrics: the run's are rank 0's.
    rank = rank_of(c)
    prefix = '%s/live/attempt-%d%s/' % (c['runPrefix'], attempt, '-node-%d' % rank if rank else '')
    defs = metric_defs(config_path)
    creds = run_credentials()
    offset_path = os.path.join(state_dir, 'live-offsets.json')
    offsets = read_json(offset_path, {}) or {}
    log_off = int(offsets.get('log', 0))
    # A fresh attempt's rows follow the earlier attempts' rows already in metrics.jsonl.
    metrics_off = int(offsets.get('metrics', os.path.getsize(jsonl_path) if os.path.exists(jsonl_path) else 0))
    last = read_json(last_path, {}) or {}
    pending = []  # (key, bytes, end offset) not yet accepted by S3, in order
    # Chunks S3 accepted (key → end offset in their stream), pruned once a consolidated upload
    # holds them. A reader that read the older size then finds the gap and reads again, so a
    # chunk goes only when its consolidated copy is LIVE_PRUNE_AFTER seconds old.
    chunks_path = os.path.join(state_dir, 'live-chunks.json')
    chunks = read_json(chunks_path, {}) or {}
    consolidated = []  # (first seen at, sizes), oldest first
    next_prune = time.time() + LIVE_PRUNE_EVERY
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    failures = 0
    partial_since = None
    while True:
        final = bool(stopping)
        try:
            with open(log_path, 'rb') as f:
                f.seek(log_off)
                data = f.read(LIVE_MAX_CHUNK)
        except OSError:
            data = b''
        end = data.rfind(b'\n') + 1
        # A line still being written waits for its newline, at most a second (a progress bar).
        if end == 0 and data:
            partial_since = partial_since or time.time()
            if final or time.time() - partial_since >= 1:
                end = len(data)
        if end > 0:
            partial_since = None
            chunk = data[:end]
            stamp = now_iso()
            pending.append(('%slog-%012d' % (prefix, log_off), chunk, log_off + end))
            log_off += end
            records = metric_records(defs, chunk.decode('utf-8', 'replace'), attempt, stamp) if rank == 0 else []
            if records:
                rows = ''.join(json.dumps(r) + '\n' for r in records).encode()
                with open(jsonl_path, 'ab') as f:
                    f.write(rows)
                for r in records:
                    last.update({k: v for k, v in r.items() if k not in ('ts', 'attempt')})
                write_private(last_path, json.dumps(last))
                pending.append(('%smetrics-%012d' % (prefix, metrics_off), rows, metrics_off + len(rows)))
                metrics_off += len(rows)
            write_private(offset_path, json.dumps({'log': log_off, 'metrics': metrics_off}))
            if len(data) == LIVE_MAX_CHUNK:
                continue
        while pending and (failures == 0 or final or time.time() >= retry_at):
            key, body, chunk_end = pending[0]
            try:
                # Tagged as a log: should the attempt never prune it, it expires with the logs.
                s3_put(creds, region, bucket, key, body, {'x-amz-tagging': 'runctl%3Akind=log'})
                pending.pop(0)
                failures = 0
                chunks[key] = chunk_end
                write_private(chunks_path, json.dumps(chunks))
            except Exception as error:
                failures += 1
                retry_at = time.time() + min(30, 0.5 * 2 ** min(failures, 6))
                if failures in (1, 5) or failures % 50 == 0:
                    sys.stderr.write('%s [runctl] live log upload failed (%s); the periodic upload still carries the log\n' % (now_iso(), error))
                    sys.stderr.flush()
                if final and failures >= 3:
                    return
                break
        if final and not pending:
            return
        if time.time() >= next_prune and not final:
            next_prune = time.time() + LIVE_PRUNE_EVERY
            sizes = consolidated_sizes(c, state_dir)
            if not consolidated or consolidated[-1][1] != sizes:
                consolidated.append((time.time(), sizes))
            old_enough = [entry for entry in consolidated if time.time() - entry[0] >= LIVE_PRUNE_AFTER]
            if old_enough and chunks:
                consolidated = consolidated[len(old_enough) - 1:]
                kept = prune_chunks(creds, c, chunks, old_enough[-1][1])
                if kept != chunks:
                    chunks = kept
                    write_private(chunks_path, json.dumps(chunks))
        time.sleep(LIVE_TICK)

def metrics(config_path, log_path, offset_path, jsonl_path, last_path, attempt):
    # Metric rows of log lines the live shipper has not read (it did not run, or stopped early).
    defs = metric_defs(config_path)
    offset = int((read_json(offset_path, {}) or {}).get('log', 0))
    try:
        with open(log_path, 'rb') as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return
    end = data.rfind(b'\n')
    if end < 0:
        return
    last = read_json(last_path, {}) or {}
    records = metric_records(defs, data[:end + 1].decode('utf-8', 'replace'), attempt, now_iso())
    for r in records:
        last.update({k: v for k, v in r.items() if k not in ('ts', 'attempt')})
    if records:
        with open(jsonl_path, 'a') as f:
            f.write(''.join(json.dumps(r) + '\n' for r in records))
        write_private(last_path, json.dumps(last))
    offsets = read_json(offset_path, {}) or {}
    offsets['log'] = offset + end + 1
    write_private(offset_path, json.dumps(offsets))

PROGRESS_LINE = re.compile(r'Completed ([0-9.]+) (Bytes|KiB|MiB|GiB|TiB)/~?([0-9.]+) (Bytes|KiB|MiB|GiB|TiB)')
UNITS = {'Bytes': 1, 'KiB': 1 << 10, 'MiB': 1 << 20, 'GiB': 1 << 30, 'TiB': 1 << 40}

def upload_progress(out):
    # The AWS CLI's transfer progress on stdin ("Completed 1.2 GiB/2.0 GiB (…) with 3 file(s)
    # remaining", one per line): the newest figures to OUT for the heartbeats; other lines
    # (errors) to stderr.
    for line in sys.stdin:
        match = PROGRESS_LINE.search(line)
        if match is None:
            # "upload: a to s3://…" per file is what --only-show-errors would have hidden.
            if line.strip() and not line.startswith('upload: '):
                sys.stderr.write(line)
            continue
        done = int(float(match.group(1)) * UNITS[match.group(2)])
        total = int(float(match.group(3)) * UNITS[match.group(4)])
        write_private(out, json.dumps({'bytes': min(done, total), 'totalBytes': total}))

def fingerprint(root):
    digest = hashlib.sha256()
    found = False
    for rel, full in files_of(root):
        st = os.stat(full)
        digest.update(('%s\0%d\0%d\n' % (rel, st.st_size, st.st_mtime_ns)).encode())
        found = True
    print(digest.hexdigest() if found else '')

def complete(snapshot, attempt, seq, uri, complete_out, latest_out, last_path='', parts_path=''):
    # With PARTS (collect's output), a sharded checkpoint: every rank's files, rank-<r>/… each.
    parts = read_json(parts_path) if parts_path else None
    files = files_of(snapshot)
    size = sum(os.path.getsize(full) for _, full in files) if parts is None else sum(p['bytes'] for p in parts['paths'])
    created = now_iso()
    pointer = {'uri': uri, 'attempt': int(attempt), 'seq': int(seq), 'createdAt': created,
               'files': len(files) if parts is None else len(parts['paths']), 'bytes': size}
    if parts is not None:
        pointer['ranks'] = parts['ranks']
    # The training step and epoch the script last reported before the snapshot, when it reports them.
    last = read_json(last_path, {}) or {} if last_path else {}
    for key in ('step', 'epoch'):
        if isinstance(last.get(key), (int, float)):
            pointer[key] = last[key]
    # The marker lists every file, so a restore fetches exactly these (get-checkpoint).
    paths = [{'key': rel.replace(os.sep, '/'), 'bytes': os.path.getsize(full)} for rel, full in files] if parts is None else parts['paths']
    write_private(complete_out, json.dumps(dict(pointer, id='%04d-%06d' % (int(attempt), int(seq)), paths=paths)))
    write_private(latest_out, json.dumps(pointer))

# --- sharded checkpoints (checkpoint.ranks "all"): rounds led by rank 0, coordinated through S3 ---
# Rank 0 owns the checkpoint id (<attempt>-<seq>, its own sequence): it announces each round at
# checkpoints/_rounds/attempt-<n>.json, uploads its dir to checkpoints/<id>/rank-0/, and writes
# _COMPLETE.json (every rank's files) only once every rank's part marker
# checkpoints/<id>/_parts/rank-<r>.json is in; latest.json last. A rank above 0 polls the
# announcement and answers each new round with its own dir under rank-<r>/ and its marker.

def rounds_key(c):
    return '%s/checkpoints/_rounds/attempt-%d.json' % (c['runPrefix'], int(c['attempt']))

def announce(config_path, seq, checkpoint, final):
    # announce CONFIG SEQ ID|- final|periodic: the round every rank answers ("-": nothing to save).
    c = read_json(config_path)
    creds = Credentials(os.environ.get('RUNCTL_IMDS_ENDPOINT', 'http://169.254.169.254'))
    body = {'seq': int(seq), 'id': None if checkpoint == '-' else checkpoint, 'final': final == 'final', 'at': now_iso()}
    try:
        s3_put(creds, c['region'], c['bucket'], rounds_key(c), json.dumps(body).encode())
    except Exception as error:
        sys.stderr.write('announcing checkpoint round %s failed: %s\n' % (seq, error))
        sys.exit(1)

def part(config_path, snapshot, checkpoint):
    # part CONFIG DIR ID: this rank's part marker, once its files are under checkpoints/ID/rank-<r>/.
    c = read_json(config_path)
    rank = rank_of(c)
    creds = Credentials(os.environ.get('RUNCTL_IMDS_ENDPOINT', 'http://169.254.169.254'))
    paths = [{'key': 'rank-%d/%s' % (rank, rel.replace(os.sep, '/')), 'bytes': os.path.getsize(full)} for rel, full in files_of(snapshot)]
    body = {'rank': rank, 'id': checkpoint, 'paths': paths, 'bytes': sum(p['bytes'] for p in paths), 'createdAt': now_iso()}
    key = '%s/checkpoints/%s/_parts/rank-%d.json' % (c['runPrefix'], checkpoint, rank)
    try:
        s3_put(creds, c['region'], c['bucket'], key, json.dumps(body).encode())
    except Exception as error:
        sys.stderr.write('writing the part marker of rank %d failed: %s\n' % (rank, error))
        sys.exit(1)

def collect(config_path, checkpoint, wait_ms, abandon, out):
    # collect CONFIG ID WAIT_MS ABANDON_FILE OUT: every rank's part marker of checkpoint ID, merged
    # into OUT ({ranks, paths}). Exit 1 when WAIT_MS passes first, or ABANDON_FILE appears (the
    # agent gives the round up for the interruption's own), and the round stays incomplete.
    c = read_json(config_path)
    count = int(node_of(c).get('count', 1))
    creds = Credentials(os.environ.get('RUNCTL_IMDS_ENDPOINT', 'http://169.254.169.254'))
    scratch = os.path.join(os.path.dirname(config_path), 'part.json')
    parts = {}
    deadline = time.time() + int(wait_ms) / 1000.0
    while True:
        for rank in range(count):
            if rank in parts:
                continue
            key = '%s/checkpoints/%s/_parts/rank-%d.json' % (c['runPrefix'], checkpoint, rank)
            try:
                s3_get(creds, c['region'], c['bucket'], key, scratch)
            except NotFound:
                continue
            except Exception as error:
                sys.stderr.write('reading %s failed: %s\n' % (key, error))
                continue
            marker = read_json(scratch, {}) or {}
            if marker.get('id') == checkpoint and marker.get('paths'):
                parts[rank] = marker['paths']
        if len(parts) == count:
            write_private(out, json.dumps({'ranks': count, 'paths': [p for rank in range(count) for p in parts[rank]]}))
            return
        if time.time() >= deadline or os.path.exists(abandon):
            missing = [rank for rank in range(count) if rank not in parts]
            sys.stderr.write('checkpoint %s: no part from rank %s\n' % (checkpoint, ', '.join(map(str, missing))))
            sys.exit(1)
        time.sleep(0.5)

def poll_round(config_path, answered_path, out, *flags):
    # poll-round CONFIG ANSWERED OUT [--periodic]: the announced round to OUT when it is newer than
    # the one in ANSWERED (exit 0), else exit 4. --periodic leaves a final round to the agent's
    # last answer, given after this rank's training has stopped.
    c = read_json(config_path)
    creds = Credentials(os.environ.get('RUNCTL_IMDS_ENDPOINT', 'http://169.254.169.254'))
    try:
        s3_get(creds, c['region'], c['bucket'], rounds_key(c), out + '.next')
    except NotFound:
        sys.exit(4)
    except Exception as error:
        sys.stderr.write('reading the checkpoint round failed: %s\n' % error)
        sys.exit(4)
    announced = read_json(out + '.next', {}) or {}
    answered = int((read_json(answered_path, {}) or {}).get('seq', 0))
    if int(announced.get('seq', 0)) <= answered or ('--periodic' in flags and announced.get('final')):
        sys.exit(4)
    os.replace(out + '.next', out)

def round_fields(path):
    # round-fields FILE: "<seq> <id or -> <final|periodic>" of an announced round, for `read`.
    r = read_json(path, {}) or {}
    print('%d %s %s' % (int(r.get('seq', 0)), r.get('id') or '-', 'final' if r.get('final') else 'periodic'))

def wait_latest(config_path, seq, wait_ms, out):
    # wait-latest CONFIG SEQ WAIT_MS OUT: latest.json to OUT once it points at this attempt's
    # checkpoint SEQ or newer (rank 0 wrote it); exit 1 when WAIT_MS passes first.
    c = read_json(config_path)
    creds = Credentials(os.environ.get('RUNCTL_IMDS_ENDPOINT', 'http://169.254.169.254'))
    deadline = time.time() + int(wait_ms) / 1000.0
    while True:
        try:
            s3_get(creds, c['region'], c['bucket'], '%s/checkpoints/latest.json' % c['runPrefix'], out + '.next')
            pointer = read_json(out + '.next', {}) or {}
            if int(pointer.get('attempt', 0)) == int(c['attempt']) and int(pointer.get('seq', 0)) >= int(seq):
                os.replace(out + '.next', out)
                return
        except Exception:
            pass
        if time.time() >= deadline:
            sys.exit(1)
        time.sleep(0.5)

def manifest(outputs, run_id, attempt, uri, out):
    files = [{'key': rel, 'bytes': os.path.getsize(full)} for rel, full in files_of(outputs)]
    write_private(out, json.dumps({'runId': run_id, 'attempt': int(attempt), 'createdAt': now_iso(),
                                   'uri': uri, 'files': files, 'bytes': sum(f['bytes'] for f in files)}))

def tail(path, max_lines=40, max_chars=4000):
    try:
        with open(path, 'rb') as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode('utf-8', 'replace')
    except OSError:
        return ''
    return '\n'.join(text.splitlines()[-max_lines:])[-max_chars:]

def unpack(config_path, archive, uri, dest, out):
    # The bundle is named by the sha256 of its bytes: anything else was changed after upload.
    # Then every member must land inside `dest` as a plain file or directory, within the caps.
    # Any refusal writes its reason to `out` and exits 1.
    import tarfile
    limits = (read_json(config_path) or {}).get('bundleLimits') or {}
    max_bytes, max_entries = int(limits.get('maxUnpackedBytes', 4 * 1024 ** 3)), int(limits.get('maxEntries', 100000))
    def refuse(reason):
        write_private(out, reason)
        sys.exit(1)
    expected = re.search(r'/bundles/([0-9a-f]{64})\.tar\.gz$', uri)
    digest = hashlib.sha256()
    with open(archive, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    if expected is None or digest.hexdigest() != expected.group(1):
        refuse('code bundle %s does not match its sha256 (%s): it changed after upload; submit again'
               % (uri, digest.hexdigest()))
    try:
        with tarfile.open(archive, 'r:gz') as tar:
            members = tar.getmembers()
    except (tarfile.TarError, OSError, EOFError) as error:
        refuse('code bundle %s is not a gzip tar archive (%s)' % (uri, error))
    if len(members) > max_entries:
        refuse('code bundle %s has %d entries, over the limit of %d' % (uri, len(members), max_entries))
    total = sum(m.size for m in members if m.isfile())
    if total > max_bytes:
        refuse('code bundle %s unpacks to %d bytes, over the limit of %d: keep data out of the bundle (--data)'
               % (uri, total, max_bytes))
    root = os.path.realpath(dest)
    inside = lambda path: path == root or path.startswith(root + os.sep)
    for m in members:
        target = os.path.realpath(os.path.join(root, m.name))
        if m.name.startswith('/') or not inside(target):
            refuse('code bundle %s: member %r would be written outside the code directory' % (uri, m.name))
        if m.issym() or m.islnk():
            base = os.path.dirname(target) if m.issym() else root
            if m.linkname.startswith('/') or not inside(os.path.realpath(os.path.join(base, m.linkname))):
                refuse('code bundle %s: link %r points outside the code directory (%s)' % (uri, m.name, m.linkname))
        elif not (m.isfile() or m.isdir()):
            refuse('code bundle %s: member %r is a device or FIFO; bundles hold files, directories and links'
                   % (uri, m.name))
    # Python's own data filter too, where it has one (3.12, and 3.8.17+ backports).
    safe = {'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}
    with tarfile.open(archive, 'r:gz') as tar:
        for m in members:
            if m.isfile():
                m.mode = (m.mode | 0o600) & 0o755
            elif m.isdir():
                m.mode = 0o755
            m.uid = m.gid = 0
            m.uname = m.gname = ''
            tar.extract(m, root, set_attrs=True, numeric_owner=True, **safe)

def failure_cause(log_path, exit_code, out):
    write_private(out, json.dumps({'exitCode': int(exit_code), 'logTail': tail(log_path)}))

def interrupt_cause(latest_path, reason, out):
    write_private(out, json.dumps({'checkpoint': read_json(latest_path), 'reason': reason}))

def checkpoint_id(latest_path):
    p = read_json(latest_path) or {}
    print('%04d-%06d' % (int(p['attempt']), int(p['seq'])) if 'seq' in p else 'none')

def message_cause(message, out):
    write_private(out, json.dumps({'reason': message}))

def success_output(latest_path, last_path, manifest_uri, out):
    write_private(out, json.dumps({'exitCode': 0, 'checkpoint': read_json(latest_path),
                                   'outputsManifest': manifest_uri or None, 'metrics': read_json(last_path, {}) or {}}))

command, args = sys.argv[1], sys.argv[2:]
globals()[command.replace('-', '_')](*args)
PY
}

# The helper runs on the interpreter python3 resolves to, asked once (a version manager's shim
# costs a tenth of a second a call), without site-packages (it needs only the standard library),
# from bytecode compiled once: about 60 ms a call instead of 300, on every path a warning waits for.
PYTHON=python3
PY_CODE="$PY"
prepare_python() {
  local resolved
  resolved=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
  if [ -n "$resolved" ] && [ -x "$resolved" ]; then PYTHON=$resolved; fi
  if "$PYTHON" -S -c 'import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)' \
    "$PY" "${PY}c" 2>/dev/null; then
    PY_CODE="${PY}c"
  fi
}
py() { "$PYTHON" -S "$PY_CODE" "$@"; }

now_ms() { local ns; ns=$(date +%s%N); echo $((ns / 1000000)); }

# Diagnostics go to the agent's own log and, prefixed, to the attempt log users read.
note() {
  local line
  line="$(date -u +%Y-%m-%dT%H:%M:%SZ) [runctl] $*"
  printf '%s\n' "$line" >&2
  if [ -n "${TRAIN_LOG:-}" ]; then printf '%s\n' "$line" >>"$TRAIN_LOG"; fi
}

load_config() {
  local assignments
  assignments=$(py config "$STATE_DIR/config.json" "$STATE_DIR/argv" "$STATE_DIR/env") || return 1
  eval "$assignments"
  CHECKPOINT_DIR="$ROOT$CHECKPOINT_DIR_REL"
  OUTPUT_DIR="$ROOT$OUTPUT_DIR_REL"
  WORK_DIR="$ROOT$WORK_DIR_REL"
  CODE_DIR="$WORK_DIR/code"
  RESUME_DIR="$WORK_DIR/resume"
  S3_RUN="s3://$BUCKET/$RUN_PREFIX"
  TRAIN_LOG="$UPLOAD_DIR/logs/${LOG_KEY##*/}"
  UPLOAD_PROGRESS="$STATE_DIR/upload-progress.json"
  METRICS_FILE="$UPLOAD_DIR/metrics.jsonl"
  ARGV=()
  while IFS= read -r -d '' arg; do ARGV+=("$arg"); done <"$STATE_DIR/argv"
}

# Sends one callback (heartbeat, success, failure) through the agent routes. Returns 0 when
# accepted, 2 when the execution has moved on (the task ended, or a newer attempt runs), 1 on any
# other failure.
control_call() {
  local action=$1 request err rc
  shift
  request=$(mktemp "$STATE_DIR/request.XXXXXX")
  err=$(mktemp "$STATE_DIR/control-err.XXXXXX")
  py request "$request" "$@" || { rm -f "$request" "$err"; return 1; }
  "$PYTHON" -S "$CONTROL_PY" --endpoint "$CONTROL_ENDPOINT" --region "$REGION" --run-id "$RUN_ID" --attempt "$ATTEMPT" \
    call "$action" "$request" 2>"$err"
  rc=$?
  rm -f "$request"
  if [ "$rc" -ne 0 ]; then note "$action failed: $(tail -n 2 "$err" | tr '\n' ' ')"; fi
  rm -f "$err"
  return "$rc"
}

# The final callback is the only way the execution learns the outcome: retry transient failures.
control_final() {
  local delay=1 rc
  for _ in 1 2 3 4 5 6; do
    control_call "$@"
    rc=$?
    if [ "$rc" -ne 1 ]; then return "$rc"; fi
    sleep "$delay"
    delay=$((delay * 2))
  done
  return 1
}

report_failure() { # error, cause file
  control_final failure "error=$1" "cause=@$2"
}

# Reads spec.secrets with the run's credentials, straight from the helper's stdout into memory:
# a value is never written to a file, a log or an argv, and only the training process gets it.
resolve_secrets() {
  local fd pid rc
  exec {fd}< <(py secrets "$STATE_DIR/config.json" 2>"$STATE_DIR/secrets.err")
  pid=$!
  mapfile -t -d '' -u "$fd" SECRET_ENV
  exec {fd}<&-
  wait "$pid"
  rc=$?
  if [ "$rc" -ne 0 ]; then
    SECRET_ENV=()
    SETUP_ERROR=$(tail -n 1 "$STATE_DIR/secrets.err" 2>/dev/null)
    SETUP_ERROR=${SETUP_ERROR:-"the run's secrets could not be read"}
    return 1
  fi
  if [ "${#SECRET_ENV[@]}" -gt 0 ]; then note "read ${#SECRET_ENV[@]} secret(s) into the training environment"; fi
}

# The training's environment gets the secrets (this subshell's, so nothing else the agent runs does).
export_secrets() {
  local kv
  for kv in ${SECRET_ENV[@]+"${SECRET_ENV[@]}"}; do export "$kv"; done
}

prepare() {
  mkdir -p "$CODE_DIR" "$CHECKPOINT_DIR" "$OUTPUT_DIR" "$RESUME_DIR" "$UPLOAD_DIR/logs" || return 1
  : >>"$TRAIN_LOG"
  # First: a secret that cannot be read fails the attempt before any download.
  resolve_secrets || return 1
  if [ "$NUM_NODES" -gt 1 ]; then note "node $NODE_RANK of $NUM_NODES (checkpoint.ranks $CKPT_RANKS)"; fi
  note "attempt $ATTEMPT of run $RUN_ID: fetching $CODE_BUNDLE"
  if ! py get "$STATE_DIR/config.json" "$CODE_BUNDLE" "$STATE_DIR/code.tar.gz" >&2; then
    SETUP_ERROR="code bundle $CODE_BUNDLE could not be downloaded"
    return 1
  fi
  if ! py unpack "$STATE_DIR/config.json" "$STATE_DIR/code.tar.gz" "$CODE_BUNDLE" "$CODE_DIR" "$STATE_DIR/unpack.err"; then
    SETUP_ERROR=$(cat "$STATE_DIR/unpack.err" 2>/dev/null || echo "code bundle $CODE_BUNDLE could not be unpacked")
    return 1
  fi
  if [ -n "$RESUME_FROM" ]; then
    note "restoring checkpoint $RESUME_FROM"
    # Every node restores the same checkpoint: with sharded checkpoints, its own rank's part.
    local part=() from="${RESUME_FROM%/}/"
    if sharded; then
      part=(--rank "$NODE_RANK")
      from="${from}rank-$NODE_RANK/"
    fi
    py get-checkpoint "$STATE_DIR/config.json" "${RESUME_FROM%/}/" "$RESUME_DIR" ${part[@]+"${part[@]}"} >&2
    if [ $? -eq 3 ]; then
      aws s3 cp --recursive "$from" "$RESUME_DIR" --exclude _COMPLETE.json --exclude '_parts/*' \
        --exclude '_rounds/*' --only-show-errors --region "$REGION" >&2
    fi
    if [ -z "$(ls -A "$RESUME_DIR")" ]; then
      SETUP_ERROR="checkpoint $RESUME_FROM could not be restored (missing or empty)"
      return 1
    fi
  fi
  # Earlier attempts' pointer and metrics: the latest checkpoint stays the latest until this
  # attempt writes a newer one, and metrics.jsonl keeps one line per report across attempts.
  py get "$STATE_DIR/config.json" "$S3_RUN/checkpoints/latest.json" "$LATEST_FILE.prev" --optional \
    >/dev/null 2>&1 && mv "$LATEST_FILE.prev" "$LATEST_FILE"
  if [ "$NODE_RANK" -eq 0 ]; then
    py get "$STATE_DIR/config.json" "$S3_RUN/metrics.jsonl" "$METRICS_FILE" --optional >/dev/null 2>&1
  fi
  echo 0 >"$SEQ_FILE"
  if [ -n "$DOCKER_IMAGE" ]; then prepare_container || return 1; fi
  return 0
}

# Docker path: log in (ECR), pull, and write the `docker run` argv. The registry password is
# fetched here by the instance role and only ever travels through the pipe to --password-stdin.
prepare_container() {
  local resume="" gpus
  if [ -n "$DOCKER_REGISTRY" ]; then
    note "logging in to $DOCKER_REGISTRY"
    if ! aws ecr get-login-password --region "$DOCKER_REGION" 2>"$STATE_DIR/ecr.err" |
      docker login --username AWS --password-stdin "$DOCKER_REGISTRY" >/dev/null 2>>"$STATE_DIR/ecr.err"; then
      SETUP_ERROR="docker login to $DOCKER_REGISTRY failed: $(tail -n 2 "$STATE_DIR/ecr.err" | tr '\n' ' ')"
      return 1
    fi
  fi
  note "pulling $DOCKER_IMAGE"
  if ! docker pull --quiet "$DOCKER_IMAGE" >>"$TRAIN_LOG" 2>&1; then
    SETUP_ERROR="docker pull $DOCKER_IMAGE failed (see the attempt log)"
    return 1
  fi
  if [ -n "$RESUME_FROM" ]; then resume="$RESUME_DIR"; fi
  gpus=$DOCKER_GPUS
  if [ "$gpus" = auto ]; then
    # `--gpus` on an instance without an NVIDIA GPU fails ("could not select device driver").
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then gpus=all; else gpus=none; fi
    note "docker.gpus auto: $gpus (from nvidia-smi -L)"
  fi
  if ! py docker-argv "$STATE_DIR/config.json" "$ROOT" "$CODE_DIR" "$CHECKPOINT_DIR" "$OUTPUT_DIR" "$resume" \
    "$gpus" "$STATE_DIR/docker-argv" 2>"$STATE_DIR/docker.err"; then
    SETUP_ERROR=$(tail -n 1 "$STATE_DIR/docker.err")
    return 1
  fi
  DOCKER_ARGV=()
  while IFS= read -r -d '' arg; do DOCKER_ARGV+=("$arg"); done <"$STATE_DIR/docker-argv"
}

# nice, and ionice where the kernel takes it (it can refuse, e.g. in some containers).
TRAIN_PRIORITY=(nice -n 10)
if command -v ionice >/dev/null 2>&1 && ionice -c 2 -n 7 true 2>/dev/null; then TRAIN_PRIORITY+=(ionice -c 2 -n 7); fi

start_training() {
  if [ -n "$DOCKER_IMAGE" ]; then
    # The docker CLI stays attached: its exit code is the container's, and its pid (a process
    # group of its own) is what the supervision loop watches.
    (export_secrets && exec setsid "${DOCKER_ARGV[@]}") >>"$TRAIN_LOG" 2>&1 </dev/null &
    TRAIN_PID=$!
    note "training started in container $CONTAINER from $DOCKER_IMAGE (pid $TRAIN_PID)"
    return
  fi
  (
    cd "$CODE_DIR" || exit 127
    while IFS= read -r -d '' kv; do export "$kv"; done <"$STATE_DIR/env"
    export_secrets
    export RUNCTL_RUN_ID="$RUN_ID" RUNCTL_ATTEMPT="$ATTEMPT" RUNCTL_CHECKPOINT_DIR="$CHECKPOINT_DIR" \
      RUNCTL_OUTPUT_DIR="$OUTPUT_DIR" RUNCTL_RESUME_FROM=""
    if [ -n "$RESUME_FROM" ]; then export RUNCTL_RESUME_FROM="$RESUME_DIR"; fi
    # This subshell is not a process group leader, so setsid execs in place: the training
    # command's pid is its own process group id, which the stop signal is sent to. The script
    # runs below the agent's priority (CPU and I/O), so heartbeats, the stop signal and uploads
    # keep their pace while its data loaders peg every core.
    exec setsid "${TRAIN_PRIORITY[@]}" "${ARGV[@]}"
  ) >>"$TRAIN_LOG" 2>&1 </dev/null &
  TRAIN_PID=$!
  note "training started (pid $TRAIN_PID)"
}

# A directory to an S3 prefix, with its progress in PROGRESS: signed PUTs from the helper when
# every file is small (no CLI start-up), else the AWS CLI's parallel multipart upload.
upload_tree() { # dir, s3 uri, progress file
  py put-tree "$STATE_DIR/config.json" "$1" "$2" "$3" >&2
  case $? in
    0) return 0 ;;
    3) ;;
    *) return 1 ;;
  esac
  aws s3 cp --recursive "$1" "$2" --region "$REGION" 2>&1 | tr '\r' '\n' | py upload-progress "${3:-/dev/null}" >&2
  [ "${PIPESTATUS[0]}" -eq 0 ]
}

# Uploads an immutable snapshot of the checkpoint dir when it changed since the last one, then
# `_COMPLETE.json`, then `latest.json`: a reader that follows the pointer never sees a partial one.
snapshot_checkpoint() {
  local fingerprint seq id uri
  # A node above rank 0 never writes a checkpoint of its own: rank 0's dir is the checkpoint, or
  # (sharded) it answers rank 0's rounds (answer_round).
  if [ "$NODE_RANK" -gt 0 ]; then return 0; fi
  if sharded; then snapshot_round; return; fi
  fingerprint=$(py fingerprint "$CHECKPOINT_DIR")
  if [ -z "$fingerprint" ] || [ "$fingerprint" = "$(cat "$FINGERPRINT_FILE" 2>/dev/null)" ]; then return 0; fi
  # A copy, so the script may overwrite its files while the upload runs.
  rm -rf "$SNAPSHOT_DIR"
  cp -a "$CHECKPOINT_DIR/." "$SNAPSHOT_DIR" || return 1
  fingerprint=$(py fingerprint "$SNAPSHOT_DIR")
  # The id is burnt even if the upload fails, so a retry never mixes into a partial prefix.
  seq=$(($(cat "$SEQ_FILE") + 1))
  echo "$seq" >"$SEQ_FILE"
  id=$(printf '%04d-%06d' "$ATTEMPT" "$seq")
  uri="$S3_RUN/checkpoints/$id/"
  # Its progress goes to UPLOAD_PROGRESS, which the heartbeats after a warning carry to the status.
  rm -f "$UPLOAD_PROGRESS"
  upload_tree "$SNAPSHOT_DIR" "$uri" "$UPLOAD_PROGRESS" || { rm -f "$UPLOAD_PROGRESS"; return 1; }
  rm -f "$UPLOAD_PROGRESS"
  py complete "$SNAPSHOT_DIR" "$ATTEMPT" "$seq" "$uri" "$STATE_DIR/complete.json" "$STATE_DIR/latest.next" \
    "$STATE_DIR/metrics-last.json" || return 1
  # The marker, then the pointer: one signed PUT each, no CLI start-up on the warning's clock.
  py put "$STATE_DIR/config.json" "$STATE_DIR/complete.json" "$RUN_PREFIX/checkpoints/$id/_COMPLETE.json" \
    "$STATE_DIR/latest.next" "$RUN_PREFIX/checkpoints/latest.json" || return 1
  mv "$STATE_DIR/latest.next" "$LATEST_FILE"
  echo "$fingerprint" >"$FINGERPRINT_FILE"
  note "checkpoint $id uploaded"
}

sharded() { [ "$CKPT_RANKS" = all ]; }

# Rank 0 of a sharded run: one round of the checkpoint (see agent.py `collect`). The id is rank 0's
# own <attempt>-<seq>, announced to every rank through S3; _COMPLETE.json waits for every part.
snapshot_round() {
  local fingerprint seq id uri kind=periodic
  fingerprint=$(py fingerprint "$CHECKPOINT_DIR")
  seq=$(($(cat "$SEQ_FILE") + 1))
  if [ "$ROUND_FINAL" -eq 1 ]; then
    kind=final
    if [ -z "$fingerprint" ]; then
      # Nothing to save: the other ranks stop waiting for this attempt's last round.
      echo "$seq" >"$SEQ_FILE"
      py announce "$STATE_DIR/config.json" "$seq" - final
      return 0
    fi
  elif [ -z "$fingerprint" ] || [ "$fingerprint" = "$(cat "$FINGERPRINT_FILE" 2>/dev/null)" ]; then
    return 0
  fi
  rm -rf "$SNAPSHOT_DIR"
  cp -a "$CHECKPOINT_DIR/." "$SNAPSHOT_DIR" || return 1
  fingerprint=$(py fingerprint "$SNAPSHOT_DIR")
  echo "$seq" >"$SEQ_FILE"
  id=$(printf '%04d-%06d' "$ATTEMPT" "$seq")
  uri="$S3_RUN/checkpoints/$id/"
  # First the announcement, so the other ranks upload while this one does.
  py announce "$STATE_DIR/config.json" "$seq" "$id" "$kind" || return 1
  rm -f "$UPLOAD_PROGRESS"
  upload_tree "$SNAPSHOT_DIR" "${uri}rank-0/" "$UPLOAD_PROGRESS" || { rm -f "$UPLOAD_PROGRESS"; return 1; }
  rm -f "$UPLOAD_PROGRESS"
  py part "$STATE_DIR/config.json" "$SNAPSHOT_DIR" "$id" || return 1
  if ! py collect "$STATE_DIR/config.json" "$id" "$PARTS_WAIT_MS" "$STATE_DIR/round-abandon" "$STATE_DIR/parts.json"; then
    # Another rank's part is missing, not this one's upload: nothing failed here.
    note "checkpoint $id is incomplete (not every rank's part came in); the previous checkpoint stays the latest"
    return 0
  fi
  py complete "$SNAPSHOT_DIR" "$ATTEMPT" "$seq" "$uri" "$STATE_DIR/complete.json" "$STATE_DIR/latest.next" \
    "$STATE_DIR/metrics-last.json" "$STATE_DIR/parts.json" || return 1
  py put "$STATE_DIR/config.json" "$STATE_DIR/complete.json" "$RUN_PREFIX/checkpoints/$id/_COMPLETE.json" \
    "$STATE_DIR/latest.next" "$RUN_PREFIX/checkpoints/latest.json" || return 1
  mv "$STATE_DIR/latest.next" "$LATEST_FILE"
  echo "$fingerprint" >"$FINGERPRINT_FILE"
  note "checkpoint $id uploaded (every rank's part)"
}

# A rank above 0 of a sharded run: answers the newest round rank 0 announced with a snapshot of
# its own dir under rank-<r>/ and its part marker. Returns 0 with ROUND_ANSWERED set to the
# round's kind (final, periodic) when it answered one, 4 when there was none to answer.
answer_round() { # [--periodic]
  local seq id kind
  ROUND_ANSWERED=""
  py poll-round "$STATE_DIR/config.json" "$STATE_DIR/round-answered.json" "$STATE_DIR/round.json" "$@" || return 4
  read -r seq id kind < <(py round-fields "$STATE_DIR/round.json")
  mv "$STATE_DIR/round.json" "$STATE_DIR/round-answered.json"
  ROUND_ANSWERED=$kind
  if [ "$id" = - ]; then return 0; fi
  if [ -z "$(py fingerprint "$CHECKPOINT_DIR")" ]; then
    note "checkpoint $id: this rank has saved nothing yet; rank 0 gives the round up"
    return 0
  fi
  rm -rf "$SNAPSHOT_DIR"
  cp -a "$CHECKPOINT_DIR/." "$SNAPSHOT_DIR" || return 1
  rm -f "$UPLOAD_PROGRESS"
  upload_tree "$SNAPSHOT_DIR" "$S3_RUN/checkpoints/$id/rank-$NODE_RANK/" "$UPLOAD_PROGRESS" || { rm -f "$UPLOAD_PROGRESS"; return 1; }
  rm -f "$UPLOAD_PROGRESS"
  py part "$STATE_DIR/config.json" "$SNAPSHOT_DIR" "$id" || return 1
  note "checkpoint $id: rank $NODE_RANK's part uploaded"
}

# A rank above 0 of a sharded run, once its training has stopped: answers rounds until rank 0's
# last one (its own last save), then waits for rank 0 to complete it, so this node's callback
# names the same checkpoint as rank 0's. Bounded by the parts wait: rank 0 may be gone.
answer_last_round() {
  local deadline seq id
  if [ -n "$ROUND_PID" ]; then wait "$ROUND_PID" 2>/dev/null; ROUND_PID=""; fi
  deadline=$(($(now_ms) + PARTS_WAIT_MS))
  while (($(now_ms) < deadline)); do
    answer_round
    if [ "$ROUND_ANSWERED" = final ]; then
      read -r seq id _ < <(py round-fields "$STATE_DIR/round-answered.json")
      # "-": rank 0 had nothing to save, so no pointer will follow.
      if [ "$id" != - ] && py wait-latest "$STATE_DIR/config.json" "$seq" $((deadline - $(now_ms))) "$LATEST_FILE.next"; then
        mv "$LATEST_FILE.next" "$LATEST_FILE"
      fi
      return 0
    fi
    sleep 0.5
  done
  note "rank 0 announced no last checkpoint round within $((PARTS_WAIT_MS / 1000)) s"
}

# Log and metrics to S3, each a signed PUT (skipped when unchanged since the last one). The log
# carries the tag runctl:kind=log on the PUT itself: the bucket's lifecycle rule expires logs by
# that tag (a prefix filter cannot match runs/*/logs/).
upload_logs() {
  py put "$STATE_DIR/config.json" --tagging=runctl:kind=log "$TRAIN_LOG" "$LOG_KEY" || return 1
  # The run's metrics are rank 0's.
  if [ "$NODE_RANK" -gt 0 ]; then return 0; fi
  py put "$STATE_DIR/config.json" "$METRICS_FILE" "$RUN_PREFIX/metrics.jsonl"
}

# The live shipper parses the metric rows while it runs; without it, this does.
parse_metrics() {
  live_alive && return 0
  if [ "$NODE_RANK" -gt 0 ]; then return 0; fi
  py metrics "$STATE_DIR/config.json" "$TRAIN_LOG" "$STATE_DIR/live-offsets.json" "$METRICS_FILE" \
    "$STATE_DIR/metrics-last.json" "$ATTEMPT"
}

sync_all() {
  parse_metrics
  upload_logs
  snapshot_checkpoint
}

wait_sync() {
  if [ -n "$SYNC_PID" ]; then wait "$SYNC_PID" 2>/dev/null; SYNC_PID=""; fi
}

# The live shipper (agent.py `live`): the log and metric rows to S3 within a second of the print.
start_live() {
  # exec: the pid is python's own, so the stop signal reaches the shipper, not a subshell.
  (exec "$PYTHON" -S "$PY_CODE" live "$STATE_DIR/config.json" "$TRAIN_LOG" "$METRICS_FILE" "$STATE_DIR/metrics-last.json" "$STATE_DIR") \
    2>>"$TRAIN_LOG" &
  LIVE_PID=$!
}
live_alive() { [ -n "$LIVE_PID" ] && kill -0 "$LIVE_PID" 2>/dev/null; }

# Lets the shipper send what is left (bounded: it gives up after a few failed tries), then waits.
stop_live() {
  local deadline
  live_alive || { LIVE_PID=""; return 0; }
  kill -TERM "$LIVE_PID" 2>/dev/null
  deadline=$(($(now_ms) + 15000))
  while live_alive && (($(now_ms) < deadline)); do sleep 0.1; done
  kill -KILL "$LIVE_PID" 2>/dev/null
  wait "$LIVE_PID" 2>/dev/null
  LIVE_PID=""
}

training_alive() { [ -n "$TRAIN_PID" ] && kill -0 "$TRAIN_PID" 2>/dev/null; }
group_alive() { [ -n "$TRAIN_PID" ] && kill -0 -- "-$TRAIN_PID" 2>/dev/null; }

# Stop signal to the whole process group, up to the grace period to save, then SIGKILL.
stop_training() {
  local deadline
  TRAIN_EXIT=0
  group_alive || { wait "$TRAIN_PID" 2>/dev/null; TRAIN_EXIT=$?; return 0; }
  if [ -n "$DOCKER_IMAGE" ]; then
    # Through the daemon: --init inside the container hands the signal to the training process.
    docker kill --signal "SIG$STOP_SIGNAL" "$CONTAINER" >/dev/null 2>&1 ||
      note "docker kill --signal SIG$STOP_SIGNAL $CONTAINER failed"
  else
    kill "-$STOP_SIGNAL" -- "-$TRAIN_PID" 2>/dev/null
  fi
  deadline=$(($(now_ms) + GRACE_MS))
  while group_alive && ! container_stopped && (($(now_ms) < deadline)); do sleep 0.2; done
  if group_alive && ! container_stopped; then
    note "training did not stop within the grace period; killing it"
    if [ -n "$DOCKER_IMAGE" ]; then docker kill "$CONTAINER" >/dev/null 2>&1; fi
    kill -KILL -- "-$TRAIN_PID" 2>/dev/null
  fi
  wait "$TRAIN_PID" 2>/dev/null
  TRAIN_EXIT=$?
}

# A container's script has stopped once the container has exited, though the attached docker CLI
# (TRAIN_PID) waits for its removal, which takes seconds on some storage drivers (vfs copies and
# deletes the whole filesystem): that wait is not the script overrunning its grace period.
container_stopped() {
  [ -n "$DOCKER_IMAGE" ] || return 1
  case "$(docker container inspect --format '{{.State.Status}}' "$CONTAINER" 2>/dev/null)" in
    exited | dead | removing) return 0 ;;
    *) return 1 ;;
  esac
}

interrupt() { # error name, reason
  local code
  note "checkpoint requested ($2): sending SIG$STOP_SIGNAL to the training"
  # Beats go on while the script saves and the checkpoint goes up (a cancel's grace can be long),
  # every 5 s at most, each with the upload's progress: the status shows it during the overlap.
  start_heartbeats $((HEARTBEAT_MS < 5000 ? HEARTBEAT_MS : 5000))
  stop_training
  code=$TRAIN_EXIT
  note "training exited with code $code after SIG$STOP_SIGNAL; uploading its checkpoint"
  stop_live
  # Rank 0 of a sharded run gives up a round in flight: this one's parts are the ones to wait for.
  if sharded && [ "$NODE_RANK" -eq 0 ]; then : >"$STATE_DIR/round-abandon"; fi
  wait_sync
  rm -f "$STATE_DIR/round-abandon"
  ROUND_FINAL=1
  local id
  # The checkpoint first, then the log once (with the lines saying which checkpoint it is).
  parse_metrics
  if [ "$NODE_RANK" -gt 0 ] && sharded; then answer_last_round; fi
  if [ "$NODE_RANK" -gt 0 ] && ! sharded; then
    note "rank 0 uploads the checkpoint of this run (checkpoint.ranks rank0); reporting $1"
  elif snapshot_checkpoint; then
    id=$(py checkpoint-id "$LATEST_FILE")
    if [ "$id" = none ]; then
      note "the script saved no checkpoint: the next attempt starts from the beginning; reporting $1"
    else
      note "checkpoint $id is in S3 and is the one the next attempt resumes from; reporting $1"
    fi
  else
    note "final checkpoint upload failed; the previous checkpoint $(py checkpoint-id "$LATEST_FILE") stays the latest; reporting $1"
  fi
  upload_logs
  py interrupt-cause "$LATEST_FILE" "$2" "$STATE_DIR/cause.json"
  stop_heartbeats
  report_failure "$1" "$STATE_DIR/cause.json"
}

finish() { # exit code
  local code=$1 manifest_uri="$S3_RUN/outputs/_manifest.json"
  note "training exited with code $code"
  # The supervision loop no longer beats: the final uploads can take longer than its window.
  start_heartbeats
  stop_live
  wait_sync
  ROUND_FINAL=1
  if [ "$NODE_RANK" -gt 0 ] && sharded; then answer_last_round; fi
  if [ "$code" -ne 0 ]; then
    sync_all
    py failure-cause "$TRAIN_LOG" "$code" "$STATE_DIR/cause.json"
    stop_heartbeats
    report_failure Training.Failed "$STATE_DIR/cause.json"
    return
  fi
  if [ "$NODE_RANK" -gt 0 ]; then
    # The run's outputs are rank 0's: another node uploads its log and reports, nothing more.
    upload_logs
    py success-output "$LATEST_FILE" "$STATE_DIR/metrics-last.json" "" "$STATE_DIR/output.json"
    stop_heartbeats
    control_final success "output=@$STATE_DIR/output.json"
    return
  fi
  if sync_all &&
    upload_tree "$OUTPUT_DIR" "$S3_RUN/outputs/" "" &&
    py manifest "$OUTPUT_DIR" "$RUN_ID" "$ATTEMPT" "$S3_RUN/outputs/" "$STATE_DIR/manifest.json" &&
    py put "$STATE_DIR/config.json" "$STATE_DIR/manifest.json" "$RUN_PREFIX/outputs/_manifest.json"; then
    py success-output "$LATEST_FILE" "$STATE_DIR/metrics-last.json" "$manifest_uri" "$STATE_DIR/output.json"
    stop_heartbeats
    control_final success "output=@$STATE_DIR/output.json"
  else
    py message-cause "uploading the final checkpoint or outputs to $S3_RUN failed" "$STATE_DIR/cause.json"
    stop_heartbeats
    report_failure Agent.UploadFailed "$STATE_DIR/cause.json"
  fi
}

imds_notice() {
  local token
  token=$(curl -sf -m 2 -X PUT "$IMDS/latest/api/token" -H 'X-aws-ec2-metadata-token-ttl-seconds: 300') || return 1
  curl -sf -m 2 -o /dev/null -H "X-aws-ec2-metadata-token: $token" "$IMDS/latest/meta-data/spot/instance-action"
}

supervise() {
  local now next_heartbeat next_imds next_sync next_round code reason
  now=$(now_ms)
  next_round=$now
  next_heartbeat=$((now + HEARTBEAT_MS))
  next_imds=$now
  next_sync=$((now + SYNC_MS))
  while :; do
    if ! training_alive; then
      wait "$TRAIN_PID"
      code=$?
      kill -KILL -- "-$TRAIN_PID" 2>/dev/null # stragglers the script left behind
      finish "$code"
      return
    fi
    if [ -e "$CONTROL_DIR/stop" ]; then
      interrupt Run.Cancelled requested
      return
    fi
    if [ -e "$CONTROL_DIR/checkpoint-now" ]; then
      reason=$(head -c 32 "$CONTROL_DIR/checkpoint-now" | tr -cd 'a-z-')
      interrupt Spot.Interrupted "${reason:-spot-warning}"
      return
    fi
    now=$(now_ms)
    if [ "$IMDS" != off ] && ((now >= next_imds)); then
      if imds_notice; then
        interrupt Spot.Interrupted imds
        return
      fi
      next_imds=$((now + IMDS_POLL_MS))
    fi
    if ((now >= next_heartbeat)); then
      control_call heartbeat
      if [ $? -eq 2 ]; then
        note "the execution no longer waits for this attempt; stopping"
        return
      fi
      next_heartbeat=$((now + HEARTBEAT_MS))
    fi
    if ((now >= next_sync)) && { [ -z "$SYNC_PID" ] || ! kill -0 "$SYNC_PID" 2>/dev/null; }; then
      wait_sync
      # In the background, so a long checkpoint upload never delays a spot notice.
      sync_all &
      SYNC_PID=$!
      next_sync=$((now + SYNC_MS))
    fi
    # A rank above 0 of a sharded run answers rank 0's checkpoint rounds, in the background.
    if [ "$NODE_RANK" -gt 0 ] && sharded && ((now >= next_round)) && { [ -z "$ROUND_PID" ] || ! kill -0 "$ROUND_PID" 2>/dev/null; }; then
      if [ -n "$ROUND_PID" ]; then wait "$ROUND_PID" 2>/dev/null; fi
      answer_round --periodic &
      ROUND_PID=$!
      next_round=$((now + ROUND_POLL_MS))
    fi
    sleep 0.2
  done
}

cleanup() {
  if group_alive; then
    if [ -n "${DOCKER_IMAGE:-}" ]; then docker kill "$CONTAINER" >/dev/null 2>&1; fi
    kill -KILL -- "-$TRAIN_PID" 2>/dev/null
  fi
  if [ -n "$SYNC_PID" ]; then kill "$SYNC_PID" 2>/dev/null; fi
  if [ -n "$ROUND_PID" ]; then kill "$ROUND_PID" 2>/dev/null; fi
  if [ -n "$LIVE_PID" ]; then kill "$LIVE_PID" 2>/dev/null; fi
  if [ -n "$HEARTBEAT_LOOP_PID" ]; then kill "$HEARTBEAT_LOOP_PID" 2>/dev/null; fi
  rm -f "$STATE_DIR"/request.*
}

# Setup and the final uploads can outlast the heartbeat window (a large bundle, a checkpoint
# restore, an image pull; the outputs, a large last checkpoint): heartbeats go on beside them
# until they are done. When the execution has moved on, the loop says so in the control dir and
# stops.
heartbeat_loop() { # [interval ms]
  local every=${1:-$HEARTBEAT_MS} interval sleeper=""
  interval=$(printf '%d.%03d' $((every / 1000)) $((every % 1000)))
  # `wait` returns at once on the stop signal, where a foreground sleep would hold it.
  trap '[ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null; exit 0' TERM
  while :; do
    sleep "$interval" &
    sleeper=$!
    wait "$sleeper"
    sleeper=""
    # While a checkpoint goes up, each beat carries how far it is (shown by runctl status).
    if [ -s "$UPLOAD_PROGRESS" ]; then control_call heartbeat "upload=json@$UPLOAD_PROGRESS"; else control_call heartbeat; fi
    if [ $? -eq 2 ]; then : >"$CONTROL_DIR/moved-on"; return; fi
  done
}

start_heartbeats() { # [interval ms]
  heartbeat_loop "$@" &
  HEARTBEAT_LOOP_PID=$!
}

stop_heartbeats() {
  [ -n "$HEARTBEAT_LOOP_PID" ] || return 0
  kill "$HEARTBEAT_LOOP_PID" 2>/dev/null
  wait "$HEARTBEAT_LOOP_PID" 2>/dev/null
  HEARTBEAT_LOOP_PID=""
}

main() {
  mkdir -p "$CONTROL_DIR" "$UPLOAD_DIR/logs"
  echo $$ >"$STATE_DIR/agent.pid"
  trap cleanup EXIT
  trap 'exit 143' TERM INT
  write_python_helper
  prepare_python
  load_config || { echo "runctl agent: unreadable config in $STATE_DIR" >&2; exit 1; }
  SETUP_ERROR="setting up the attempt failed"
  start_heartbeats
  prepare
  local prepared=$?
  stop_heartbeats
  if [ -e "$CONTROL_DIR/moved-on" ]; then
    note "the execution no longer waits for this attempt; stopping before training"
    exit 0
  fi
  if [ "$prepared" -ne 0 ]; then
    note "$SETUP_ERROR"
    upload_logs
    py message-cause "$SETUP_ERROR" "$STATE_DIR/cause.json"
    report_failure Run.PrecheckFailed "$STATE_DIR/cause.json"
    exit 1
  fi
  start_training
  start_live
  supervise
  # The outcome is reported: the live chunks the last upload holds go (after the report, so they
  # never delay it; a reclaimed instance leaves them to expire with the logs).
  py prune "$STATE_DIR/config.json" || note "pruning the live chunks failed; they expire with the logs"
  echo "runctl agent: done" >&2
}

main
