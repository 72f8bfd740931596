"""Implicit low-rank bias of gradient descent for tubal tensor factorizations: from a small
initialization, an over-parameterized tubal factorization fitted to too few linear
measurements recovers the low-tubal-rank tensor (Karnik et al., "Implicit Regularization for
Tubal Tensor Factorizations via Gradient Descent", 2024; papers.md row 23)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trainlab.optim import build_optimizer
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon
from trainlab.theory.tubal import t_gram, tubal_rank


class TubalImplicitRegularization(Phenomenon):
    """Target ``T = W * W^T`` with W of shape (10, 2, 4) (tubal rank 2, 10 x 10 x 4 entries),
    m = 200 Gaussian measurements ``y_i = <A_i, T>`` (half the 400 entries: the system is
    underdetermined), an over-parameterized factor U of shape (10, 10, 4), loss
    ``(1/2m) sum_i (<A_i, U * U^T> - y_i)^2``, full-batch GD lr 0.01 for 4000 steps (quick:
    1000), float64; init ``U ~ N(0, 1e-3^2)`` (small) and ``N(0, 1/10)`` (control).

    Pass criterion (from the paper's claim; thresholds fixed before running): with small init
    the relative error ``||U*U^T - T|| / ||T||`` is < 0.1 and the recovered tubal rank
    (1% threshold) is 2; with the control init the error is > 0.3 (the measurements alone do
    not determine T, so recovery comes from the small-init bias).

    Result: reported FAIL (``reproduces=False``) on the control only. Small init recovers
    the target (relative error 0.0014 full / 0.0025 quick, tubal rank exactly 2, as the
    paper claims), but the control init also gets close (error 0.06 full / 0.18 quick,
    threshold 0.3) while ending at tubal rank 7: the PSD t-Gram structure leaves about as
    many free parameters as there are measurements, so the control was a weaker foil than
    intended. Fewer measurements were not tried after seeing this.

    Quick mode (a regression guard, not the claim; issue 12): the full verdict is an honest
    FAIL, so the quick test compares the quick run's numbers with the values recorded from
    it (``quick_reference``); a change in the experiment turns the test red instead of being
    hidden behind an expected FAIL.
    """

    name = "tubal-implicit-regularization"
    papers = (23,)
    paper_figure = "the small-init recovery experiments (authors' Figure 2-4 scripts; not re-read)"
    scale_downs = ("m = 200 measurements of a 10 x 10 x 4 tensor",
                   "4000 GD steps (quick: 1000)",
                   "one seed",)
    quick_reference = {
        "small init: relative recovery error": 0.002490513845138153,
        "small init: recovered tubal rank": 2.0,
        "control init: relative recovery error": 0.17896335881911257}
    claim = ("Gradient descent from small initialization on an over-parameterized tubal "
             "tensor factorization recovers the low-tubal-rank solution from too few "
             "measurements.")

    def _fit(self, std: float, steps: int, seed: int) -> dict[str, float]:
        g = torch.Generator().manual_seed(seed)
        n, r, k, m = 10, 2, 4, 200
        w = torch.randn(n, r, k, generator=g, dtype=torch.float64) / np.sqrt(n)
        target = t_gram(w)
        a = torch.randn(m, n, n, k, generator=g, dtype=torch.float64)
        y = torch.einsum("mijk,ijk->m", a, target)
        init = torch.Generator().manual_seed(seed + 1)
        u = (std * torch.randn(n, n, k, generator=init, dtype=torch.float64)).requires_grad_()
        opt = build_optimizer("sgd", [u], lr=0.01)
        for _ in range(steps):
            opt.zero_grad()
            (0.5 * (torch.einsum("mijk,ijk->m", a, t_gram(u)) - y).pow(2).mean()).backward()
            opt.step()
        x = t_gram(u.detach())
        return {"error": float((x - target).norm() / target.norm()),
                "tubal_rank": tubal_rank(x),
                "train_residual": float((torch.einsum("mijk,ijk->m", a, x) - y).norm()
                                        / y.norm())}

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        steps = 1000 if quick else 4000
        return {"small": self._fit(1e-3, steps, seed),
                "large": self._fit(1 / np.sqrt(10), steps, seed)}

    def check(self, data: dict[str, Any]) -> list[Check]:
        s, lg = data["small"], data["large"]
        return [
            Check("small init: relative recovery error", s["error"], "< 0.1",
                  s["error"] < 0.1),
            Check("small init: recovered tubal rank", s["tubal_rank"], "== 2 (target's)",
                  s["tubal_rank"] == 2),
            Check("control init: relative recovery error", lg["error"], "> 0.3",
                  lg["error"] > 0.3),
        ]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        keys = ["small", "large"]
        ax.bar(range(2), [data[k]["error"] for k in keys])
        ax.set(xticks=range(2), xticklabels=["init 1e-3", "init 1/sqrt(n)"],
               ylabel="relative recovery error")
        return fig


PHENOMENA.register("tubal-implicit-regularization", TubalImplicitRegularization,
                   papers=(23,), reproduces=False,
                   summary="small-init GD recovers low tubal rank from few measurements")
