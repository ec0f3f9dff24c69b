"""A small but real training job in pure Python: a one-hidden-layer MLP (tanh, sigmoid output)
trained with mini-batch SGD on a binary classification dataset, following the runctl training
script contract (docs/agent.md):

- checkpoints every epoch into $RUNCTL_CHECKPOINT_DIR (written to a temp file, then renamed);
- on SIGTERM finishes the current batch, checkpoints and exits 0 without writing outputs
  (the agent uploads the checkpoint and the run resumes on a fresh instance);
- resumes from $RUNCTL_RESUME_FROM (the restored checkpoint directory) when it is set;
- writes the trained model to $RUNCTL_OUTPUT_DIR;
- prints one JSON metrics line per epoch: {"epoch": 3, "loss": 0.41, "accuracy": 0.87}.

Data: <data dir>/train.csv (label first, then the features), prefetched from S3 by the run;
without it a synthetic dataset is generated. The data dir is --data-dir, else $RUNCTL_DATA_DIR,
else /data (under $RUNCTL_INSTANCE_ROOT on the local backend, whose instances are sandboxes).
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
    p.add_argument("--min-epoch-seconds", type=float, default=0.0,
                   help="pace: an epoch lasts at least this long (demos and tests watch a run mid-training)")
    p.add_argument("--hold-after-epoch", type=int, default=0,
                   help="after this epoch's checkpoint, unless resumed, wait for the stop signal (a demo or test interrupts at a known point)")
    p.add_argument("--hold-unless-loss-below", type=float, default=0.0,
                   help="with --hold-after-epoch: hold only when that epoch's loss is not below this (a trial that is not learning waits, checkpointed, for early stopping to stop it)")
    p.add_argument("--fail-at-epoch", type=int, default=0, help="raise at this epoch (to see a failed run)")
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
    if os.path.exists(path):
        rows = []
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                values = [float(v) for v in line.split(",")]
                rows.append((values[1:], values[0]))
        print(json.dumps({"event": "data", "source": path, "rows": len(rows)}), flush=True)
        return rows
    # Two interleaved noisy rings: not linearly separable, so the hidden layer matters.
    rng = random.Random(args.seed)
    rows = []
    for _ in range(2000):
        label = rng.random() < 0.5
        radius = (1.0 if label else 2.0) + rng.gauss(0, 0.25)
        angle = rng.uniform(0, 2 * math.pi)
        rows.append(([radius * math.cos(angle), radius * math.sin(angle)], 1.0 if label else 0.0))
    print(json.dumps({"event": "data", "source": "synthetic", "rows": len(rows)}), flush=True)
    return rows


def init_model(inputs, hidden, seed):
    rng = random.Random(seed)
    scale = 1.0 / math.sqrt(inputs)
    return {
        "w1": [[rng.gauss(0, scale) for _ in range(inputs)] for _ in range(hidden)],
        "b1": [0.0] * hidden,
        "w2": [rng.gauss(0, 1.0 / math.sqrt(hidden)) for _ in range(hidden)],
        "b2": 0.0,
    }


def sigmoid(z):
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def forward(model, x):
    h = [math.tanh(sum(w * xi for w, xi in zip(row, x)) + b) for row, b in zip(model["w1"], model["b1"])]
    return h, sigmoid(sum(w * hi for w, hi in zip(model["w2"], h)) + model["b2"])


def train_batch(model, batch, lr):
    hidden = len(model["b1"])
    inputs = len(model["w1"][0])
    g_w1 = [[0.0] * inputs for _ in range(hidden)]
    g_b1 = [0.0] * hidden
    g_w2 = [0.0] * hidden
    g_b2 = 0.0
    loss = 0.0
    for x, y in batch:
        h, p = forward(model, x)
        loss -= y * math.log(max(p, 1e-12)) + (1 - y) * math.log(max(1 - p, 1e-12))
        d_out = p - y
        g_b2 += d_out
        for j in range(hidden):
            g_w2[j] += d_out * h[j]
            d_h = d_out * model["w2"][j] * (1 - h[j] * h[j])
            g_b1[j] += d_h
            row = g_w1[j]
            for i in range(inputs):
                row[i] += d_h * x[i]
    n = len(batch)
    for j in range(hidden):
        model["w2"][j] -= lr * g_w2[j] / n
        model["b1"][j] -= lr * g_b1[j] / n
        row = model["w1"][j]
        for i in range(inputs):
            row[i] -= lr * g_w1[j][i] / n
    model["b2"] -= lr * g_b2 / n
    return loss


def accuracy(model, rows):
    return sum(1 for x, y in rows if (forward(model, x)[1] >= 0.5) == (y >= 0.5)) / len(rows)


def write_json_atomic(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f)
    os.replace(tmp, path)


def save_checkpoint(directory, model, epoch, rng_state, loss):
    if not directory:
        return
    os.makedirs(directory, exist_ok=True)
    write_json_atomic(os.path.join(directory, "model.json"), {"model": model, "epoch": epoch, "loss": loss, "rng": rng_state})
    write_json_atomic(os.path.join(directory, "progress.json"), {"epoch": epoch, "loss": loss})


def load_checkpoint(directory):
    path = os.path.join(directory, "model.json")
    with open(path) as f:
        state = json.load(f)
    return state["model"], int(state["epoch"]), state.get("rng")


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
    checkpoint_dir = os.environ.get("RUNCTL_CHECKPOINT_DIR", "")
    output_dir = os.environ.get("RUNCTL_OUTPUT_DIR", "")
    resume_from = os.environ.get("RUNCTL_RESUME_FROM", "")

    rows = load_dataset(args)
    split = int(len(rows) * 0.8)
    train, valid = rows[:split], rows[split:]
    model = init_model(len(rows[0][0]), args.hidden, args.seed)
    start_epoch = 0
    rng = random.Random(args.seed)
    if resume_from:
        model, start_epoch, rng_state = load_checkpoint(resume_from)
        if rng_state is not None:
            rng.setstate((rng_state[0], tuple(rng_state[1]), rng_state[2]))
        print(json.dumps({"resumed_from_epoch": start_epoch}), flush=True)

    loss = float("nan")
    for epoch in range(start_epoch + 1, args.epochs + 1):
        if args.fail_at_epoch and epoch == args.fail_at_epoch:
            raise ValueError("fail-at-epoch %d: refusing to train on this batch" % epoch)
        started = time.time()
        order = list(range(len(train)))
        rng.shuffle(order)
        total = 0.0
        for start in range(0, len(order), args.batch_size):
            total += train_batch(model, [train[i] for i in order[start:start + args.batch_size]], args.lr)
            if STOP["requested"]:
                break
        while not STOP["requested"] and time.time() - started < args.min_epoch_seconds:
            time.sleep(0.05)
        if STOP["requested"]:
            # The epoch is incomplete: the last complete one is already on disk. Non-zero, because
            # the script did not finish; the agent reports the stop as an interruption anyway.
            print(json.dumps({"event": "stopping", "checkpoint_epoch": epoch - 1}), flush=True)
            return 143
        loss = total / len(train)
        acc = accuracy(model, valid)
        state = rng.getstate()
        save_checkpoint(checkpoint_dir, model, epoch, [state[0], list(state[1]), state[2]], loss)
        print(json.dumps({"epoch": epoch, "loss": round(loss, 5), "accuracy": round(acc, 4),
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
        write_json_atomic(os.path.join(output_dir, "model.json"), {"model": model, "epochs": args.epochs, "loss": loss})
        with open(os.path.join(output_dir, "metrics.json"), "w") as f:
            json.dump({"loss": loss, "accuracy": accuracy(model, valid)}, f)
    print(json.dumps({"event": "done", "epochs": args.epochs}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
