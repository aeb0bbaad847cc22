"""The Real-vs-Pred grid (and its residuals) drawn with matplotlib from the
panels the core lays out: the same panels, titles, axes and layout as the
command line's grid.png."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np


def _y_range(panels: list, residuals: bool) -> Optional[Tuple[float, float]]:
    """The 0.5th..99.5th percentile of every value drawn, plus 5% each side:
    a curve's first points (loss near 11 at step 0) run off the top instead
    of squashing the part worth seeing, as in the command line's picture."""
    vals = []
    for p in panels:
        loss, pred = np.asarray(p["loss"], float), np.asarray(p["pred"], float)
        vals.append(pred - loss if residuals else np.concatenate([loss, pred]))
    v = np.concatenate(vals) if vals else np.array([])
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    lo, hi = np.percentile(v, [0.5, 99.5])
    if residuals:
        m = max(abs(lo), abs(hi)) or 1.0
        return -1.05 * m, 1.05 * m
    span = (hi - lo) or abs(hi) or 1.0
    return lo - 0.05 * span, hi + 0.05 * span


def _schedule(ax, schedule: list) -> None:
    """A run's learning rate in the strip ``ax`` under its curve."""
    s = np.asarray(schedule, float)
    top = np.nanmax(s[:, 1]) if s.size else np.nan
    if not (np.isfinite(top) and top > 0):
        ax.set_axis_off()
        return
    ax.plot(s[:, 0], s[:, 1], "-", lw=0.8, color="0.35", label="LR")
    ax.set_ylim(0.0, 1.1 * top)
    ax.set_yticks([0.0, top])
    ax.set_yticklabels(["0", f"{top:.0e}"])
    ax.tick_params(labelsize=6)
    ax.set_ylabel("LR", fontsize=7)
    ax.grid(True, lw=0.3, alpha=0.5)


def draw(layout: Dict[str, Any], residuals: bool = False, figsize: Optional[Tuple[float, float]] = None):
    """A matplotlib Figure with one axes per panel (curve)."""
    import matplotlib.pyplot as plt

    panels = layout["panels"]
    rows, cols = max(layout["rows"], 1), max(layout["cols"], 1)
    if figsize is None:
        figsize = (3.2 * cols + 0.6, 2.6 * rows + 0.9)
    # Laws along the steps: each curve's learning rate in a strip under it.
    strips = not residuals and any(p.get("schedule") for p in panels)
    if strips:
        figsize = (figsize[0], figsize[1] * 1.3)
        grid = plt.subplots(2 * rows, cols, figsize=figsize, sharex=True, squeeze=False,
                            gridspec_kw={"height_ratios": [3, 1] * rows})[1]
        fig = grid[0][0].figure
        axes, lr_axes = grid[0::2], grid[1::2]
    else:
        fig, axes = plt.subplots(rows, cols, figsize=figsize, sharex=True, sharey=True,
                                 squeeze=False)
    used = set()
    y_range = _y_range(panels, residuals)
    for p in panels:
        r, c = p["row"], p["col"]
        used.add((r, c))
        ax = axes[r][c]
        x = np.asarray(p["x"], float)
        loss = np.asarray(p["loss"], float)
        pred = np.asarray(p["pred"], float)
        held = np.asarray(p["held_out"], bool)
        order = np.argsort(x, kind="stable")
        x, loss, pred, held = x[order], loss[order], pred[order], held[order]
        if residuals:
            res = pred - loss
            ax.axhline(0.0, color="0.4", lw=0.8)
            ax.plot(x[~held], res[~held], ".", ms=2.5, color="tab:blue", label="fitted")
            if held.any():
                ax.plot(x[held], res[held], "x", ms=4, color="tab:red", label="held out")
        else:
            band = p.get("band") or []
            if len(band) == len(order):
                b = np.asarray(band, float)[order]
                ax.fill_between(x, b[:, 0], b[:, 1], color="tab:orange", alpha=0.25, lw=0,
                                label=layout.get("band_label") or "band")
            ax.plot(x[~held], loss[~held], ".", ms=2.5, color="tab:blue", alpha=0.6, label="Real")
            if held.any():
                ax.plot(x[held], loss[held], "x", ms=4, color="tab:red", label="Real (held out)")
            ax.plot(x, pred, "-", lw=1.4, color="tab:orange", label="Pred")
            if strips:
                _schedule(lr_axes[r][c], p.get("schedule") or [])
        ax.set_title(p["title"], fontsize=9)
        if layout.get("x_scale") == "log":
            ax.set_xscale("log")
        if y_range is not None:
            ax.set_ylim(*y_range)
        ax.grid(True, lw=0.3, alpha=0.5)
    for r in range(rows):
        for c in range(cols):
            if (r, c) not in used:
                fig.delaxes(axes[r][c])
                if strips:
                    fig.delaxes(lr_axes[r][c])
    title = layout.get("title") or "Real vs Pred"
    if residuals:
        title = title.replace("Real vs Pred", "Residuals (pred − loss)", 1)
    fig.suptitle(title)
    fig.supxlabel(layout.get("x_label") or "x")
    fig.supylabel("pred − loss" if residuals else "loss")
    handles, labels = [], []
    for ax in fig.axes:
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in labels:
                handles.append(h)
                labels.append(l)
    if handles:
        fig.legend(handles, labels, loc="upper right", fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig
