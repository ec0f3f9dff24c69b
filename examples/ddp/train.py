"""Data-parallel training across nodes with PyTorch DDP (gloo, CPU): a one-hidden-layer MLP on
two noisy rings, each rank training on its own shard, under the runctl contract for multi-node
runs (docs/agent.md, docs/multi-node.md):

- started by torchrun (spec `distributed: {launcher: torchrun}`), it joins the process group
  torchrun set up (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT); started directly on every node
  (`code.command`), it joins one process per node from RUNCTL_NODE_RANK, RUNCTL_NUM_NODES,
  RUNCTL_MASTER_ADDR and RUNCTL_MASTER_PORT;
- checkpoints every epoch into $RUNCTL_CHECKPOINT_DIR (temp file, then rename): global rank 0
  writes model.pt (checkpoint.ranks "rank0"), or with --checkpoint-ranks all every rank writes
  rank-<r>.pt (checkpoint.ranks "all": each node's dir is its part of the checkpoint);
- on SIGTERM every rank stops at the same step (the stop flag is all-reduced each batch, so no
  rank is left waiting in a collective) and exits, the last epoch's checkpoint on disk;
- resumes from $RUNCTL_RESUME_FROM: model, optimizer and epoch, so the loss goes on where it
  left off (the shuffle of each epoch is seeded by the epoch, so a resumed run trains exactly
  as an uninterrupted one);
- global rank 0 prints one JSON metrics line per epoch (the loss averaged over every rank) and
  writes the model to $RUNCTL_OUTPUT_DIR.
"""
import argparse
import json
import math
import os
import random
import signal
import sys
import time
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

STOP = {"requested": False}


def on_sigterm(signum, frame):
    STOP["requested"] = True


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--lr", type=float, default=0.2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--hidden", type=int, default=16)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--checkpoint-ranks", choices=["rank0", "all"], default="rank0")
    p.add_argument("--min-epoch-seconds", type=float, default=0.0,
                   help="pace: an epoch lasts at least this long (demos and tests watch a run mid-training)")
    p.add_argument("--hold-after-epoch", type=int, default=0,
                   help="after this epoch's checkpoint, unless resumed, wait for the stop signal (a demo or test interrupts at a known point)")
    return p.parse_args()


def join_process_group():
    """(rank, world size): torchrun's environment when it started this process, else one process per node from RUNCTL_*."""
    timeout = timedelta(seconds=120)
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        dist.init_process_group("gloo", timeout=timeout)
    else:
        address = "tcp://%s:%s" % (os.environ.get("RUNCTL_MASTER_ADDR", "127.0.0.1"), os.environ.get("RUNCTL_MASTER_PORT", "29500"))
        dist.init_process_group("gloo", init_method=address, rank=int(os.environ.get("RUNCTL_NODE_RANK", "0")),
                                world_size=int(os.environ.get("RUNCTL_NUM_NODES", "1")), timeout=timeout)
    return dist.get_rank(), dist.get_world_size()


def rings(seed, count=2000):
    """Two interleaved noisy rings: not linearly separable, so the hidden layer matters."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        label = rng.random() < 0.5
        radius = (1.0 if label else 2.0) + rng.gauss(0, 0.25)
        angle = rng.uniform(0, 2 * math.pi)
        rows.append([1.0 if label else 0.0, radius * math.cos(angle), radius * math.sin(angle)])
    data = torch.tensor(rows, dtype=torch.float32)
    return data[:, 1:], data[:, :1]


def stop_everywhere():
    """True on every rank once any rank got the stop signal: all of them leave at the same step."""
    flag = torch.tensor([1 if STOP["requested"] else 0])
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def save(path, state):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)


def checkpoint_file(directory, mode, rank):
    return os.path.join(directory, "model.pt" if mode == "rank0" else "rank-%d.pt" % rank)


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, on_sigterm)
    rank, world = join_process_group()
    checkpoint_dir = os.environ.get("RUNCTL_CHECKPOINT_DIR", "")
    output_dir = os.environ.get("RUNCTL_OUTPUT_DIR", "")
    resume_from = os.environ.get("RUNCTL_RESUME_FROM", "")

    torch.manual_seed(args.seed)
    x, y = rings(args.seed)
    split = int(len(x) * 0.8)
    x_train, y_train, x_valid, y_valid = x[:split], y[:split], x[split:], y[split:]
    model = DistributedDataParallel(nn.Sequential(nn.Linear(2, args.hidden), nn.Tanh(), nn.Linear(args.hidden, 1)))
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    loss_fn = nn.BCEWithLogitsLoss()
    start_epoch = 0
    if resume_from:
        # rank0: every node restored the same model.pt; all: each its own rank's file.
        state = torch.load(checkpoint_file(resume_from, args.checkpoint_ranks, rank))
        model.module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch = int(state["epoch"])
        if rank == 0:
            print(json.dumps({"event": "resumed", "epoch": start_epoch, "loss": state["loss"]}), flush=True)
    if rank == 0:
        print(json.dumps({"event": "start", "world_size": world, "nodes": int(os.environ.get("RUNCTL_NUM_NODES", "1"))}), flush=True)

    for epoch in range(start_epoch + 1, args.epochs + 1):
        started = time.time()
        # Seeded by the epoch: the same order whether or not the run was interrupted before it.
        order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(args.seed * 1000 + epoch))
        # Equal shards: every rank takes as many steps, so every collective has all of them.
        order = order[: len(order) // world * world]
        shard = order[rank::world]
        total, seen = torch.zeros(1), torch.zeros(1)
        model.train()
        stopped = False
        for start in range(0, len(shard), args.batch_size):
            if stop_everywhere():
                stopped = True
                break
            index = shard[start:start + args.batch_size]
            optimizer.zero_grad()
            batch_loss = loss_fn(model(x_train[index]), y_train[index])
            batch_loss.backward()
            optimizer.step()
            total += batch_loss.detach() * len(index)
            seen += len(index)
        while not stopped and time.time() - started < args.min_epoch_seconds:
            time.sleep(0.05)
        if stopped or stop_everywhere():
            if rank == 0:
                print(json.dumps({"event": "stopping", "checkpoint_epoch": epoch - 1}), flush=True)
            return 143
        dist.all_reduce(total)
        dist.all_reduce(seen)
        loss = (total / seen).item()
        with torch.no_grad():
            accuracy = ((model.module(x_valid) >= 0).float() == y_valid).float().mean().item()
        state = {"model": model.module.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch, "loss": loss}
        if checkpoint_dir and (args.checkpoint_ranks == "all" or rank == 0):
            save(checkpoint_file(checkpoint_dir, args.checkpoint_ranks, rank), state)
        if rank == 0:
            print(json.dumps({"epoch": epoch, "loss": round(loss, 6), "accuracy": round(accuracy, 4),
                              "epoch_seconds": round(time.time() - started, 3)}), flush=True)
        if epoch == args.hold_after_epoch and not resume_from:
            if rank == 0:
                print(json.dumps({"event": "holding", "epoch": epoch}), flush=True)
            while not stop_everywhere():
                time.sleep(0.05)
            if rank == 0:
                print(json.dumps({"event": "stopping", "checkpoint_epoch": epoch}), flush=True)
            return 143

    if rank == 0 and output_dir:
        save(os.path.join(output_dir, "model.pt"), model.module.state_dict())
        print(json.dumps({"event": "done", "epochs": args.epochs}), flush=True)
    dist.barrier()
    return 0


if __name__ == "__main__":
    code = main()
    if dist.is_initialized():
        dist.destroy_process_group()
    sys.exit(code)
