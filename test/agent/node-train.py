"""A training script for one node of a multi-node run, following the agent contract
(docs/agent.md, docs/multi-node.md), for the agent tests.

It records what it was given (argv, the RUNCTL_* environment, the files restored into
RUNCTL_RESUME_FROM and their content) in $RUNCTL_OUTPUT_DIR/received.json, then per NODE_MODE:
  periodic  save shard.json ({rank, step}) every 0.3 s and print a JSON metric line with the
            rank, until the file NODE_UNTIL_FILE exists (or NODE_SECONDS pass, or SIGTERM
            comes: as the contract asks, the save under way completes first); exit 0
  fail      exit 3 at once
"""
import json
import os
import signal
import sys
import time

rank = int(os.environ.get('RUNCTL_NODE_RANK', '0'))
checkpoints = os.environ['RUNCTL_CHECKPOINT_DIR']
outputs = os.environ['RUNCTL_OUTPUT_DIR']
resume = os.environ.get('RUNCTL_RESUME_FROM', '')


def restored():
    if not resume:
        return {}
    found = {}
    for base, _, names in os.walk(resume):
        for name in names:
            with open(os.path.join(base, name)) as f:
                found[os.path.relpath(os.path.join(base, name), resume)] = f.read()
    return found


with open(os.path.join(outputs, 'received.json'), 'w') as f:
    json.dump({
        'argv': sys.argv[1:],
        'env': {k: v for k, v in os.environ.items() if k.startswith('RUNCTL_') and k != 'RUNCTL_INSTANCE_ROOT'},
        'restored': restored(),
    }, f)

mode = os.environ.get('NODE_MODE', 'periodic')
print('node %d starting in mode %s' % (rank, mode), flush=True)
if mode == 'fail':
    sys.exit(3)

# The stop signal ends the loop after the save under way: a save cut in half would leave its
# temporary file in the checkpoint dir, which the agent would upload with the rest.
stopping = False


def on_term(signum, frame):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, on_term)
until_file = os.environ.get('NODE_UNTIL_FILE')
seconds = float(os.environ.get('NODE_SECONDS', '3'))
started = time.time()
step = 0
while not stopping and ((not os.path.exists(until_file) and time.time() - started < 120) if until_file else time.time() - started < seconds):
    step += 1
    tmp = os.path.join(checkpoints, 'shard.json.tmp')
    with open(tmp, 'w') as f:
        json.dump({'rank': rank, 'step': step}, f)
    os.replace(tmp, os.path.join(checkpoints, 'shard.json'))
    print(json.dumps({'step': step, 'loss': 1.0 / step, 'rank': rank}), flush=True)
    time.sleep(0.3)
with open(os.path.join(outputs, 'model.bin'), 'w') as f:
    f.write('rank %d after %d steps' % (rank, step))
