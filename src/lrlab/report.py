"""``lrlab-report``: turn a folder of runs (a sweep, or all of outputs/) into a table, plots and a verdict.

Reads every run's metrics.json, composed config (.hydra/) and TensorBoard scalars, finds by itself which
config keys vary across the runs, and writes ``report/`` into the folder: report.md, summary.csv and PNG plots.
An earlier report is kept (renamed ``report-<time>``), never overwritten.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from lrlab.paths import ATTEMPTS_DIR, RECORD_NAME

LR_KEY = "optimizer.lr"
REPORT_DIR = "report"


@dataclass
class Run:
    dir: Path
    config: dict[str, Any]           # flattened composed config (dotted keys, interpolations unresolved)
    choices: dict[str, str]          # config group -> option, from Hydra's record
    record: dict[str, Any]           # metrics.json
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # "val/loss", "lr": [(step, value)]

    @property
    def status(self) -> str:
        return self.record.get("status", "unknown")

    def setting(self, key: str) -> Any:
        return self.choices[key] if key in self.choices else self.config.get(key)


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out |= _flatten(value, f"{prefix}{key}.")
        return out
    return {prefix[:-1]: node if not isinstance(node, list) else str(node)}


def _curves(run_dir: Path, record: dict[str, Any]) -> dict[str, list[tuple[int, float]]]:
    """val/loss and the LR per step from TensorBoard; metrics.json's per-epoch history when there are no events."""
    curves: dict[str, list[tuple[int, float]]] = {}
    if any(run_dir.glob("events.out.tfevents.*")):
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
        events.Reload()
        tags = events.Tags()["scalars"]
        lr_tags = sorted(t for t in tags if t.startswith("lr-"))
        for name, tag in (("val/loss", "val/loss"), ("lr", lr_tags[0] if lr_tags else None)):
            if tag in tags:
                curves[name] = [(e.step, e.value) for e in events.Scalars(tag)]
    history = record.get("history", [])
    for name in ("val/loss", "lr"):
        if name not in curves and any(name in row for row in history):
            curves[name] = [(row["epoch"], row[name]) for row in history if name in row]
    return curves


def find_runs(root: Path) -> tuple[list[Run], list[tuple[Path, str]]]:
    """Every run below ``root`` and what was skipped (with why)."""
    candidates = {p.parent for p in root.rglob(RECORD_NAME)} | {p.parent.parent for p in root.rglob(".hydra/config.yaml")}
    runs, skipped = [], []
    for run_dir in sorted(candidates):
        if any(part.startswith(REPORT_DIR) or part == ATTEMPTS_DIR for part in run_dir.relative_to(root).parts):
            continue
        record_path, config_path = run_dir / RECORD_NAME, run_dir / ".hydra" / "config.yaml"
        if not record_path.exists():
            skipped.append((run_dir, f"no {RECORD_NAME}: the run never reached training (or its dir was emptied)"))
            continue
        try:
            record = json.loads(record_path.read_text())
        except json.JSONDecodeError as err:
            skipped.append((run_dir, f"unreadable {RECORD_NAME} ({err})"))
            continue
        if not config_path.exists():
            skipped.append((run_dir, "no .hydra/config.yaml: the run's settings are unknown"))
            continue
        config = _flatten(OmegaConf.to_container(OmegaConf.load(config_path), resolve=False))
        hydra_path = run_dir / ".hydra" / "hydra.yaml"
        choices = {}
        if hydra_path.exists():
            raw = OmegaConf.to_container(OmegaConf.load(hydra_path).hydra.runtime.choices, resolve=False)
            choices = {k: str(v) for k, v in raw.items() if not k.startswith("hydra/")}
        runs.append(Run(run_dir, config, choices, record, _curves(run_dir, record)))
    return runs, skipped


def varying_keys(runs: list[Run]) -> list[str]:
    """Group choices and config keys whose values differ across the runs.

    Keys that only follow a varying group choice (``scheduler._target_`` when ``scheduler`` varies) are left out.
    """
    if len(runs) < 2:
        return []
    group_keys = sorted({k for r in runs for k in r.choices})
    varying_groups = [g for g in group_keys if len({r.choices.get(g) for r in runs}) > 1]
    shared = set.intersection(*(set(r.config) for r in runs)) - {"output_dir"}
    keys = list(varying_groups)
    for key in sorted(shared):
        if len({str(r.config[key]) for r in runs}) < 2:
            continue
        group = key.split(".", 1)[0]
        if group in varying_groups:
            by_choice = defaultdict(set)
            for r in runs:
                by_choice[r.choices.get(group)].add(str(r.config[key]))
            if all(len(values) == 1 for values in by_choice.values()):
                continue  # implied by the group choice
        keys.append(key)
    return keys


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _metric_columns(runs: list[Run]) -> list[str]:
    return sorted({m for r in runs for m in r.record.get("best", {})} | {m for r in runs for m in r.record.get("final", {})
                                                                        if m.startswith("val/")})


def rows(runs: list[Run], keys: list[str]) -> list[dict[str, Any]]:
    metrics = _metric_columns(runs)
    table = []
    for i, r in enumerate(runs):
        row: dict[str, Any] = {"run": i}
        row |= {k: r.setting(k) for k in keys}
        row["status"] = r.status
        for m in metrics:
            row[f"{m} final"] = r.record.get("final", {}).get(m)
            row[f"{m} best"] = r.record.get("best", {}).get(m, {}).get("value")
        row |= {"epochs": r.record.get("epochs"), "time s": r.record.get("wall_time_s")}
        row["dir"] = r.dir.name
        table.append(row)
    return table


def best_run(runs: list[Run]) -> Run | None:
    scored = [r for r in runs if r.status == "completed" and r.record.get("objective", {}).get("value") is not None]
    if not scored:
        return None
    mode = scored[0].record["objective"].get("mode", "max")
    return (max if mode == "max" else min)(scored, key=lambda r: r.record["objective"]["value"])


def text_table(table: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [[_fmt(row.get(c)) for c in columns] for row in table]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def _label(run: Run, keys: list[str]) -> str:
    return ", ".join(f"{k}={_fmt(run.setting(k))}" for k in keys) or run.dir.name


def plot(runs: list[Run], keys: list[str], out: Path) -> list[str]:
    """The PNGs: objective vs LR (one line per setting of the other varying keys), val/loss and LR curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    objective = next((r.record["objective"]["metric"] for r in runs if r.record.get("objective")), "val/acc")
    others = [k for k in keys if k != LR_KEY]
    if LR_KEY in keys or all(r.config.get(LR_KEY) is not None for r in runs):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        groups = defaultdict(list)
        diverged_labelled = False
        for r in runs:
            groups[tuple(_fmt(r.setting(k)) for k in others)].append(r)
        for group, members in sorted(groups.items()):
            members.sort(key=lambda r: float(r.config[LR_KEY]))
            ok = [r for r in members if r.status != "diverged" and objective in r.record.get("final", {})]
            label = ", ".join(f"{k}={v}" for k, v in zip(others, group)) or "runs"
            line, = ax.plot([float(r.config[LR_KEY]) for r in ok], [r.record["final"][objective] for r in ok],
                            marker="o", label=label)
            bad = [r for r in members if r.status == "diverged"]
            if bad:  # drawn at 0: a diverged run has no meaningful final metric
                ax.scatter([float(r.config[LR_KEY]) for r in bad], [0.0] * len(bad), marker="x", s=80,
                           color=line.get_color(), label=None if diverged_labelled else "diverged (x, drawn at 0)")
                diverged_labelled = True
        ax.set(xscale="log", xlabel="learning rate (optimizer.lr)", ylabel=f"final {objective}",
               title=f"final {objective} vs learning rate")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "metric_vs_lr.png", dpi=110)
        plt.close(fig)
        made.append("metric_vs_lr.png")
    for name, file, ylabel, log_y in (("val/loss", "val_loss.png", "validation loss", True),
                                      ("lr", "lr.png", "learning rate", True)):
        curves = [(r, r.curves[name]) for r in runs if r.curves.get(name)]
        if not curves:
            continue
        fig, ax = plt.subplots(figsize=(8, 4.5))
        if len(curves) > 10:
            ax.set_prop_cycle(color=plt.cm.tab20.colors)
        for r, points in curves:
            finite = [(s, v) for s, v in points if math.isfinite(v)]
            ax.plot([s for s, _ in finite], [v for _, v in finite], label=_label(r, keys), marker="." if len(finite) < 3 else None,
                    linestyle="--" if r.status == "diverged" else "-")
        healthy = [v for r, points in curves if r.status != "diverged" for _, v in points if math.isfinite(v) and v > 0]
        if healthy and name == "val/loss":  # diverged runs' losses (1e6 and up) would flatten every other curve
            ax.set_ylim(min(healthy) / 1.5, max(healthy) * 3)
        ax.set(xlabel="step", ylabel=ylabel, title=f"{ylabel} per run", yscale="log" if log_y else "linear")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
        fig.tight_layout()
        fig.savefig(out / file, dpi=110, bbox_inches="tight")
        plt.close(fig)
        made.append(file)
    return made


def _command(run: Run) -> str:
    return "lrlab-train " + " ".join(run.record.get("overrides") or [])


def _fresh_report_dir(root: Path) -> Path:
    out = root / REPORT_DIR
    if out.exists():
        stamp = datetime.fromtimestamp(out.stat().st_mtime).strftime("%Y-%m-%d_%H-%M-%S")
        keep, n = root / f"{REPORT_DIR}-{stamp}", 0
        while keep.exists():
            n += 1
            keep = root / f"{REPORT_DIR}-{stamp}-{n}"
        out.rename(keep)
    out.mkdir()
    return out


def write_report(root: Path) -> tuple[Path, str]:
    """Write ``root/report/``; return its path and the terminal text."""
    runs, skipped = find_runs(root)
    if not runs:
        why = f" (skipped {len(skipped)}: {skipped[0][1]})" if skipped else ""
        raise SystemExit(f"lrlab-report: error: no runs with {RECORD_NAME} under {root}{why}: point it at a sweep dir "
                         "or outputs/")
    keys = varying_keys(runs)
    table = rows(runs, keys)
    columns = ["run", *keys, "status", *[c for c in table[0] if c.endswith((" final", " best"))], "epochs", "time s"]
    out = _fresh_report_dir(root)
    with open(out / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    plots = plot(runs, keys, out)

    counts = Counter(r.status for r in runs)
    head = f"{len(runs)} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    best = best_run(runs)
    lines = [f"# Sweep report: {root}", "", head + (f"; skipped {len(skipped)}" if skipped else "") + ".", "",
             f"Varying keys: {', '.join(f'`{k}`' for k in keys) or 'none'}.", ""]
    if best:
        obj = best.record["objective"]
        lines += ["## Best run", "", f"Run {runs.index(best)} (`{best.dir.name}`): best {obj['metric']} = "
                  f"{obj['value']:.4g} ({obj['mode']}).", "", "```", _command(best), "```", ""]
    lines += ["## All runs", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(row.get(c)) for c in columns) + " |" for row in table]
    bad = [(i, r) for i, r in enumerate(runs) if r.status in ("diverged", "failed", "interrupted", "running")]
    if bad:
        lines += ["", "## Diverged, failed and unfinished runs", ""]
        for i, r in bad:
            detail = r.record.get("error") or ""
            if r.status == "diverged" and r.record.get("diverged"):
                d = r.record["diverged"]
                detail = f"loss {_fmt(d.get('loss'))} at step {d.get('step')}"
            lines.append(f"- run {i} ({_label(r, keys)}): **{r.status}** {detail}".rstrip())
    if skipped:
        lines += ["", "## Skipped", ""] + [f"- `{p.relative_to(root)}`: {why}" for p, why in skipped]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    (out / "report.md").write_text("\n".join(lines) + "\n")

    terminal = [head, text_table(table, columns)]
    if best:
        terminal.append(f"best: run {runs.index(best)}: {_command(best)}")
    terminal += [f"skipped {p}: {why}" for p, why in skipped]
    terminal.append(f"report: {out / 'report.md'}  (summary.csv, {', '.join(plots)})")
    return out, "\n".join(terminal)


def _latest_sweep(outputs: Path) -> Path | None:
    sweeps = sorted((outputs / "multirun").glob("*"), key=lambda p: p.stat().st_mtime) if (outputs / "multirun").is_dir() else []
    return sweeps[-1] if sweeps else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="lrlab-report", description=__doc__.splitlines()[0])
    parser.add_argument("dir", nargs="?", type=Path,
                        help="a sweep dir (outputs/multirun/<time>) or any folder of runs; default: the newest sweep")
    args = parser.parse_args(argv)
    root = args.dir or _latest_sweep(Path("outputs"))
    if root is None or not root.is_dir():
        sys.exit(f"lrlab-report: error: {root or 'outputs/multirun'} is not a directory: pass a sweep dir or outputs/")
    _, text = write_report(root.resolve())
    print(text)


if __name__ == "__main__":
    main()
