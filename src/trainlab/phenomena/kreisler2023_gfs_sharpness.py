"""At the edge of stability, gradient descent monotonically decreases the sharpness of the
gradient-flow solution (GFS) started from its iterates, even while the loss oscillates
(Kreisler, Nacson, Soudry & Carmon, "Gradient Descent Monotonically Decreases the Sharpness of
Gradient Flow Solutions in Scalar Networks and Beyond", ICML 2023; papers.md row 36)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy.optimize import brentq
from torch.func import hessian

from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon


def _loss(w: torch.Tensor) -> torch.Tensor:
    return 0.5 * (torch.prod(w) - 1.0) ** 2


def gradient_flow_solution(w: np.ndarray) -> np.ndarray:
    r"""Limit of gradient flow on :math:`\tfrac12(\prod_i w_i - 1)^2` from ``w`` (all
    entries positive). Gradient flow conserves :math:`w_i^2 - w_j^2`, so the limit is
    :math:`\sqrt{w_i^2 + s}` with the scalar :math:`s` that makes the product 1 (found by
    bracketing; the log-product is increasing in :math:`s`)."""
    sq = np.asarray(w, dtype=np.float64) ** 2

    def logprod(s: float) -> float:
        return 0.5 * float(np.sum(np.log(sq + s)))

    lo = -sq.min() * (1 - 1e-15)
    hi = 1.0
    while logprod(hi) < 0:
        hi *= 2
    s = brentq(logprod, lo, hi, xtol=1e-15, rtol=1e-15)
    return np.sqrt(sq + s)


def _sharpness(w: np.ndarray) -> float:
    h = hessian(_loss)(torch.tensor(w, dtype=torch.float64))
    return float(torch.linalg.eigvalsh(h)[-1])


class GFSSharpness(Phenomenon):
    """Gradient descent on the depth-4 scalar network ``f = w1 w2 w3 w4`` with loss
    ``0.5 (f - 1)^2``; after every step the gradient-flow solution from the iterate is computed
    (exactly, from GF's conserved quantities ``w_i^2 - w_j^2``) and the top eigenvalue of the
    4 x 4 Hessian there (``torch.func.hessian``) is its sharpness.

    Setup (the notes' B18): initialization w0 = (0.35, 0.9, 1.2, 1.6) (unbalanced, so the
    GFS is sharp), step size set by a rule fixed in advance: ``2/lr = 0.7 x`` the initial GFS
    sharpness (so GD must shed sharpness to converge); 300 steps (quick: 150).

    Pass criterion (the paper's theorem for scalar networks: GD at a step size above
    2/sharpness monotonically decreases the GFS sharpness, which converges to 2/lr, the edge
    of stability; rewritten for issue 12 because a limit approached from above cannot meet an
    absolute end tolerance in finite time): (a) the GFS sharpness never increases (relative
    tolerance 1e-9 per step); (b) the loss rises on at least one step (GD is at the edge of
    stability, not merely descending); (c) the gap ``S_t / (2/lr) - 1`` never goes below
    -1e-9 (2/lr is approached from above) and shrinks at least 10x from its initial value
    (1/0.7 - 1 = 0.43) by the end of the run (the convergence, with a tolerance a finite run
    can meet).

    Why the check measures the claim: the GFS is computed exactly from gradient flow's
    conserved quantities (checked against ``solve_ivp`` at rtol 1e-12), so the measured
    sequence is the paper's quantity itself, and the step size is fixed by a rule in advance
    so that the start is above the stability threshold.

    Result: before issue 12 the run failed an absolute 1e-6 end tolerance only; the
    monotone decrease holds exactly (largest step change -1e-4, always down), the loss rises
    on half the steps (period-2 oscillation), and the gap is 0.009 after 150 steps and
    0.0005 after 300. With the criterion above: full PASS (largest relative step change
    -2.4e-5, the loss rises on 150 of 300 steps, the gap shrinks 816x), 6 s; quick PASS.
    Deterministic (no seeds).

    Deviations from the paper: a depth-4 scalar network (the setting of the paper's theorem) with an
    initialization and step-size rule fixed here (the notes' setting above); the paper's experiments
    beyond scalar networks are not reproduced.
    """

    name = "gfs-sharpness"
    papers = (36,)
    paper_figure = ("the abstract's theorem for scalar networks (GFS sharpness decreases "
                    "monotonically to 2/lr); theorem and figure numbers not re-read")
    scale_downs = ("depth-4 scalar network only (the paper's theory setting), no practical "
                   "networks", "300 GD steps (quick: 150)")
    claim = ("Along gradient descent at the edge of stability, the sharpness of the "
             "gradient-flow solution from each iterate decreases monotonically and converges to "
             "2/lr, even though the loss itself oscillates.")

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        del seed  # deterministic
        w = np.array([0.35, 0.9, 1.2, 1.6])
        s0 = _sharpness(gradient_flow_solution(w))
        lr = 2 / (0.7 * s0)
        steps = 150 if quick else 300
        wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
        losses, gfs = [], [s0]
        for _ in range(steps):
            loss = _loss(wt)
            losses.append(loss.item())
            (g,) = torch.autograd.grad(loss, wt)
            with torch.no_grad():
                wt -= lr * g
            current = wt.detach().numpy()
            if np.any(current <= 0) or not np.all(np.isfinite(current)):
                break
            gfs.append(_sharpness(gradient_flow_solution(current)))
        losses.append(_loss(wt.detach()).item())
        return {"lr": lr, "gfs_sharpness": np.array(gfs), "loss": np.array(losses),
                "initial_gfs": s0}

    def check(self, data: dict[str, Any]) -> list[Check]:
        s, loss, bound = data["gfs_sharpness"], data["loss"], 2 / data["lr"]
        rel_rise = float(np.max(np.diff(s) / s[:-1])) if s.size > 1 else math.inf
        rises = int(np.sum(np.diff(loss) > 0))
        gap = s / bound - 1
        shrink = float(gap[0] / gap[-1]) if gap[-1] > 0 else math.inf
        above = bool(np.all(gap >= -1e-9))
        return [
            Check("largest relative step-to-step GFS-sharpness increase", rel_rise,
                  "<= 1e-9 (monotone decrease)", rel_rise <= 1e-9),
            Check("steps where the loss rose", rises, ">= 1 (edge of stability)", rises >= 1),
            Check("initial gap / final gap, gap = GFS sharpness / (2/lr) - 1", shrink,
                  ">= 10 with the gap never below -1e-9 (converges to 2/lr from above)",
                  above and shrink >= 10),
        ]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3))
        a1.plot(data["gfs_sharpness"])
        a1.axhline(2 / data["lr"], color="k", ls="--", lw=0.8)
        a1.set(xlabel="step", ylabel="GFS sharpness (dashed: 2/lr)")
        a2.plot(data["loss"])
        a2.set(xlabel="step", ylabel="loss", yscale="log")
        return fig


PHENOMENA.register("gfs-sharpness", GFSSharpness, papers=(36,), reproduces=True,
                   summary="GD monotonically decreases the gradient-flow-solution sharpness")
