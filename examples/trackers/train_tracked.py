"""A training script that logs to Weights & Biases and/or MLflow beside runctl's own metrics.

runctl reads the JSON line this script prints each epoch ({"epoch": 3, "loss": 0.41}) into
`runctl metrics`, the dashboard and sweeps, whatever else the script does. The trackers are
extra, and each is used only when its package is installed (in your Docker image, or
`pip install wandb mlflow` on the instance) and it is configured:

- W&B: WANDB_API_KEY, read by runctl from your secrets store (spec.secrets), and WANDB_PROJECT
  (spec.env). The W&B run id is the runctl run id, so every attempt of a run that spot
  interruptions moved across instances logs into one W&B run (resume="allow").
- MLflow: MLFLOW_TRACKING_URI (spec.env) and, for a server behind basic auth,
  MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (spec.secrets). The MLflow run id is
  kept in the checkpoint, so a resumed attempt continues the same MLflow run.

Neither package is needed to import or run this file: without them it trains and reports to
runctl alone. It follows the runctl script contract (docs/agent.md): a checkpoint every epoch,
checkpoint-and-exit on SIGTERM, resume from RUNCTL_RESUME_FROM, the model in RUNCTL_OUTPUT_DIR.
The model is a least-squares line fitted by gradient descent on synthetic data. docs/trackers.md.
"""
import argparse
import json
import os
import random
import signal
import sys
import time

STOP = {"requested": False}


def note(**fields):
    """A line for the log. Its values are text: runctl takes every number on a JSON line for a metric."""
    print(json.dumps({"event": "trackers", **fields}), flush=True)


class Trackers:
    """The trackers this run logs to: each optional, each failure a note rather than a crash."""

    def __init__(self, config, resumed_state):
        self.wandb = None
        self.mlflow = None
        run_id = os.environ.get("RUNCTL_RUN_ID", "local")
        if os.environ.get("WANDB_API_KEY"):
            try:
                import wandb
            except ImportError:
                note(wandb="WANDB_API_KEY is set but the wandb package is not installed: skipped")
            else:
                self.wandb = wandb.init(
                    project=os.environ.get("WANDB_PROJECT", "runctl"),
                    id=run_id,
                    name=run_id,
                    resume="allow",
                    config=config,
                )
                note(wandb="logging to project %s, run %s" % (os.environ.get("WANDB_PROJECT", "runctl"), run_id))
        if os.environ.get("MLFLOW_TRACKING_URI"):
            try:
                import mlflow
            except ImportError:
                note(mlflow="MLFLOW_TRACKING_URI is set but the mlflow package is not installed: skipped")
            else:
                mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", "runctl"))
                previous = resumed_state.get("mlflow_run_id")
                active = mlflow.start_run(run_id=previous) if previous else mlflow.start_run(run_name=run_id)
                if not previous:
                    mlflow.log_params(config)
                self.mlflow = mlflow
                self.mlflow_run_id = active.info.run_id
                note(mlflow="logging to run %s" % self.mlflow_run_id)

    def state(self):
        """What a resumed attempt needs to continue the same tracker runs (kept in the checkpoint)."""
        return {"mlflow_run_id": self.mlflow_run_id} if self.mlflow else {}

    def log(self, metrics, step):
        if self.wandb:
            self.wandb.log(metrics, step=step)
        if self.mlflow:
            self.mlflow.log_metrics(metrics, step=step)

    def finish(self, interrupted):
        # An interrupted attempt's runs are resumed by the next attempt (same ids).
        if self.wandb:
            self.wandb.finish()
        if self.mlflow:
            self.mlflow.end_run(status="KILLED" if interrupted else "FINISHED")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--min-epoch-seconds", type=float, default=0.0, help="pace: an epoch lasts at least this long")
    return p.parse_args()


def save_json(directory, name, value):
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(value, f)
    os.replace(tmp, os.path.join(directory, name))


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: STOP.update(requested=True))
    checkpoints = os.environ.get("RUNCTL_CHECKPOINT_DIR", "checkpoints")
    outputs = os.environ.get("RUNCTL_OUTPUT_DIR", "output")
    resume = os.environ.get("RUNCTL_RESUME_FROM", "")

    state = {"epoch": 0, "w": 0.0, "b": 0.0}
    if resume and os.path.exists(os.path.join(resume, "state.json")):
        with open(os.path.join(resume, "state.json")) as f:
            state = json.load(f)
        note(resumed="from the checkpoint of epoch %d" % state["epoch"])

    rng = random.Random(args.seed)
    data = [(x, 3.0 * x - 1.0 + rng.gauss(0, 0.1)) for x in (rng.uniform(-1, 1) for _ in range(256))]
    trackers = Trackers({"epochs": args.epochs, "lr": args.lr, "seed": args.seed}, state)

    w, b = state["w"], state["b"]
    for epoch in range(state["epoch"] + 1, args.epochs + 1):
        started = time.time()
        grad_w = sum(2 * (w * x + b - y) * x for x, y in data) / len(data)
        grad_b = sum(2 * (w * x + b - y) for x, y in data) / len(data)
        w, b = w - args.lr * grad_w, b - args.lr * grad_b
        loss = sum((w * x + b - y) ** 2 for x, y in data) / len(data)
        # runctl's own metrics: one JSON line per epoch, on stdout.
        print(json.dumps({"epoch": epoch, "loss": round(loss, 6)}), flush=True)
        trackers.log({"loss": loss}, step=epoch)
        save_json(checkpoints, "state.json", {"epoch": epoch, "w": w, "b": b, **trackers.state()})
        time.sleep(max(0.0, args.min_epoch_seconds - (time.time() - started)))
        if STOP["requested"]:
            trackers.finish(interrupted=True)
            return 0
    save_json(outputs, "model.json", {"w": w, "b": b})
    trackers.finish(interrupted=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
