"""Deep linear networks learn each singular mode on a sigmoid, and orthogonal initialization
makes learning time (nearly) depth-independent (Saxe, McClelland & Ganguli, "Exact solutions
to the nonlinear dynamics of learning in deep linear neural networks", ICLR 2014; papers.md
row 1)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from trainlab.init import apply as init_apply
from trainlab.models import build_model
from trainlab.optim import build_optimizer
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon
from trainlab.tasks import build_task
from trainlab.theory import mode_strength, mode_strength_discrete


def _linear_layers(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


class SaxeSigmoids(Phenomenon):
    """Gradient descent on a two-layer linear network from a decoupled initialization follows
    the closed-form sigmoid of every mode.

    Setup (the notes' A1 setting, validated in numpy beforehand): ``teacher-linear`` task with
    N = 16 inputs and outputs, singular values (4, 3, 2, 1), exactly whitened training inputs;
    a ``deep-linear`` model with one hidden layer of 16 units, initialized with the
    ``decoupled`` scheme of ``trainlab.init`` (``W1 = R sqrt(u0) V^T``, ``W2 = U sqrt(u0) R^T``,
    R random orthogonal) at u0 = 1e-4; full-batch SGD at lr 1e-3 (tau = 1000 steps) in
    float64. The mode strengths ``u_a = (U^T W2 W1 V)_aa`` are compared with
    :func:`trainlab.theory.mode_strength` (gradient flow) and with the exact discrete map.
    A small random init (std 1e-3) is run as well, for the figure: its transitions lag the
    decoupled ones.

    Pass criterion (from the paper's claim and the issue's tolerance, fixed before running):
    ``max_t |u_sim - u_theory| / s <= 0.01`` for every mode (gradient flow vs GD at lr 1e-3:
    the discretization error is O(lr s), well below 1%); against the exact discrete map the
    error must be below 1e-6 (float64 round-off); the half-times (u = s/2) must be ordered
    as 1/s (within 2% of the closed form).
    Training uses 64 samples, which the exact whitening makes equivalent to any other number.
    Quick mode: the same, without the random-init run (it only feeds the figure).
    """

    name = "saxe-sigmoids"
    papers = (1,)
    claim = ("From a decoupled small initialization, each singular mode of a deep linear "
             "network is learned on the closed-form sigmoid u(t) = s e^{2st/tau} / "
             "(e^{2st/tau} - 1 + s/u0), stronger modes first.")

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        n, lr, u0 = 16, 1e-3, 1e-4
        s = (4.0, 3.0, 2.0, 1.0)
        steps = 7000
        task = build_task("teacher-linear", in_dim=n, out_dim=n, singular_values=s,
                          n_train=64, n_test=64, data_seed=seed).to(torch.float64)
        uu, vv = task.info["U"], task.info["V"]
        g = torch.Generator().manual_seed(seed)
        curves = {}
        for init in ("decoupled",) if quick else ("decoupled", "random"):
            model = build_model("deep-linear", (n,), n, depth=1, width=n).double()
            w1, w2 = _linear_layers(model)
            if init == "decoupled":
                init_apply(model, "decoupled", batch=(task.x_train, task.y_train), generator=g,
                           mode_strength=u0)
            else:
                with torch.no_grad():
                    w1.weight.normal_(0, 1e-3, generator=g)
                    w2.weight.normal_(0, 1e-3, generator=g)
            opt = build_optimizer("sgd", model.parameters(), lr=lr)
            traj = np.empty((steps + 1, len(s)))
            for k in range(steps + 1):
                with torch.no_grad():
                    total = w2.weight @ w1.weight
                    traj[k] = torch.diagonal(uu.T @ total @ vv)[: len(s)].numpy()
                if k == steps:
                    break
                opt.zero_grad()
                task.loss(model(task.x_train), task.y_train).backward()
                opt.step()
            curves[init] = traj
        t = np.arange(steps + 1)
        flow = np.stack([mode_strength(t, si, u0, tau=1 / lr) for si in s], axis=1)
        discrete = np.stack([mode_strength_discrete(steps, si, u0, lr) for si in s], axis=1)
        return {"t": t, "s": np.array(s), "u0": u0, "lr": lr, "decoupled": curves["decoupled"],
                "random": curves.get("random"), "flow": flow, "discrete": discrete}

    def check(self, data: dict[str, Any]) -> list[Check]:
        s, sim, t = data["s"], data["decoupled"], data["t"]
        err_flow = float(np.max(np.abs(sim - data["flow"]) / s))
        err_disc = float(np.max(np.abs(sim - data["discrete"]) / s))
        # half-time of each mode, simulated vs closed form t = (tau/2s) ln((s - u0)/u0)
        tau, u0 = 1 / data["lr"], data["u0"]
        rel = []
        for a, si in enumerate(s):
            t_sim = float(np.interp(si / 2, sim[:, a], t))
            t_th = tau / (2 * si) * math.log((si - u0) / u0)
            rel.append(abs(t_sim - t_th) / t_th)
        return [
            Check("max |u_gd - u_flow| / s", err_flow, "<= 0.01 (issue: 1% of s)",
                  err_flow <= 0.01),
            Check("max |u_gd - u_exact_map| / s", err_disc, "<= 1e-6 (float64 round-off)",
                  err_disc <= 1e-6),
            Check("max rel. error of half-times", max(rel), "<= 0.02", max(rel) <= 0.02),
        ]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.6))
        for a, si in enumerate(data["s"]):
            ax.plot(data["t"], data["decoupled"][:, a], color=f"C{a}", label=f"s = {si:g} (GD)")
            ax.plot(data["t"], data["flow"][:, a], "k--", lw=0.8)
            if data["random"] is not None:
                ax.plot(data["t"], data["random"][:, a], color=f"C{a}", ls=":", lw=1)
        ax.set(xlabel="step", ylabel="mode strength u", title="dashed: theory; dotted: "
               "random small init")
        ax.legend(fontsize=7)
        return fig


class SaxeDepth(Phenomenon):
    """With random orthogonal initialization a deep linear network learns in a number of
    steps that barely grows with depth; with scaled-Gaussian init (std 1/sqrt(N)) it slows
    down and then fails as depth grows.

    Setup (the notes' B1 setting, validated in numpy beforehand): target A ~ N(0, 1/N),
    N = 32, whitened inputs (x = sqrt(N) e_i, so the task loss is 0.5 ||A - W_L...W_1||_F^2),
    ``deep-linear`` models of depth D weight matrices, ``orthogonal`` vs ``xavier-normal``
    (std 1/sqrt(N) for square layers) from ``trainlab.init``, full-batch SGD. For each depth
    the best learning rate of a fixed grid is used; learning time = steps until the loss is
    below 1e-3 of its initial value (capped at 3000; a run that is never below is "fail").

    Pass criterion (the notes' B1 criterion, written before running here): orthogonal
    converges at every depth; at depth 4 Gaussian takes >= 3x the steps of orthogonal; and
    Gaussian fails (within the cap) at depth >= 8.
    Quick mode: depths (2, 4, 8) and the learning rates (0.2, 0.1, 0.05) instead of 9.

    Result: reported FAIL (``reproduces=False``). Orthogonal init converges at every depth up
    to 32 (24, 56, 168, 318, 386 steps: growth flattens with depth) and Gaussian init fails
    from depth 8 on, as the paper says; but at depth 4 Gaussian needs 165 steps against 56,
    a ratio of 2.95, just short of the pre-registered 3 (the numpy run behind the notes gave
    3.8 with a different target draw). The threshold was not moved after seeing this.
    """

    name = "saxe-depth"
    papers = (1,)
    claim = ("Random orthogonal initialization gives deep linear networks learning times "
             "that stay finite as depth grows, while scaled-Gaussian initialization slows "
             "down sharply with depth.")

    CAP = 3000

    def _steps_to_fit(self, depth: int, init: str, lr: float, target: torch.Tensor,
                      seed: int) -> int | None:
        n = target.shape[0]
        model = build_model("deep-linear", (n,), n, depth=depth - 1, width=n).double()
        init_apply(model, init, generator=torch.Generator().manual_seed(seed))
        x = math.sqrt(n) * torch.eye(n, dtype=torch.float64)
        y = x @ target.T
        opt = build_optimizer("sgd", model.parameters(), lr=lr)
        first = None
        for k in range(self.CAP + 1):
            opt.zero_grad()
            loss = 0.5 * (model(x) - y).pow(2).sum(1).mean()
            value = loss.item()
            if first is None:
                first = value
            if value < 1e-3 * first:
                return k
            if not math.isfinite(value) or value > 1e6 * first:
                return None
            loss.backward()
            opt.step()
        return None

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        n = 32
        depths = (2, 4, 8) if quick else (2, 4, 8, 16, 32)
        lrs = ((0.2, 0.1, 0.05) if quick
               else (0.3, 0.2, 0.1, 0.05, 0.03, 0.02, 0.01, 0.005, 0.002))
        g = torch.Generator().manual_seed(1000 + seed)
        target = torch.randn(n, n, generator=g, dtype=torch.float64) / math.sqrt(n)
        times: dict[str, list[float]] = {"orthogonal": [], "xavier-normal": []}
        for init in times:
            for d in depths:
                best = None
                for lr in lrs:
                    k = self._steps_to_fit(d, init, lr, target, seed)
                    if k is not None and (best is None or k < best):
                        best = k
                times[init].append(float("nan") if best is None else float(best))
        return {"depths": list(depths), "orthogonal": times["orthogonal"],
                "gaussian": times["xavier-normal"], "cap": self.CAP}

    def check(self, data: dict[str, Any]) -> list[Check]:
        depths = data["depths"]
        orth, gauss = np.array(data["orthogonal"]), np.array(data["gaussian"])
        i4 = depths.index(4)
        ratio4 = gauss[i4] / orth[i4] if np.isfinite(gauss[i4]) else float("inf")
        deep = [gauss[i] for i, d in enumerate(depths) if d >= 8]
        return [
            Check("orthogonal depths converged", float(np.isfinite(orth).sum()),
                  f"== {len(depths)} (all depths)", bool(np.isfinite(orth).all())),
            Check("steps Gaussian / orthogonal at depth 4", float(ratio4), ">= 3",
                  bool(ratio4 >= 3)),
            Check("Gaussian runs converged at depth >= 8", float(np.isfinite(deep).sum()),
                  "== 0 (fails within the cap)", not np.isfinite(deep).any()),
        ]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.4))
        cap = data["cap"]
        for key, label in (("orthogonal", "orthogonal"), ("gaussian", "Gaussian 1/sqrt(N)")):
            v = np.nan_to_num(np.array(data[key]), nan=cap)
            ax.plot(data["depths"], v, "o-", label=label)
        ax.axhline(cap, color="gray", ls=":", lw=1)
        ax.set(xscale="log", yscale="log", xlabel="depth (weight matrices)",
               ylabel="steps to 1e-3 of initial loss (cap = fail)")
        ax.legend(fontsize=8)
        return fig


PHENOMENA.register("saxe-sigmoids", SaxeSigmoids, papers=(1,), reproduces=True,
                   summary="deep linear modes follow the closed-form sigmoids under GD")
PHENOMENA.register("saxe-depth", SaxeDepth, papers=(1,), reproduces=False,
                   summary="orthogonal init: learning time nearly depth-independent")
