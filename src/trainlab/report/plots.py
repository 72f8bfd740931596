"""Figures for reports. Each function takes plain arrays (no computation beyond layout) and
returns a matplotlib figure; the Agg backend is used so no display is needed."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

Series = tuple[np.ndarray, np.ndarray]


def _finite(s: Series) -> Series:
    steps, values = s
    keep = np.isfinite(values)
    return steps[keep], values[keep]


def curves(panels: list[tuple[str, dict[str, Series], bool]], *, width: float = 5.0) -> Figure:
    """Side-by-side panels; each is (title, {label: (steps, values)}, log-y)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels), 3.4), squeeze=False)
    for ax, (title, series, logy) in zip(axes[0], panels):
        for label, s in series.items():
            steps, values = _finite(s)
            if len(steps):
                # run names are the user's text: a "$" is a dollar sign, not mathtext
                ax.plot(steps, values, label=label.replace("$", r"\$"), lw=1.3)
        ax.set_title(title)
        ax.set_xlabel("step")
        if logy and any(np.any(_finite(s)[1] > 0) for s in series.values()):
            ax.set_yscale("log")
        if len(series) > 1:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def heatmap(steps: np.ndarray, rows: dict[str, np.ndarray], title: str, *, log: bool = True
            ) -> Figure:
    """One row per layer (name -> values at ``steps``), colour = value (log10 if ``log``)."""
    names = list(rows)
    data = np.vstack([rows[n] for n in names])
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            data = np.log10(np.where(data > 0, data, np.nan))
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(names) + 1.6))
    extent = (float(steps[0]), float(steps[-1]) if len(steps) > 1 else float(steps[0]) + 1,
              len(names) - 0.5, -0.5)
    im = ax.imshow(data, aspect="auto", interpolation="nearest", extent=extent, cmap="viridis")
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xlabel("step")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="log10" if log else "")
    fig.tight_layout()
    return fig


def sharpness(steps: np.ndarray, values: np.ndarray, lr_steps: np.ndarray, lr: np.ndarray,
              label: str = "sharpness") -> Figure:
    """Sharpness with the 2/lr stability threshold of gradient descent."""
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    s, v = _finite((steps, values))
    ax.plot(s, v, marker=".", lw=1.3, label=label)
    with np.errstate(divide="ignore"):
        thr = np.where(lr > 0, 2.0 / lr, np.nan)
    ax.plot(lr_steps, thr, ls="--", color="k", lw=1, label="2 / lr")
    if len(v) and np.all(v > 0):  # log scale keeps both the curve and 2/lr in view
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title("sharpness vs the 2/lr edge of stability")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
