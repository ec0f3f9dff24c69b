"""The same job as train.py with PyTorch: a one-hidden-layer MLP trained with mini-batch SGD on
<data dir>/train.csv (label first, then the features) or a generated dataset, under the same
runctl contract — a checkpoint every epoch in $RUNCTL_CHECKPOINT_DIR, checkpoint and exit on
SIGTERM, resume from $RUNCTL_RESUME_FROM, the model in $RUNCTL_OUTPUT_DIR, one JSON metrics line
per epoch. Used by `npm start` when `import torch` works.
"""
import argparse
import atexit
import json
import math
import os
import random
import signal
import sys
import time

import torch
from torch import nn

STOP = {"requested": False}


def on_sigterm(signum, frame):
    STOP["requested"] = True


def hold_for_stop(epoch):
    """Waits, checkpointed, until the stop signal: the interruption lands after a known epoch."""
    print(json.dumps({"event": "holding", "epoch": epoch}), flush=True)
    while not STOP["requested"]:
        time.sleep(0.05)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--hidden", type=int, default=12)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--min-epoch-seconds", type=float, default=0.0)
    p.add_argument("--hold-after-epoch", type=int, default=0,
                   help="after this epoch's checkpoint, unless resumed, wait for the stop signal (a demo or test interrupts at a known point)")
    p.add_argument("--hold-unless-loss-below", type=float, default=0.0,
                   help="with --hold-after-epoch: hold only when that epoch's loss is not below this (a trial that is not learning waits, checkpointed, for early stopping to stop it)")
    p.add_argument("--fail-at-epoch", type=int, default=0)
    p.add_argument("--busy-cores", type=int, default=0,
                   help="keep this many extra processes spinning, as data loaders that peg every core do")
    return p.parse_args()


def data_dir(args):
    if args.data_dir:
        return args.data_dir
    if os.environ.get("RUNCTL_DATA_DIR"):
        return os.environ["RUNCTL_DATA_DIR"]
    return os.environ.get("RUNCTL_INSTANCE_ROOT", "") + "/data"


def load_dataset(args):
    path = os.path.join(data_dir(args), "train.csv")
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    rows.append([float(v) for v in line.split(",")])
        source = path
    else:
        rng = random.Random(args.seed)
        for _ in range(2000):
            label = rng.random() < 0.5
            radius = (1.0 if label else 2.0) + rng.gauss(0, 0.25)
            angle = rng.uniform(0, 2 * math.pi)
            rows.append([1.0 if label else 0.0, radius * math.cos(angle), radius * math.sin(angle)])
        source = "synthetic"
    print(json.dumps({"event": "data", "source": source, "rows": len(rows)}), flush=True)
    data = torch.tensor(rows, dtype=torch.float32)
    return data[:, 1:], data[:, :1]


def spin():
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    while True:
        pass


def start_spinners(count):
    """Forked busy loops in the script's process group, ended when the script exits."""
    pids = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            spin()
        pids.append(pid)

    def stop():
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    atexit.register(stop)


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, on_sigterm)
    start_spinners(args.busy_cores)
    torch.manual_seed(args.seed)
    checkpoint_dir = os.environ.get("RUNCTL_CHECKPOINT_DIR", "")
    output_dir = os.environ.get("RUNCTL_OUTPUT_DIR", "")
    resume_from = os.environ.get("RUNCTL_RESUME_FROM", "")

    x, y = load_dataset(args)
    split = int(len(x) * 0.8)
    x_train, y_train, x_valid, y_valid = x[:split], y[:split], x[split:], y[split:]
    model = nn.Sequential(nn.Linear(x.shape[1], args.hidden), nn.Tanh(), nn.Linear(args.hidden, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    loss_fn = nn.BCEWithLogitsLoss()
    start_epoch = 0
    if resume_from:
        state = torch.load(os.path.join(resume_from, "model.pt"))
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        start_epoch = int(state["epoch"])
        print(json.dumps({"resumed_from_epoch": start_epoch}), flush=True)

    loss = float("nan")
    for epoch in range(start_epoch + 1, args.epochs + 1):
        if args.fail_at_epoch and epoch == args.fail_at_epoch:
            raise ValueError("fail-at-epoch %d: refusing to train on this batch" % epoch)
        started = time.time()
        order = torch.randperm(len(x_train))
        total = 0.0
        model.train()
        for start in range(0, len(order), args.batch_size):
            index = order[start:start + args.batch_size]
            optimizer.zero_grad()
            batch_loss = loss_fn(model(x_train[index]), y_train[index])
            batch_loss.backward()
            optimizer.step()
            total += batch_loss.item() * len(index)
            if STOP["requested"]:
                break
        while not STOP["requested"] and time.time() - started < args.min_epoch_seconds:
            time.sleep(0.05)
        if STOP["requested"]:
            print(json.dumps({"event": "stopping", "checkpoint_epoch": epoch - 1}), flush=True)
            return 143
        loss = total / len(x_train)
        model.eval()
        with torch.no_grad():
            accuracy = ((model(x_valid) >= 0).float() == y_valid).float().mean().item()
        if checkpoint_dir:
            os.makedirs(checkpoint_dir, exist_ok=True)
            tmp = os.path.join(checkpoint_dir, "model.pt.tmp")
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "rng": torch.get_rng_state(), "epoch": epoch, "loss": loss}, tmp)
            os.replace(tmp, os.path.join(checkpoint_dir, "model.pt"))
        print(json.dumps({"epoch": epoch, "loss": round(loss, 5), "accuracy": round(accuracy, 4),
                          "epoch_seconds": round(time.time() - started, 3)}), flush=True)
        # Only a fresh start holds: a resumed attempt that passes the epoch again must not wait
        # for a second stop signal that never comes.
        learning = args.hold_unless_loss_below > 0 and loss < args.hold_unless_loss_below
        if epoch == args.hold_after_epoch and not resume_from and not learning:
            hold_for_stop(epoch)
        if STOP["requested"]:
            print(json.dumps({"event": "stopping", "checkpoint_epoch": epoch}), flush=True)
            return 143

    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        torch.save(model.state_dict(), os.path.join(output_dir, "model.pt"))
        with open(os.path.join(output_dir, "metrics.json"), "w") as f:
            json.dump({"loss": loss}, f)
    print(json.dumps({"event": "done", "epochs": args.epochs}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
