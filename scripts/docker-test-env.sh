#!/usr/bin/env bash
# A Docker engine and a registry on this machine, for the container tests, `npm start -- --docker`
# and `npm run bench`. No public registry is needed:
#   - dockerd (Debian's docker.io) as root, on a socket and data root of its own, without
#     iptables or a bridge (containers use --network host or none) and with vfs storage, which
#     works on any filesystem, nested or not;
#   - Debian's docker-registry (distribution 2.8) on a loopback port with htpasswd auth, standing
#     in for ECR: clients log in with `docker login --password-stdin`, user AWS as on ECR;
#   - a base image made by mmdebstrap (Debian bookworm, essential + python3-minimal and the
#     Python standard library, without docs and locales: about 140 MB) imported with
#     `docker import`, cached as a tarball between runs and pushed to the registry, so a
#     Dockerfile's `FROM ${BASE_IMAGE}` and `docker build --pull` find it there.
#
#   scripts/docker-test-env.sh start    # prints where it wrote env.json; idempotent
#   scripts/docker-test-env.sh status   # exit 0 when the engine and the registry answer
#   scripts/docker-test-env.sh stop     # stops both and removes their data
#
# Needs root and: apt-get install -y docker.io docker-registry mmdebstrap apache2-utils
# RUNCTL_DOCKER_DIR: where env.json and the pids live (default <repo>/.runctl/docker).
# RUNCTL_CACHE_DIR: where the base image tarball is kept (default /var/cache/runctl when
# writable, else <repo>/.runctl/cache).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
state_dir=${RUNCTL_DOCKER_DIR:-$repo/.runctl/docker}
if [ -z "${RUNCTL_CACHE_DIR:-}" ]; then
  if mkdir -p /var/cache/runctl 2>/dev/null && [ -w /var/cache/runctl ]; then RUNCTL_CACHE_DIR=/var/cache/runctl; else RUNCTL_CACHE_DIR=$repo/.runctl/cache; fi
fi
cache_dir=$RUNCTL_CACHE_DIR
suite=bookworm
base_tar=$cache_dir/base-$suite-python3.tar
base_repository=runctl/base
base_tag=$suite-python3

say() { printf 'docker-test-env: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

require() {
  local missing=()
  for tool in dockerd docker docker-registry mmdebstrap htpasswd curl python3; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  [ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]}: apt-get install -y docker.io docker-registry mmdebstrap apache2-utils curl python3"
  [ "$(id -u)" -eq 0 ] || die "dockerd needs root (run this script as root)"
}

json_field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$state_dir/env.json" "$1"; }

engine_answers() {
  [ -f "$state_dir/env.json" ] || return 1
  DOCKER_HOST=$(json_field dockerHost) timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

registry_answers() {
  [ -f "$state_dir/env.json" ] || return 1
  # 401 is the answer of a registry that wants a login.
  [ "$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://$(json_field registry)/v2/")" = 401 ]
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_until() { # seconds, description, command...
  local seconds=$1 what=$2
  shift 2
  for _ in $(seq 1 $((seconds * 5))); do
    if "$@"; then return 0; fi
    sleep 0.2
  done
  return 1
}

# The base image as a tarball of a root filesystem: made once, then read from the cache.
base_tarball() {
  if [ -s "$base_tar" ]; then return 0; fi
  mkdir -p "$cache_dir"
  say "making the base image with mmdebstrap ($suite, essential + python3-minimal + libpython3.11-stdlib; about 1-2 minutes, once)"
  local started=$SECONDS tmp="$base_tar.tmp.$$"
  # python3-minimal alone lacks json, argparse's friends and more of the standard library that
  # training scripts import; docs, man pages and locales are left out to keep vfs copies small.
  mmdebstrap --quiet --variant=essential --include=python3-minimal,libpython3.11-stdlib \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    "$suite" "$tmp" >&2 || { rm -f "$tmp"; die "mmdebstrap failed"; }
  mv "$tmp" "$base_tar"
  say "base tarball $base_tar ($(du -h "$base_tar" | cut -f1)) in $((SECONDS - started))s"
}

start() {
  require
  if engine_answers && registry_answers; then
    say "already running (engine $(json_field dockerHost), registry $(json_field registry))"
    echo "$state_dir/env.json"
    return 0
  fi
  stop_quietly
  base_tarball
  mkdir -p "$state_dir"
  # Short paths: containerd's sockets live under the exec root (unix socket paths are limited to 108 bytes).
  local runtime port password socket
  runtime=$(mktemp -d /tmp/runctl-docker.XXXXXX)
  echo "$runtime" >"$state_dir/runtime"
  socket="$runtime/docker.sock"
  say "starting dockerd (vfs storage under $runtime)"
  setsid dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs \
    --data-root "$runtime/data" --exec-root "$runtime/exec" --pidfile "$runtime/dockerd.pid" \
    -H "unix://$socket" >"$runtime/dockerd.log" 2>&1 </dev/null &
  echo $! >"$state_dir/dockerd.pid"
  wait_until 60 dockerd env DOCKER_HOST="unix://$socket" docker version >/dev/null 2>&1 ||
    { tail -n 20 "$runtime/dockerd.log" >&2; die "dockerd did not answer within 60 s (log above)"; }

  port=$(free_port)
  password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
  umask 077
  printf '%s' "$password" >"$state_dir/registry-password"
  htpasswd -Bbn AWS "$password" >"$runtime/htpasswd"
  umask 022
  cat >"$runtime/registry.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $runtime/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
auth:
  htpasswd:
    realm: runctl-local
    path: $runtime/htpasswd
YAML
  setsid docker-registry serve "$runtime/registry.yml" >"$runtime/registry.log" 2>&1 </dev/null &
  echo $! >"$state_dir/registry.pid"
  local registry="127.0.0.1:$port"
  wait_until 30 registry sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://$registry/v2/)\" = 401 ]" ||
    { tail -n 20 "$runtime/registry.log" >&2; die "the registry did not answer on $registry within 30 s (log above)"; }

  export DOCKER_HOST="unix://$socket" DOCKER_CONFIG="$runtime/docker-config"
  local base="$registry/$base_repository:$base_tag"
  say "importing the base image and pushing it to $registry"
  docker import --change 'ENV LANG=C.UTF-8' "$base_tar" "$base" >/dev/null
  docker login --username AWS --password-stdin "$registry" <"$state_dir/registry-password" >/dev/null 2>&1 ||
    die "docker login to $registry failed"
  docker push --quiet "$base" >/dev/null || die "pushing the base image to $registry failed"
  docker logout "$registry" >/dev/null 2>&1 || true

  python3 - "$state_dir/env.json" "unix://$socket" "$registry" "$state_dir/registry-password" "$base" "$runtime" <<'PY'
import json, sys
path, host, registry, password_file, base, runtime = sys.argv[1:]
with open(path, 'w') as f:
    json.dump({'dockerHost': host, 'registry': registry, 'username': 'AWS', 'passwordFile': password_file,
               'baseImage': base, 'runtime': runtime}, f, indent=2)
    f.write('\n')
PY
  say "ready: engine $DOCKER_HOST, registry $registry, base image $base"
  echo "$state_dir/env.json"
}

kill_pidfile() { # file
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait_until 30 "pid $pid" sh -c "! kill -0 $pid 2>/dev/null" || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}

stop_quietly() {
  local runtime
  runtime=$(cat "$state_dir/runtime" 2>/dev/null) || runtime=""
  if [ -n "$runtime" ] && [ -S "$runtime/docker.sock" ]; then
    # Containers first, so dockerd stops at once rather than waiting for them.
    local ids
    ids=$(DOCKER_HOST="unix://$runtime/docker.sock" timeout 20 docker ps -aq 2>/dev/null) || ids=""
    if [ -n "$ids" ]; then
      # shellcheck disable=SC2086
      DOCKER_HOST="unix://$runtime/docker.sock" timeout 60 docker rm -f $ids >/dev/null 2>&1 || true
    fi
  fi
  kill_pidfile "$state_dir/registry.pid"
  kill_pidfile "$state_dir/dockerd.pid"
  if [ -n "$runtime" ] && [ -d "$runtime" ] && [[ $runtime == /tmp/runctl-docker.* ]]; then
    # dockerd leaves its network namespace bind-mounted under the exec root.
    grep -F " $runtime/" /proc/mounts | cut -d ' ' -f 2 | sort -r | while read -r mounted; do
      umount "$mounted" 2>/dev/null || umount -l "$mounted" 2>/dev/null || true
    done
    rm -rf "$runtime"
  fi
  rm -f "$state_dir/runtime" "$state_dir/env.json" "$state_dir/registry-password"
}

case "${1:-}" in
  start) start ;;
  stop)
    stop_quietly
    say "stopped"
    ;;
  status)
    if engine_answers && registry_answers; then
      say "running: engine $(json_field dockerHost), registry $(json_field registry)"
    else
      say "not running (start it with: sudo bash scripts/docker-test-env.sh start)"
      exit 1
    fi
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
