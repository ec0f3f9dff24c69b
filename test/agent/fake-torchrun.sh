#!/usr/bin/env bash
# A stand-in for torchrun in the agent tests: records the argv it got and the RUNCTL_* environment
# as JSON in $FAKE_TORCHRUN_RECORD, then runs the script the way torchrun runs it on one node
# with one process (python3 <script> <args…>), without a rendezvous.
set -euo pipefail
python3 -c '
import json, os, sys
env = {k: v for k, v in os.environ.items() if k.startswith("RUNCTL_") and k != "RUNCTL_INSTANCE_ROOT"}
with open(os.environ["FAKE_TORCHRUN_RECORD"], "w") as f:
    json.dump({"argv": sys.argv[1:], "env": env}, f)
' "$@"
# torchrun's own options come first, each with its value; the script is the first other word.
while [ $# -gt 0 ]; do
  case $1 in
    --*) shift 2 ;;
    *) break ;;
  esac
done
exec python3 "$@"
