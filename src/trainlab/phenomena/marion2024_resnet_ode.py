"""A deep residual network initialized as the discretization of a neural ODE stays one during
training: the difference between neighbouring layers' weights stays O(1/L) (Marion, Wu,
Sander & Biau, "Implicit regularization of deep residual networks towards neural ODEs",
ICLR 2024; papers.md row 79)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import nn

from trainlab.optim import build_optimizer
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon, map_runs, seed_summary


class _ODEResNet(nn.Module):
    r"""``h_{k+1} = h_k + (1/L) GELU(h_k W_k) V_k`` for k < L on ``h_0 = x``, with ``W`` of
    shape ``(L, d, M)`` and ``V`` of shape ``(L, M, d)``: the explicit Euler scheme of the
    neural ODE :math:`\dot h = V(s)\,\mathrm{GELU}(W(s) h)`.

    Minimal model kept here: the paper's 1/L-scaled residual form with a one-hidden-layer
    MLP branch is not the ``resnet`` model of ``trainlab.models`` (post-ReLU Fixup blocks
    without depth scaling)."""

    def __init__(self, w: torch.Tensor, v: torch.Tensor):
        super().__init__()
        self.w, self.v = nn.Parameter(w), nn.Parameter(v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        depth = self.w.shape[0]
        h = x
        for k in range(depth):
            h = h + nn.functional.gelu(h @ self.w[k]) @ self.v[k] / depth
        return h


def max_neighbour_difference(weights: torch.Tensor) -> float:
    """``max_k ||Z_{k+1} - Z_k||_F`` over the depth axis (dimension 0) of ``weights``."""
    if weights.shape[0] < 2:
        return 0.0
    return (weights[1:] - weights[:-1]).flatten(1).norm(dim=1).max().item()


def loglog_slope(depths: Any, values: Any) -> tuple[float, float]:
    """Least-squares slope of ``log values`` against ``log depths`` and its 95% confidence
    half-width (Student t on the slope's standard error)."""
    fit = stats.linregress(np.log(depths), np.log(values))
    t = stats.t.ppf(0.975, len(depths) - 2) if len(depths) > 2 else math.inf
    return float(fit.slope), float(t * fit.stderr)


class ResNetStaysODE(Phenomenon):
    """The paper's Fig. 1 experiment (setting read from the authors' code,
    ``finite_training_time_lipschitz.py`` of michaelsdr/implicit-regularization-resnets-nodes):
    :class:`_ODEResNet` with d = 16, M = 32, GELU; n = 100 Gaussian inputs with independent
    Gaussian targets in R^16, mean squared error; init ``V_k = 0`` and ``W_k = W`` one
    N(0, 1) matrix repeated at every layer (the discretization of a constant, hence smooth,
    ODE); full-batch gradient descent with lr ``0.01 L`` for 50 steps (the code's default
    budget); float64. The measured quantity is the paper's: ``max_{k,t} ||Z_{k+1}(t) -
    Z_k(t)||_F`` over both weight families Z in {V, W}, layers k and steps t, against the
    depth L on log-log axes. Depths L = 16, 64, 256 (the paper: 2, 16, 64, 256, 1014),
    3 seeds (data and W); quick: L = 4, 16, 64, one seed.

    Pass criterion (the paper's Fig. 1 and its finite-training-time theorem: the maximal
    neighbour difference is O(1/L), a line of slope -1 on the figure's log-log axes;
    written before running): (a) the log-log slope of the max difference against L is within
    0.2 of -1 (mean over seeds, with its half-range over seeds < 0.2; the 95% confidence
    half-width of each fit is reported); (b) a control with i.i.d. N(0, 1) ``W_k`` (not an
    ODE discretization, same V = 0) has a slope >= -0.2: its differences are O(1), so the
    measure can fail; (c) every run trains: the final loss is below the initial one.

    Why the check measures the claim: the claim is that training does not break the
    smoothness in depth that the init has; with ``V = 0`` and identical ``W_k`` every
    neighbour difference is exactly 0 at init, so all measured differences are created by
    training, and a slope of -1 is the O(1/L) law itself, not a property of the init.

    Result: before issue 12 a smooth random multi-frequency init with tanh and 300 steps
    gave a ratio 0.63 between L = 16 and 64 (FAIL); that setting was not the paper's and is
    replaced by the paper's init and budget here. With it, full mode at L = 16, 64, 256,
    1024 and 3 seeds: PASS, slope -1.002 +- 0.0006 (half-range over seeds; the paper's -1),
    i.i.d. control +0.009, every run's loss falls (largest final/initial 0.74). That run
    took about 11 minutes of one core (45 min wall on the shared machine), over the 10-minute
    budget, so full mode now stops at L = 256 (quick mode's L = 4-64 gives -1.03, L = 8-128
    gave -1.01; the depth range was cut for time after the PASS, not for the verdict). Full
    mode at L = 16, 64, 256, 3 seeds (52 s, the 18 runs one after another in one process):
    PASS, slope -1.003 +- 0.0008, control +0.011. Full mode now runs the 18 self-contained
    (seed, depth, init) runs (:func:`depth_run`) in 2 worker processes, so about half a
    minute on 2 idle cores (52 s / 2 plus a few seconds of process start); the numbers are
    unchanged: the per-run code is the same, and a test checks that 2 processes give exactly
    (==) the serial numbers. Quick mode stays in one process (~1.5 s; 2 workers cost more
    to start).

    Deviations: 50 steps (the paper's code default, also its figure); depths up to 256
    instead of 1014; seeds drawn from ``torch.Generator`` instead of the code's global seed 2.
    """

    name = "resnet-stays-ode"
    papers = (79,)
    claim = ("A deep residual network with 1/L-scaled branches initialized as the "
             "discretization of a neural ODE keeps neighbouring layers' weights O(1/L) apart "
             "throughout training, i.e. stays a neural ODE.")
    paper_figure = "Fig. 1 (max_{k,t} ||Z_{k+1} - Z_k|| against L, log-log, slope -1)"
    scale_downs = ("depths 16-256 (the paper: 2-1014)", "3 seeds",
                   "quick: depths 4-64, one seed")

    D, M, N, STEPS = 16, 32, 100, 50

    FULL_WORKERS = 2  # full mode's budget is 2 cores; each (seed, depth, init) run is apart

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        depths = (4, 16, 64) if quick else (16, 64, 256)
        seeds = [seed] if quick else [seed + 100 * i for i in range(3)]
        jobs = {f"{init}@{depth}@{sd}": (sd, depth, init)
                for sd in seeds for depth in depths for init in ("ode", "iid")}
        runs = map_runs(depth_run, jobs, processes=1 if quick else self.FULL_WORKERS)
        return {"depths": list(depths), "seeds": seeds, "runs": runs}

    def slopes(self, data: dict[str, Any], init: str) -> list[tuple[float, float]]:
        """Per seed: the log-log slope of the max difference against L and its 95% CI."""
        return [loglog_slope(data["depths"], [data["runs"][f"{init}@{d}@{sd}"]["max_diff"]
                                              for d in data["depths"]])
                for sd in data["seeds"]]

    def check(self, data: dict[str, Any]) -> list[Check]:
        ode, iid = self.slopes(data, "ode"), self.slopes(data, "iid")
        slope, spread, n = seed_summary([s for s, _ in ode])
        ci = max(c for _, c in ode)
        ok_spread = n == 1 or spread < 0.2
        iid_slope, iid_spread, _ = seed_summary([s for s, _ in iid])
        worst = max(r["loss_ratio"] for r in data["runs"].values())
        return [
            Check("ODE init: log-log slope of max_{k,t} ||Z_k+1 - Z_k|| vs L", slope,
                  f"in [-1.2, -0.8] (paper: -1), half-range over seeds < 0.2 "
                  f"(largest 95% CI half-width of a fit: {ci:.2g})",
                  -1.2 <= slope <= -0.8 and ok_spread, spread, n),
            Check("i.i.d. init (control): the same slope", iid_slope, ">= -0.2 (O(1))",
                  iid_slope >= -0.2, iid_spread, n),
            Check("largest final / initial loss", worst, "< 1 (every run trains)", worst < 1),
        ]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        depths = np.array(data["depths"], dtype=float)
        fig, ax = plt.subplots(figsize=(4.8, 3.4))
        for c, (init, marker) in enumerate((("ode", "o"), ("iid", "s"))):
            for i, sd in enumerate(data["seeds"]):
                ax.plot(depths, [data["runs"][f"{init}@{d}@{sd}"]["max_diff"]
                                 for d in data["depths"]], marker + "-", color=f"C{c}",
                        alpha=0.8, label=init if i == 0 else None)
        ref = data["runs"][f"ode@{data['depths'][0]}@{data['seeds'][0]}"]["max_diff"]
        ax.plot(depths, ref * depths[0] / depths, "k--", lw=0.8, label="1/L (paper's slope)")
        ax.set(xscale="log", yscale="log", xlabel="depth L",
               ylabel="max_{k,t} ||Z_k+1 - Z_k||_F")
        ax.legend(fontsize=7)
        return fig


def depth_run(sd: int, depth: int, init: str) -> dict[str, float]:
    """One self-contained run (the job that full mode's worker processes run): seed ``sd``'s
    data (inputs, then targets, from ``torch.Generator().manual_seed(sd)``) and ``W`` (from
    ``torch.Generator().manual_seed(sd + 1)``: the same ``W`` at every depth), trained at
    ``depth`` from the ``"ode"`` init (``W`` repeated) or the ``"iid"`` control. Returns the
    max neighbour difference over steps and weight families, and final / initial loss."""
    c = ResNetStaysODE
    g = torch.Generator().manual_seed(sd)
    x = torch.randn(c.N, c.D, generator=g, dtype=torch.float64)
    y = torch.randn(c.N, c.D, generator=g, dtype=torch.float64)
    gw = torch.Generator().manual_seed(sd + 1)
    if init == "ode":
        w = torch.randn(c.D, c.M, generator=gw, dtype=torch.float64).repeat(depth, 1, 1)
    else:
        w = torch.randn(depth, c.D, c.M, generator=gw, dtype=torch.float64)
    model = _ODEResNet(w, torch.zeros(depth, c.M, c.D, dtype=torch.float64))
    opt = build_optimizer("sgd", model.parameters(), lr=0.01 * depth)
    worst, first = 0.0, None
    for _ in range(c.STEPS + 1):
        worst = max(worst, max_neighbour_difference(model.w.detach()),
                    max_neighbour_difference(model.v.detach()))
        opt.zero_grad()
        loss = (model(x) - y).pow(2).mean()
        first = loss.item() if first is None else first
        loss.backward()
        opt.step()  # the step after the last measurement is never used
    return {"max_diff": worst, "loss_ratio": loss.item() / first}


PHENOMENA.register("resnet-stays-ode", ResNetStaysODE, papers=(79,), reproduces=True,
                   summary="ODE-initialized 1/L ResNet keeps O(1/L) layer differences in training")
