#!/usr/bin/env python3
"""runctl control client: how a training instance talks to the control plane.

The instance role may do almost nothing itself (run the SSM agent, call runctl's agent
routes). Everything a run needs goes through the agent routes of runctl's HTTP API, signed
with the instance role's credentials (SigV4, `execute-api`); API Gateway's IAM authorizer
tells the handler which instance calls, and the handler answers only for the run that
instance serves:

  credentials   the run's own short-lived credentials (its runs/<id>/ prefix, its bundle, its
                data sources, its owner's secrets), printed in the `credential_process`
                format of the AWS CLI and cached in a private file until shortly before they
                expire; the CLI calls this again when they near expiry.
  call ACTION   heartbeat, success or failure of the attempt; the handler relays it to the
                waiting Step Functions task with the token stored on the run record, so no
                task token ever reaches the instance. Exit 0: accepted; 2: the execution no
                longer waits for this attempt; 1: anything else (retryable).

Only the standard library: this runs on any AMI with python3.
Usage: control.py --endpoint URL --region R --run-id ID --attempt N [--cache FILE] credentials
       control.py ... call ACTION [BODY_FILE]
"""
import argparse
import datetime
import hashlib
import hmac
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

# botocore refreshes credentials 15 minutes before they expire (advisory window); a cached set
# is handed out only while it has more than that left, so the CLI never loops on a stale one.
REFRESH_MARGIN = datetime.timedelta(minutes=20)
TIMEOUT = 10


def imds_base():
    base = os.environ.get('RUNCTL_IMDS_ENDPOINT') or 'http://169.254.169.254'
    if base == 'off':
        sys.exit('runctl control: no instance metadata service (RUNCTL_IMDS_ENDPOINT=off)')
    return base.rstrip('/')


def instance_credentials():
    """The instance role's credentials from IMDSv2, as EC2 serves them."""
    base = imds_base()
    token_request = urllib.request.Request(base + '/latest/api/token', method='PUT',
                                           headers={'X-aws-ec2-metadata-token-ttl-seconds': '300'})
    token = urllib.request.urlopen(token_request, timeout=TIMEOUT).read().decode()
    headers = {'X-aws-ec2-metadata-token': token}

    def get(path):
        request = urllib.request.Request(base + '/latest/meta-data/iam/security-credentials/' + path, headers=headers)
        return urllib.request.urlopen(request, timeout=TIMEOUT).read().decode()

    role = get('').strip().splitlines()[0]
    creds = json.loads(get(role))
    return creds['AccessKeyId'], creds['SecretAccessKey'], creds.get('Token')


def _hmac(key, text):
    return hmac.new(key, text.encode('utf-8'), hashlib.sha256).digest()


def sign(method, url, body, region, access_key, secret_key, session_token, now=None):
    """SigV4 headers for an `execute-api` request (the algorithm of the AWS docs, nothing more)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime('%Y%m%dT%H%M%SZ')
    day = amz_date[:8]
    parsed = urllib.parse.urlsplit(url)
    payload_hash = hashlib.sha256(body).hexdigest()
    headers = {'host': parsed.netloc, 'x-amz-date': amz_date, 'x-amz-content-sha256': payload_hash}
    if session_token:
        headers['x-amz-security-token'] = session_token
    signed = sorted(headers)
    canonical_query = '&'.join(
        '%s=%s' % (urllib.parse.quote(k, safe='-_.~'), urllib.parse.quote(v, safe='-_.~'))
        for k, v in sorted(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)))
    canonical = '\n'.join([
        method,
        urllib.parse.quote(parsed.path or '/', safe='/-_.~'),
        canonical_query,
        ''.join('%s:%s\n' % (name, headers[name].strip()) for name in signed),
        ';'.join(signed),
        payload_hash,
    ])
    scope = '%s/%s/execute-api/aws4_request' % (day, region)
    to_sign = '\n'.join(['AWS4-HMAC-SHA256', amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(('AWS4' + secret_key).encode(), day), region), 'execute-api'), 'aws4_request')
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers['authorization'] = 'AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s' % (
        access_key, scope, ';'.join(signed), signature)
    return headers


def post(args, action, fields):
    """POSTs one agent request; returns (HTTP status, parsed JSON body or None)."""
    body = json.dumps(dict(fields, runId=args.run_id, attempt=args.attempt)).encode()
    url = args.endpoint.rstrip('/') + '/agent/' + action
    headers = sign('POST', url, body, args.region, *instance_credentials())
    headers['content-type'] = 'application/json'
    request = urllib.request.Request(url, data=body, method='POST', headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode('utf-8', 'replace')
    try:
        return status, json.loads(text)
    except ValueError:
        return status, None


def parse_time(text):
    # 2026-01-01T00:00:00Z or with milliseconds (2026-01-01T00:00:00.123Z).
    return datetime.datetime.strptime(text[:19] + '+0000', '%Y-%m-%dT%H:%M:%S%z')


def credentials(args):
    now = datetime.datetime.now(datetime.timezone.utc)
    if args.cache:
        try:
            with open(args.cache) as f:
                cached = json.load(f)
            if parse_time(cached['Expiration']) - now > REFRESH_MARGIN:
                print(json.dumps(cached))
                return 0
        except (OSError, ValueError, KeyError):
            pass
    status, body = post(args, 'credentials', {})
    if status != 200 or not isinstance(body, dict):
        message = body.get('message') if isinstance(body, dict) else None
        sys.stderr.write('runctl control: credentials refused (HTTP %d): %s\n' % (status, message or 'no message'))
        return 1
    out = {'Version': 1, 'AccessKeyId': body['accessKeyId'], 'SecretAccessKey': body['secretAccessKey'],
           'Expiration': body['expiration']}
    if body.get('sessionToken'):
        out['SessionToken'] = body['sessionToken']
    text = json.dumps(out)
    if args.cache:
        # A name of this process's own: the AWS CLI, the agent and a command's warm-up may all
        # fetch at once, and each renames a whole file over the cache.
        temporary = '%s.%d.tmp' % (args.cache, os.getpid())
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'w') as f:
            f.write(text)
        os.replace(temporary, args.cache)
    print(text)
    return 0


def call(args):
    fields = {}
    if args.body:
        with open(args.body) as f:
            fields = json.load(f)
    status, body = post(args, args.action, fields)
    if status == 200:
        return 0
    message = body.get('message') if isinstance(body, dict) else None
    sys.stderr.write('runctl control: %s answered HTTP %d: %s\n' % (args.action, status, message or 'no message'))
    # 409: the execution no longer waits for this attempt (its task ended, or a newer attempt runs).
    return 2 if status == 409 else 1


def main(argv):
    parser = argparse.ArgumentParser(prog='control.py')
    parser.add_argument('--endpoint', required=True)
    parser.add_argument('--region', required=True)
    parser.add_argument('--run-id', required=True)
    parser.add_argument('--attempt', required=True, type=int)
    parser.add_argument('--cache')
    commands = parser.add_subparsers(dest='command', required=True)
    commands.add_parser('credentials')
    call_parser = commands.add_parser('call')
    call_parser.add_argument('action', choices=['heartbeat', 'success', 'failure'])
    call_parser.add_argument('body', nargs='?')
    args = parser.parse_args(argv)
    try:
        return credentials(args) if args.command == 'credentials' else call(args)
    except (OSError, urllib.error.URLError) as error:
        sys.stderr.write('runctl control: %s\n' % error)
        return 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
