"""From a small initialization, the weight change W_t - W_0 of an attention layer grows in
rank one step at a time (Boix-Adsera, Littwin, Abbe, Bengio & Susskind, "Transformers learn
through gradual rank increase", NeurIPS 2023; papers.md row 71)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from trainlab.optim import build_optimizer
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon
from trainlab.probes.effective_rank import effective_rank


class _QKAttention(nn.Module):
    r"""One softmax attention head with trainable query and key maps and the identity as
    value map: :math:`f(X) = \mathrm{softmax}(X W_Q W_K^\top X^\top / d)\, X`.

    Minimal model kept here: the paper's theory (and the notes' B9 setting) is about the
    key-query product alone; ``trainlab.models`` has no bare attention layer yet."""

    def __init__(self, d: int, std: float, generator: torch.Generator):
        super().__init__()
        self.w_q = nn.Parameter(torch.randn(d, d, generator=generator, dtype=torch.float64) * std)
        self.w_k = nn.Parameter(torch.randn(d, d, generator=generator, dtype=torch.float64) * std)

    def product(self) -> torch.Tensor:
        return self.w_q @ self.w_k.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = x.shape[-1]
        return torch.softmax(x @ self.product() @ x.transpose(1, 2) / d, dim=-1) @ x


def count_above(matrix: torch.Tensor, fraction: float = 0.1) -> int:
    """Number of singular values above ``fraction`` of the largest (0 for the zero matrix)."""
    s = torch.linalg.svdvals(matrix)
    return int((s > fraction * s[0]).sum()) if s[0] > 0 else 0


def plateaus(counts: list[int], min_length: int) -> list[int]:
    """The values held for at least ``min_length`` consecutive entries of ``counts``, in
    order of appearance (a value is listed once per run of it)."""
    held, start = [], 0
    for i in range(1, len(counts) + 1):
        if i == len(counts) or counts[i] != counts[start]:
            if i - start >= min_length:
                held.append(counts[start])
            start = i
    return held


class GradualRankIncrease(Phenomenon):
    """A single attention head (:class:`_QKAttention`, d = 16, sequences of T = 8 Gaussian
    tokens, 256 sequences) is fitted by full-batch gradient descent (lr 0.2, float64, MSE) to
    a teacher of the same form whose key-query product ``M = U diag(4, 3, 2, 1) V^T`` has rank
    4. The initialization is small, std 1e-4/sqrt(d) for W_Q and W_K (the notes' B9 setting),
    and as a control large, std 1/sqrt(d). Every 10 steps: the number of singular values of
    ``Delta = W_Q W_K^T - (W_Q W_K^T)_0`` above 10% of the largest, and the entropy effective
    rank (the ``effective-rank`` probe's measure) of ``W_Q - W_Q(0)``. 1000 steps (600 at the
    large init); quick mode is the same run (it takes a few seconds).

    Pass criterion (the notes' B9, written before running): at small init the count rises
    through >= 3 plateaus (values held for >= 3 consecutive measurements, i.e. 30 steps),
    never decreases, and ends at the teacher's rank 4; at large init the staircase is gone:
    when the loss first falls below half its initial value, the count is >= 4 at large init,
    against <= 2 at small init.

    Result (seed 0): reported FAIL (``reproduces=False``) on one check. The staircase itself
    reproduces: the count at small init goes 1 -> 2 -> 3 -> 4 on plateaus of 60-210 steps,
    each rise with a drop of the loss (1.32, 0.22, 0.045, then 0), and ends at 4; at half the
    initial loss the count is 1 at small init and 9 at large init, where the erank of
    ``W_Q - W_Q(0)`` jumps to 9 within 30 steps. But the count *decreases* three times
    (5 -> 3 -> 2 -> 1 at steps 20-90), in the alignment phase before the loss moves
    (1.3166 -> 1.3165), when ``Delta`` is still at the init scale and its spectrum is set by
    the random init. Restricting the check to the learning phase would pass, but the check
    was written before the run and is kept as written.
    """

    name = "gradual-rank-increase"
    papers = (71,)
    claim = ("With small initialization, the difference between trained and initial attention "
             "weights increases in rank one step at a time, each step a plateau of the loss.")

    D, T, N = 16, 8, 256

    def _train(self, std: float, steps: int, x: torch.Tensor, y: torch.Tensor,
               generator: torch.Generator) -> dict[str, np.ndarray]:
        model = _QKAttention(self.D, std, generator)
        p0, q0 = model.product().detach().clone(), model.w_q.detach().clone()
        opt = build_optimizer("sgd", model.parameters(), lr=0.2)
        loss_fn = nn.MSELoss(reduction="sum")
        losses, counts, eranks, logged = [], [], [], []
        for k in range(steps + 1):
            opt.zero_grad()
            loss = 0.5 * loss_fn(model(x), y) / len(x)
            if k % 10 == 0:
                with torch.no_grad():
                    counts.append(count_above(model.product() - p0))
                    eranks.append(effective_rank(model.w_q - q0).item())
                    losses.append(loss.item())
                    logged.append(k)
            if k == steps:
                break
            loss.backward()
            opt.step()
        return {"steps": np.array(logged), "loss": np.array(losses),
                "count": np.array(counts), "erank": np.array(eranks)}

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        del quick  # the full run is already a few seconds
        d = self.D
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(self.N, self.T, d, generator=g, dtype=torch.float64)
        u, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
        v, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
        s = torch.tensor([4.0, 3.0, 2.0, 1.0], dtype=torch.float64)
        teacher = u[:, :4] @ torch.diag(s) @ v[:, :4].T
        with torch.no_grad():
            y = torch.softmax(x @ teacher @ x.transpose(1, 2) / d, dim=-1) @ x
        return {"small": self._train(1e-4 / math.sqrt(d), 1000, x, y, g),
                "large": self._train(1 / math.sqrt(d), 600, x, y, g), "teacher_rank": 4}

    @staticmethod
    def _count_at_half_loss(run: dict[str, np.ndarray]) -> float:
        below = np.nonzero(run["loss"] < 0.5 * run["loss"][0])[0]
        return float(run["count"][below[0]]) if below.size else float("nan")

    def check(self, data: dict[str, Any]) -> list[Check]:
        small = data["small"]
        counts = [int(c) for c in small["count"]]
        held = [c for c in plateaus(counts, 3) if c > 0]
        drops = int(np.sum(np.diff(small["count"]) < 0))
        final = counts[-1]
        half_small = self._count_at_half_loss(small)
        half_large = self._count_at_half_loss(data["large"])
        return [
            Check("plateaus of the rank count (small init)", len(held), ">= 3", len(held) >= 3),
            Check("times the rank count decreased (small init)", drops, "== 0", drops == 0),
            Check("final rank count (small init)", final, f"== {data['teacher_rank']}",
                  final == data["teacher_rank"]),
            Check("rank count at half loss, small init", half_small, "<= 2", half_small <= 2),
            Check("rank count at half loss, large init", half_large, ">= 4", half_large >= 4),
        ]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3.2))
        for key, label in (("small", "std 1e-4/sqrt(d)"), ("large", "std 1/sqrt(d)")):
            run = data[key]
            line, = a1.plot(run["steps"], run["count"], drawstyle="steps-post", label=label)
            a1.plot(run["steps"], run["erank"], color=line.get_color(), ls=":", lw=1)
            a2.plot(run["steps"], run["loss"], color=line.get_color())
        a1.set(xlabel="step", ylabel="rank of W_t - W_0 (dotted: erank of dW_Q)")
        a1.legend(fontsize=8)
        a2.set(xlabel="step", ylabel="training loss", yscale="log")
        return fig


PHENOMENA.register("gradual-rank-increase", GradualRankIncrease, papers=(71,), reproduces=False,
                   summary="small init: rank of W_t - W_0 of attention grows one step at a time")
