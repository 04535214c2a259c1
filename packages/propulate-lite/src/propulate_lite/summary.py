"""Summaries of a checkpoint folder: a table of the best individuals and a loss-over-time plot."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from . import checkpoint as ckpt
from .population import Individual


def load_history(path: str | Path) -> list[Individual]:
    """Every evaluated individual in the checkpoint folder, in order of finishing time."""
    path = Path(path)
    if not path.is_dir() or not ckpt.existing_files(path):
        raise ValueError(f"CHECKPOINT {str(path)!r} is not a propulate-lite checkpoint folder")
    _, individuals, _ = ckpt.read_records(path)
    return sorted(individuals, key=lambda i: i.timestamp)


def summary_table(history: list[Individual], top_n: int = 5) -> str:
    """Per island: evaluations, failures, cancellations, best loss; then the overall top n."""
    lines = ["island  evaluations  failed  cancelled  best loss", "-" * 50]
    for island in sorted({i.island for i in history}):
        inds = [i for i in history if i.island == island]
        good = [i.loss for i in inds if not i.failed]
        best = min(good) if good else math.nan
        failed = sum(i.failed for i in inds)
        cancelled = sum(i.cancelled for i in inds)
        lines.append(f"{island:6d}  {len(inds):11d}  {failed:6d}  {cancelled:9d}  {best:.6g}")
    ranked = sorted((i for i in history if not i.failed), key=lambda i: i.loss)[:top_n]
    lines += ["", f"top {len(ranked)}:"]
    for place, ind in enumerate(ranked, 1):
        lines.append(f"{place:3d}. loss {ind.loss:.6g}  island {ind.island}  {dict(ind)}")
    return "\n".join(lines)


def plot_loss_over_time(history: list[Individual], out: str | Path) -> Path:
    """Each evaluation's loss and the running best against wall time, one colour per island."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    start = min(i.timestamp for i in history)
    fig, ax = plt.subplots(figsize=(7, 4))
    for island in sorted({i.island for i in history}):
        inds = [i for i in history if i.island == island and not i.failed]
        if not inds:
            continue
        t = np.array([i.timestamp - start for i in inds])
        loss = np.array([i.loss for i in inds])
        points = ax.scatter(t, loss, s=6, alpha=0.35, label=f"island {island}")
        ax.plot(t, np.minimum.accumulate(loss), color=points.get_facecolor()[0][:3], lw=1.5)
    finite = [i.loss for i in history if not i.failed]
    if finite and min(finite) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("loss (dots) and best so far (line)")
    ax.legend()
    fig.tight_layout()
    tmp = out.with_name(out.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, out)
    return out
