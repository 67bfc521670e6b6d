"""lrlab's benchmarks: the training path against a plain PyTorch loop, start-up, and multirun overhead.

Every variant runs in a process of its own, repetitions interleaved (A B C A B C ...) so that a noisy machine
hurts all variants alike; the table reports medians and ratios to the raw loop measured in the same run.

    make bench                 # or: .venv/bin/python benchmarks/bench.py [--reps 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
SAMPLES, FEATURES, CLASSES = 60_000, 784, 10  # MNIST-shaped
EPOCHS = 2  # every variant trains 2 epochs; the second (steady state) is the one compared


# ----------------------------------------------------------------------------------------------------------------
# The variants. Each runs in a child process (`bench.py --child VARIANT BATCH THREADS`) and prints the training
# epoch's wall time in seconds as its last line.

def _data(torch):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(SAMPLES, FEATURES, generator=g)
    y = torch.randint(0, CLASSES, (SAMPLES,), generator=g)
    return x, y


def child_raw(batch: int, threads: int) -> float:
    """The seed's example 2 written plainly: randperm + slicing of in-memory tensors, SGD, one epoch."""
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x, y = _data(torch)
    model = nn.Sequential(nn.Linear(FEATURES, 128), nn.ReLU(), nn.Linear(128, CLASSES))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(EPOCHS):  # the last epoch is timed (the first one pays one-off warm-up costs)
        start = time.perf_counter()
        order = torch.randperm(SAMPLES)
        for i in range(0, SAMPLES, batch):
            idx = order[i : i + batch]
            optimizer.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start


def child_lrlab(batch: int, threads: int) -> float:
    """lrlab-train's own path and defaults (TensorBoard, LR monitor, progress bar, checkpoints) on the same data;
    the epoch's training time is what lrlab records in metrics.json (``history[].train_s``)."""
    from hydra import compose, initialize_config_module

    from lrlab.paths import register_resolvers
    from lrlab.training import train

    register_resolvers()
    out = Path(tempfile.mkdtemp(prefix="lrlab-bench-"))
    with initialize_config_module("lrlab.conf", version_base="1.3"):
        cfg = compose("train", overrides=[
            "data=synthetic", f"data.samples={round(SAMPLES / 0.99)}", f"data.features={FEATURES}",
            "data.val_fraction=0.01", f"data.batch_size={batch}", "model.hidden=[128]", "optimizer=sgd",
            "optimizer.lr=0.01", f"trainer.max_epochs={EPOCHS}", f"threads={threads}", f"output_dir={out}",
        ])
    train(cfg)
    return json.loads((out / "metrics.json").read_text())["history"][-1]["train_s"]


def child_template(batch: int, threads: int) -> float:
    """A typical Hydra+Lightning template: DataLoader over a TensorDataset, self.log every step, default logger
    (TensorBoard) and progress bar."""
    import pytorch_lightning as pl
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    torch.set_num_threads(threads)
    pl.seed_everything(0, verbose=False)
    x, y = _data(torch)

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(FEATURES, 128), nn.ReLU(), nn.Linear(128, CLASSES))

        def training_step(self, b, i):
            logits = self.net(b[0])
            loss = nn.functional.cross_entropy(logits, b[1])
            self.log("train/loss", loss)
            self.log("train/acc", (logits.argmax(-1) == b[1]).float().mean())
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    class Timer(pl.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer, pl_module):
            self.seconds = time.perf_counter() - self.start

    timer = Timer()
    out = tempfile.mkdtemp(prefix="template-bench-")
    trainer = pl.Trainer(max_epochs=EPOCHS, accelerator="cpu", default_root_dir=out, callbacks=[timer],
                         enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(Module(), DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True))
    return timer.seconds


CHILDREN = {"raw": child_raw, "lrlab": child_lrlab, "template": child_template}


# ----------------------------------------------------------------------------------------------------------------

def run_child(variant: str, batch: int, threads: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(HERE.parent), "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run([sys.executable, str(HERE / "bench.py"), "--child", variant, str(batch), str(threads)],
                          capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    if proc.returncode:
        raise RuntimeError(f"{variant} failed:\n{proc.stdout}\n{proc.stderr}")
    return float(proc.stdout.strip().splitlines()[-1])


def wall(cmd: list[str], cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def startup(reps: int) -> dict[str, float]:
    """Whole-process times: --help, --cfg job, a 1-epoch job on digits, and the raw loop's process on digits."""
    cwd = tempfile.mkdtemp(prefix="lrlab-startup-")
    raw = (
        "import numpy as np, torch, importlib.util, pathlib\nfrom torch import nn\n"
        "p = pathlib.Path(importlib.util.find_spec('sklearn').submodule_search_locations[0]) / 'datasets/data/digits.csv.gz'\n"
        "t = np.loadtxt(p, delimiter=','); x = torch.tensor(t[:, :-1], dtype=torch.float32); y = torch.tensor(t[:, -1]).long()\n"
        "m = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)); o = torch.optim.Adam(m.parameters())\n"
        "for i in range(0, len(x), 64):\n    o.zero_grad(); nn.functional.cross_entropy(m(x[i:i+64]), y[i:i+64]).backward(); o.step()\n")
    cases = {
        "lrlab-train --help": [str(BIN / "lrlab-train"), "--help"],
        "lrlab-train --cfg job": [str(BIN / "lrlab-train"), "--cfg", "job"],
        "lrlab-train 1 epoch (digits)": [str(BIN / "lrlab-train"), "trainer.max_epochs=1", "trainer.enable_progress_bar=false"],
        "raw loop process 1 epoch (digits)": [sys.executable, "-c", raw],
        "import pytorch_lightning": [sys.executable, "-c", "import pytorch_lightning"],
        "import torch": [sys.executable, "-c", "import torch"],
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(reps):
        for name, cmd in cases.items():
            times[name].append(wall(cmd, cwd))
    return {k: statistics.median(v) for k, v in times.items()}


def multirun(reps: int) -> dict[str, float]:
    """Grids of 6 jobs (6 learning rates), sequential and with joblib's 2 workers.

    On 1-epoch jobs on digits: what each extra job costs beyond its own training, per-job overhead = (wall of the
    6-job grid - wall of a 1-job grid) / 5 - the mean time inside Trainer.fit (the Hydra job set-up, config checks,
    data, Trainer/logger construction and the run's files). Jobs that short are start-up: each joblib worker is a
    fresh process that imports torch and Lightning, so the same comparison is also made on jobs that compute
    (MNIST-shaped synthetic data, 2 epochs).
    """
    lrs = "0.001,0.003,0.01,0.03,0.1,0.3"
    grids = {
        "digits 1-epoch": ["trainer.max_epochs=1", "trainer.enable_progress_bar=false"],
        "MNIST-shaped 2-epoch": ["trainer.max_epochs=2", "trainer.enable_progress_bar=false", "data=synthetic",
                                 f"data.samples={SAMPLES}", f"data.features={FEATURES}", "model.hidden=[128]"],
    }
    joblib = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    times: dict[str, list[float]] = {}
    for _ in range(reps):
        cwd = tempfile.mkdtemp(prefix="lrlab-grid-")
        light = grids["digits 1-epoch"]
        times.setdefault("one", []).append(
            wall([str(BIN / "lrlab-train"), "-m", "optimizer.lr=0.001", *light, "hydra.sweep.dir=one"], cwd))
        for i, (name, overrides) in enumerate(grids.items()):
            seq_dir, par_dir = f"seq{i}", f"par{i}"
            times.setdefault(f"{name} seq", []).append(
                wall([str(BIN / "lrlab-train"), "-m", f"optimizer.lr={lrs}", *overrides, f"hydra.sweep.dir={seq_dir}"], cwd))
            if name == "digits 1-epoch":
                fits = [json.loads(p.read_text())["fit_s"] for p in Path(cwd, seq_dir).glob("*/metrics.json")]
                times.setdefault("fit", []).append(statistics.mean(fits))
            times.setdefault(f"{name} par", []).append(
                wall([str(BIN / "lrlab-train"), "-m", f"optimizer.lr={lrs}", *overrides, *joblib,
                      f"hydra.sweep.dir={par_dir}"], cwd))
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {"1-job grid s": med["one"]}
    for name in grids:
        out |= {f"{name}: 6 jobs sequential s": med[f"{name} seq"],
                f"{name}: 6 jobs joblib n_jobs=2 s": med[f"{name} par"],
                f"{name}: joblib / sequential": med[f"{name} par"] / med[f"{name} seq"]}
    out |= {"mean fit s per digits job": med["fit"],
            "per-job overhead s (beyond fit)": (med["digits 1-epoch seq"] - med["one"]) / 5 - med["fit"]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=3, metavar=("VARIANT", "BATCH", "THREADS"))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="batch 256 only, 1 thread (a smoke run)")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    parser.add_argument("--skip-epochs", action="store_true", help="only start-up and multirun figures")
    args = parser.parse_args()
    if args.child:
        variant, batch, threads = args.child
        print(CHILDREN[variant](int(batch), int(threads)))
        return

    configs = [] if args.skip_epochs else [(256, 1)] if args.quick else [(64, 1), (64, 2), (256, 1), (256, 2)]
    epochs: dict[str, list[float]] = {}
    for _ in range(args.reps):
        for batch, threads in configs:
            for variant in CHILDREN:
                epochs.setdefault(f"{variant}|{batch}|{threads}", []).append(run_child(variant, batch, threads))
    rows = []
    for batch, threads in configs:
        raw = statistics.median(epochs[f"raw|{batch}|{threads}"])
        for variant in CHILDREN:
            med = statistics.median(epochs[f"{variant}|{batch}|{threads}"])
            rows.append({"variant": variant, "batch": batch, "threads": threads, "epoch_s": round(med, 3),
                         "ratio_to_raw": round(med / raw, 3)})
    results = {"machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                           "platform": platform.platform()},
               "epoch": rows, "startup_s": startup(args.reps), "multirun": multirun(max(1, args.reps - 1))}
    import torch
    import pytorch_lightning

    results["machine"] |= {"torch": torch.__version__, "pytorch_lightning": pytorch_lightning.__version__}
    args.out.write_text(json.dumps(results, indent=2) + "\n")

    print(f"training epoch {EPOCHS} of {EPOCHS}, {SAMPLES}x{FEATURES} synthetic, MLP 784-128-10, SGD "
          f"(medians of {args.reps})")
    print(f"{'variant':10} {'batch':>5} {'threads':>7} {'epoch s':>8} {'x raw':>6}")
    for r in rows:
        print(f"{r['variant']:10} {r['batch']:>5} {r['threads']:>7} {r['epoch_s']:>8.3f} {r['ratio_to_raw']:>6.2f}")
    print("\nstart-up (whole process, s)")
    for k, v in results["startup_s"].items():
        print(f"  {k:38} {v:6.2f}")
    print("\nmultirun (grids of 6 learning rates)")
    for k, v in results["multirun"].items():
        print(f"  {k:50} {v:6.2f}")
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
