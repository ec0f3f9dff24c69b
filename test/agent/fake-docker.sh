#!/usr/bin/env bash
# A stand-in for the docker CLI in the agent tests (there is no Docker engine here). Every call
# is recorded as one JSON array per line in $FAKE_DOCKER_DIR/calls.jsonl. `run` execs the
# training command found after the image, with only the -e environment (`-e NAME` takes NAME from
# this process's environment, as docker does; unset, it is left out) and in the -w directory,
# so the rest of the agent (checkpoints, signals, callbacks) runs for real; mounts need no
# emulation because the agent binds every path at the same place inside the container.
# `kill`/`stop` deliver signals to that process, found by container name.
set -uo pipefail
dir=${FAKE_DOCKER_DIR:?FAKE_DOCKER_DIR is not set}
python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@" >>"$dir/calls.jsonl"

pid_of() { cat "$dir/container-$1.pid" 2>/dev/null; }

case "${1:-}" in
  login)
    # The password must arrive on stdin (--password-stdin), never in the argv.
    cat >"$dir/login-stdin"
    echo "Login Succeeded"
    ;;
  pull)
    if [ -n "${FAKE_DOCKER_PULL_FAILS:-}" ]; then echo "Error response from daemon: manifest unknown" >&2; exit 1; fi
    # A large image: the pull takes this long.
    if [ -n "${FAKE_DOCKER_PULL_SECONDS:-}" ]; then sleep "$FAKE_DOCKER_PULL_SECONDS"; fi
    echo "${*: -1}"
    ;;
  run)
    shift
    name="" workdir="" envs=()
    while [ $# -gt 0 ]; do
      case "$1" in
        --rm | --init) shift ;;
        --name) name=$2; shift 2 ;;
        -e)
          if [[ "$2" == *=* ]]; then envs+=("$2"); elif [ -n "${!2+set}" ]; then envs+=("$2=${!2}"); fi
          shift 2
          ;;
        -w) workdir=$2; shift 2 ;;
        --gpus | --stop-signal | --stop-timeout | --network | --ipc | -v) shift 2 ;;
        -*) echo "fake docker: unknown option $1" >&2; exit 125 ;;
        *) break ;;
      esac
    done
    shift # the image
    cd "$workdir" || exit 125
    if [ -z "${FAKE_DOCKER_REMOVE_SECONDS:-}" ]; then
      echo $$ >"$dir/container-$name.pid"
      exec env -i PATH="$PATH" LANG=C.UTF-8 "${envs[@]}" "$@"
    fi
    # As with --rm on the vfs storage driver: the CLI returns only after the exited container's
    # filesystem is removed, seconds after the script ended.
    env -i PATH="$PATH" LANG=C.UTF-8 "${envs[@]}" "$@" &
    script=$!
    echo "$script" >"$dir/container-$name.pid"
    trap '' TERM INT
    wait "$script"
    code=$?
    : >"$dir/container-$name.exited"
    sleep "$FAKE_DOCKER_REMOVE_SECONDS"
    exit "$code"
    ;;
  kill)
    signal=KILL
    if [ "${2:-}" = --signal ]; then signal=${3#SIG}; fi
    pid=$(pid_of "${*: -1}") && kill -s "$signal" "$pid" 2>/dev/null || { echo "No such container: ${*: -1}" >&2; exit 1; }
    ;;
  container)
    # container inspect --format '{{.State.Status}}' NAME: running while its process lives; a
    # container that exited is still listed while FAKE_DOCKER_REMOVE_SECONDS of removal last.
    name=${*: -1}
    pid=$(pid_of "$name") || { echo "Error: No such container: $name" >&2; exit 1; }
    if kill -0 "$pid" 2>/dev/null && [ ! -e "$dir/container-$name.exited" ]; then echo running; else echo exited; fi
    ;;
  stop)
    pid=$(pid_of "${*: -1}") || exit 0
    kill -s TERM "$pid" 2>/dev/null
    for _ in $(seq 1 $((${3:-10} * 5))); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.2; done
    kill -s KILL "$pid" 2>/dev/null
    ;;
  *)
    ;;
esac
