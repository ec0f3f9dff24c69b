"""Bench training script for the recovery timeline (bench/recovery.ts).

Holds a checkpoint of --checkpoint-bytes random bytes (so nothing compresses it away), in
--checkpoint-files files (shards, as a sharded model saves them), steps
every --step-seconds, and on the stop signal saves and exits 0. Prints JSON lines the agent turns
into metrics: `stop_signal_at_ms` when the signal arrives, `resumed_at_ms` as soon as a resumed
attempt starts. A resumed attempt takes --steps-after-resume more steps and ends.
"""
import argparse
import json
import os
import signal
import sys
import time


def now_ms():
    return int(time.time() * 1000)


def emit(**values):
    print(json.dumps(values), flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--checkpoint-bytes', '--checkpoint_bytes', dest='checkpoint_bytes', type=int, default=1_000_000)
    parser.add_argument('--step-seconds', '--step_seconds', dest='step_seconds', type=float, default=1.0)
    parser.add_argument('--steps-after-resume', '--steps_after_resume', dest='steps_after_resume', type=int, default=2)
    parser.add_argument('--checkpoint-files', '--checkpoint_files', dest='checkpoint_files', type=int, default=1)
    args = parser.parse_args()
    checkpoints = os.environ['RUNCTL_CHECKPOINT_DIR']
    resume = os.environ.get('RUNCTL_RESUME_FROM') or ''
    if resume:
        emit(resumed_at_ms=now_ms())
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: (stopping.append(now_ms()), emit(stop_signal_at_ms=stopping[0])))

    def save(step):
        shard = args.checkpoint_bytes // args.checkpoint_files
        for i in range(args.checkpoint_files):
            name = 'model.bin' if args.checkpoint_files == 1 else 'model-%05d.bin' % i
            tmp = os.path.join(checkpoints, name + '.tmp')
            with open(tmp, 'wb') as f:
                f.write(os.urandom(shard))
            os.replace(tmp, os.path.join(checkpoints, name))
        with open(os.path.join(checkpoints, 'step.json'), 'w') as f:
            json.dump({'step': step}, f)

    step = 0
    if resume:
        with open(os.path.join(resume, 'step.json')) as f:
            step = json.load(f)['step']
    last = step + args.steps_after_resume if resume else None
    while last is None or step < last:
        if stopping:
            save(step)
            sys.exit(0)
        time.sleep(args.step_seconds)
        step += 1
        emit(step=step)
    save(step)
    os.makedirs(os.environ['RUNCTL_OUTPUT_DIR'], exist_ok=True)
    with open(os.path.join(os.environ['RUNCTL_OUTPUT_DIR'], 'done.json'), 'w') as f:
        json.dump({'step': step}, f)


if __name__ == '__main__':
    main()
