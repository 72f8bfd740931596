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


class _DiagonalQKAttention(nn.Module):
    r"""One softmax attention head with diagonal query and key maps, :math:`W_Q =
    \mathrm{diag}(q)`, :math:`W_K = \mathrm{diag}(k)` (the paper's diagonal-weight head), and
    the identity as value map: :math:`f(X) = \mathrm{softmax}(X\,\mathrm{diag}(q \odot k)
    \,X^\top / d)\, X`.

    Minimal model kept here: ``trainlab.models`` has no bare attention layer; the key-query
    product :math:`W_Q W_K^\top = \mathrm{diag}(q \odot k)` is the matrix whose learned
    perturbation the paper's theorem and toy task (its Fig. 2b) follow entry by entry."""

    def __init__(self, d: int, std: float, generator: torch.Generator):
        super().__init__()
        self.q = nn.Parameter(torch.randn(d, generator=generator, dtype=torch.float64) * std)
        self.k = nn.Parameter(torch.randn(d, generator=generator, dtype=torch.float64) * std)

    def product(self) -> torch.Tensor:
        return torch.diag(self.q * self.k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = x.shape[-1]
        return torch.softmax((x * (self.q * self.k)) @ x.transpose(1, 2) / d, dim=-1) @ x


def count_above(matrix: torch.Tensor, fraction: float = 0.1) -> int:
    """Number of singular values above ``fraction`` of the largest (0 for the zero matrix)."""
    s = torch.linalg.svdvals(matrix)
    return int((s > fraction * s[0]).sum()) if s[0] > 0 else 0


def held_runs(counts: list[int], min_length: int) -> list[tuple[int, int, int]]:
    """``(value, start, stop)`` of every run of equal entries of ``counts`` at least
    ``min_length`` long (``counts[start:stop]``), in order."""
    runs, start = [], 0
    for i in range(1, len(counts) + 1):
        if i == len(counts) or counts[i] != counts[start]:
            if i - start >= min_length:
                runs.append((counts[start], start, i))
            start = i
    return runs


def plateaus(counts: list[int], min_length: int) -> list[int]:
    """The values held for at least ``min_length`` consecutive entries of ``counts``, in
    order of appearance (a value is listed once per run of it)."""
    return [v for v, _, _ in held_runs(counts, min_length)]


def stage_violations(counts: list[int], losses: list[float], min_length: int) -> int:
    """How often the stagewise picture of the paper's theorem is broken along the held runs
    (plateaus) of ``counts``, starting from rank 0: a plateau whose rank is below the
    previous one's, or more than one above it, or a rise of the rank whose plateau does not
    have a lower mean loss than the previous plateau."""
    bad, prev_rank, prev_loss = 0, 0, math.inf
    for value, start, stop in held_runs(counts, min_length):
        loss = float(np.mean(losses[start:stop]))
        if value == prev_rank:
            continue
        bad += int(not 0 < value - prev_rank <= 1) + int(loss >= prev_loss)
        prev_rank, prev_loss = value, loss
    return bad


class GradualRankIncrease(Phenomenon):
    """A single attention head with diagonal query and key maps
    (:class:`_DiagonalQKAttention`, d = 16, sequences of T = 8 Gaussian tokens, 256
    sequences) is fitted by full-batch gradient descent (lr 0.2, float64, MSE) to a teacher
    of the same form whose key-query product ``diag(m)`` has rank 4 (entries 4, 3, 2, 1 at
    four random coordinates, zero elsewhere). The entries of q and k are drawn with std
    alpha: small, alpha = 1e-4 (the paper's alpha -> 0 regime: its Fig. 2 shows stagewise
    learning from alpha = 0.01 down), and as a control unit scale, alpha = 1 (an O(1)
    initial product). At every step (the paper's curves are continuous in time): the number
    of entries (singular values) of ``Delta = W_Q W_K^T - (W_Q W_K^T)_0`` above 10% of the
    largest, and the entropy effective rank (the ``effective-rank`` probe's measure) of
    ``W_Q - W_Q(0)``. 2000 steps at small init (600 at unit init); 3 seeds (data, teacher,
    init); quick mode is one seed of the same run.

    Pass criterion (issue 12, re-derived from what the paper states and plots: its theorem
    and Fig. 2, "loss versus rescaled time in the toy task of learning an attention head":
    training runs in stages, a loss plateau then a sharp drop, and at the end of each stage
    the rank of the learned perturbation grows by at most one; Fig. 2b follows the learned
    entries stage by stage). The count is read during learning, from the first step at
    which the loss has fallen 1% below its initial value (before that ``Delta`` is at the
    init scale and its spectrum is set by the random init, not by learning); a stage is a
    plateau of the count, a value held for >= 30 consecutive steps. On every seed, at small
    init: (a) >= 3 plateaus with a nonzero count; (b) from rank 0, each plateau whose count
    differs from the previous plateau's is exactly one higher and has a lower mean loss
    (``stage_violations`` == 0: the theorem's "rank +1 per stage, each stage a loss drop";
    the transitions between plateaus, which the theorem does not describe, are not judged);
    (c) the final count is the teacher's rank 4; and the staircase needs the small init:
    (d) when the loss first falls below half its initial value the count is <= 2 at small
    init and (e) >= 4 at large init.

    Why the check measures the claim: the same data, teacher and optimizer at two init
    scales, so the staircase is attributed to the small init; the count of singular values
    above 10% of the largest is the rank of the learned perturbation at the resolution the
    paper's normalized spectra show, and a rise must come with a loss drop.

    History (all before this form of the criterion): with the count read every 10 steps
    from step 0, it fell 5 -> 3 -> 2 -> 1 in the alignment phase before the loss moved;
    restricted to learning and required to never decrease at any reading (3 seeds, 10 s)
    it failed on seed 200 only, whose readings at the start of learning were 2, 1, 1, 2, 2,
    ... (on every seed the count then climbed through plateaus to 4, <= 2 at half loss at
    small init, 9 at large init). That per-reading monotonicity is not the theorem's
    statement, which is about the rank at the stage ends; this form judges the plateaus and
    is stricter elsewhere: the first plateau must be rank 1 (from 0), every rise exactly 1,
    and every rise a loss drop. It was written and committed before its full run, knowing
    the earlier run's numbers above.

    Result of the full-matrix form (before the setting below; full W_Q, W_K with std
    1e-4/sqrt(d) and 1/sqrt(d), teacher ``U diag(4, 3, 2, 1) V^T``, 1000 steps; full mode,
    seeds 0, 100, 200; 16.5 s of one core, 4 min 23 s of
    wall time at load average ~16 on the shared 2 cores): reported FAIL
    (``reproduces=False``). Seeds 0 and 100 show the theorem's picture exactly: plateaus
    of rank 1, 2, 3, 4 (seed 100: steps 0-59, 59-175, 175-461, 461-883 of learning, mean
    losses 0.90, 0.24, 0.043, 0.001), each rise a loss drop. Seed 200 fails (b) by one step:
    after 7 steps at count 2 (the init's residue at the start of learning) its rank-1 stage
    lasts 29 steps, one short of the 30-step plateau, so its first plateau is rank 2 (then
    3, 4 with losses 0.25, 0.049, 0.0009). On every seed the final count is 4, the count at
    half loss is <= 2 at small init and 8 at large init. Nothing was changed after the run.
    Quick mode (seed 0, about 3 s of one core) passed every check of the claim.

    Setting moved to the paper's (issue 12, third pass, committed before its full run):
    the paper's theorem is about attention heads with diagonal weights, and its toy task
    (Fig. 2: "learning an attention head with diagonal weights"; Fig. 2b follows the entries
    of ``diag(w_Q) diag(w_K)``) uses them; the full-matrix head above was not the paper's
    setting (its full-matrix experiments are ViTs and GPT-2 trained with Adam, read through
    spectra and stable ranks, not plateaus). W_Q and W_K are now diagonal, the teacher is
    diagonal with the same four entries, alpha is the std of the diagonal entries (1e-4,
    whose product scale 1e-8 is the old small init's; the control alpha = 1 gives an O(1)
    product, as 1/sqrt(d) did for full matrices), and the small-init run is 2000 steps so
    that the staircase can finish. The criterion (a)-(e) is unchanged, the 30-step plateau
    included. Where the 30 steps came from: not from the paper. The paper defines a stage in
    rescaled time t / log(1/alpha) (a plateau near a saddle, then a sharp drop); the 30
    steps began as "3 consecutive readings" when the count was read every 10 steps (commit
    5e0c148) and were kept as 30 steps when it became every step. It is an invented
    threshold; it is kept because changing it after seeing seed 200's 29 steps would be
    tuning the criterion.

    Result, diagonal form (full mode, seeds 0, 100, 200; 18.4 s of one core, 1 min 46 s of
    wall time at load average ~8 on the shared 2 cores, about 25 s idle): reported FAIL
    (``reproduces=False``), on (a) and (b). The diagonal head learns much faster after the
    initial plateau (the loss first moves 1% at steps 87-98, and all four entries are
    learned within about 230 further steps), so the stages are short. Seed 200 shows the
    theorem's picture exactly: plateaus of rank 1, 2, 3, 4 (46, 80, 94 and 1694 steps, mean
    losses 1.41, 0.34, 0.064, 0.0002). Seed 0: rank 1 for 29 steps and rank 2 for 12, both
    under the 30-step plateau, so its plateaus are 3 then 4 (a 0 -> 3 jump, one violation,
    two plateaus). Seed 100: its first count is 2 (the teacher's entries 4 and 3 rise
    together at the 10% resolution) for 49 steps, then 3, 4 (one violation). On every seed
    the final count is 4, the count at half loss is 1-2 at small init and 5-10 at unit
    init ((c)-(e) pass). Nothing was changed after the run. What was tried, in all: the
    full-matrix head (2 of 3 seeds with the exact staircase, seed 200 one step short), and
    the paper's diagonal head (1 of 3 exact; seed 0 again 29 steps at rank 1). Not tried:
    smaller alpha or a smaller step, which lengthen every stage in steps and so would pass
    the step-counted plateau by construction, not by the claim.

    Fourth pass (issue 12): searched again for the toy task of Sec. 1/Fig. 2 and its appendix
    (teacher, data, d, sequence length, which maps are trained, alpha, step size, how a stage
    or the rank is read) and for the theorem's statement. Stored web pages: five copies of
    the full text (the arXiv HTML of v2, its arxiv-vanity rendering, a Hugging Face papers
    markdown copy of the arXiv HTML, and the SPIQA data set's raw-LaTeX and
    extracted-paragraph copies of v1), the NeurIPS 2023 proceedings and poster pages, Apple's
    research page, Papers-with-Code (no code listed) and summary sites; public repositories
    by title, by the Fig. 2 caption, by the paper's LaTeX of its attention equation and by
    Apple's ml-* repository names (no authors' code found). What is readable: the abstract;
    the introduction up to its Eq. (1), attention(X; W_K, W_Q, W_V, W_O) = smax(X W_K W_Q^T
    X^T) X W_V W_O^T with X in R^{n x d} and all four maps in R^{d x d'} trained (no 1/d or
    1/sqrt(d) logit scale); the Fig. 2 and Fig. 3 captions (quoted in a public course
    reproduction, CENG501 2024, whose toy run uses its own settings: d = 4, 10 samples, random
    Gaussian targets, no teacher, lr 0.1); a summary's statement of the diagonal-weight class
    f(x; u, v) = h(x; u * v). Every full-text copy returns only its opening, so the toy
    task's teacher, data distribution, d, n, T, alpha grid (beyond the caption's "already
    clear with alpha = 0.01"), step size, and any stage or rank threshold are still unread.
    Nothing was moved and the criterion is unchanged; the verdict stays the FAIL above (no
    new run: the code is unchanged). Leads for a later pass, from Eq. (1) only: the paper's
    head has no logit scale and trains W_V and W_O, which this head does not (Deviations).

    Quick mode (seed 0 of the same run, 4.6 s of one core): the claim fails on that seed,
    so the quick run is a regression guard (``quick_reference``: 2 plateaus, 1 violation,
    final count 4, half-loss counts 1 and 6), not the claim.

    Deviations: the value and output maps are fixed to the identity (the paper's toy head
    trains diagonal W_V, W_O too; here only the key-query product is learned, the product
    the check reads); gradient descent with lr 0.2 stands for the theorem's gradient flow;
    the teacher, the data (Gaussian tokens), d, T and the 1/d logit scale are this
    library's (the paper's toy-task appendix was not reachable; its Eq. (1) has no logit
    scale); the 30-step plateau is this library's (above).
    """

    name = "gradual-rank-increase"
    papers = (71,)
    claim = ("With small initialization, the difference between trained and initial attention "
             "weights increases in rank one step at a time, each step a plateau of the loss.")

    paper_figure = ("Fig. 2 (loss against rescaled time in the toy task of learning one "
                    "attention head; stagewise plateaus, rank +1 per stage) and the "
                    "incremental-learning theorem (caption as quoted in a reproduction "
                    "report; the full text was not reachable here)")
    scale_downs = ("one diagonal key-query head (d = 16, T = 8, 256 sequences), value map "
                   "fixed to the identity", "GD with lr 0.2 for gradient flow",
                   "3 seeds (quick: 1)")

    quick_reference = {
        "plateaus of the rank count while learning, small init (min over seeds)": 2.0,
        "plateau-to-plateau steps breaking 'rank +1 with a loss drop', small init "
        "(max over seeds)": 1.0,
        "seeds whose final rank count (small init) is 4": 1.0,
        "rank count at half loss, small init (max over seeds)": 1.0,
        "rank count at half loss, large init (min over seeds)": 6.0}

    D, T, N = 16, 8, 256
    EVERY, HOLD = 1, 30  # measure every step; a plateau is held for >= 30 steps
    ALPHA_SMALL, ALPHA_LARGE = 1e-4, 1.0  # std of the diagonal entries of W_Q and W_K
    STEPS_SMALL = 2000

    def _train(self, std: float, steps: int, x: torch.Tensor, y: torch.Tensor,
               generator: torch.Generator) -> dict[str, np.ndarray]:
        model = _DiagonalQKAttention(self.D, std, generator)
        p0, q0 = model.product().detach().clone(), torch.diag(model.q.detach().clone())
        opt = build_optimizer("sgd", model.parameters(), lr=0.2)
        loss_fn = nn.MSELoss(reduction="sum")
        losses, counts, eranks, logged = [], [], [], []
        for k in range(steps + 1):
            opt.zero_grad()
            loss = 0.5 * loss_fn(model(x), y) / len(x)
            if k % self.EVERY == 0:
                with torch.no_grad():
                    counts.append(count_above(model.product() - p0))
                    eranks.append(effective_rank(torch.diag(model.q) - q0).item())
                    losses.append(loss.item())
                    logged.append(k)
            if k == steps:
                break
            loss.backward()
            opt.step()
        return {"steps": np.array(logged), "loss": np.array(losses),
                "count": np.array(counts), "erank": np.array(eranks)}

    def _seed(self, seed: int) -> dict[str, Any]:
        d = self.D
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(self.N, self.T, d, generator=g, dtype=torch.float64)
        entries = torch.zeros(d, dtype=torch.float64)  # diag(q*k) of the teacher: rank 4
        entries[torch.randperm(d, generator=g)[:4]] = torch.tensor([4.0, 3.0, 2.0, 1.0],
                                                                   dtype=torch.float64)
        with torch.no_grad():
            y = torch.softmax((x * entries) @ x.transpose(1, 2) / d, dim=-1) @ x
        return {"small": self._train(self.ALPHA_SMALL, self.STEPS_SMALL, x, y, g),
                "large": self._train(self.ALPHA_LARGE, 600, x, y, g)}

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        seeds = [seed] if quick else [seed + 100 * i for i in range(3)]
        return {"seeds": seeds, "runs": [self._seed(sd) for sd in seeds], "teacher_rank": 4}

    @staticmethod
    def _count_at_half_loss(run: dict[str, np.ndarray]) -> float:
        below = np.nonzero(run["loss"] < 0.5 * run["loss"][0])[0]
        return float(run["count"][below[0]]) if below.size else float("nan")

    @staticmethod
    def learning_counts(run: dict[str, np.ndarray]) -> list[int]:
        """The rank counts from the first measurement with the loss 1% below its start."""
        moved = np.nonzero(run["loss"] <= 0.99 * run["loss"][0])[0]
        return [int(c) for c in run["count"][moved[0]:]] if moved.size else []

    def check(self, data: dict[str, Any]) -> list[Check]:
        rank, hold = data["teacher_rank"], self.HOLD // self.EVERY
        held, bad, final, half_small, half_large = [], [], [], [], []
        for r in data["runs"]:
            run = r["small"]
            counts = self.learning_counts(run)
            losses = list(run["loss"][len(run["loss"]) - len(counts):])
            held.append(len([c for c in plateaus(counts, hold) if c > 0]))
            bad.append(stage_violations(counts, losses, hold) if counts else 1)
            final.append(counts[-1] if counts else 0)
            half_small.append(self._count_at_half_loss(run))
            half_large.append(self._count_at_half_loss(r["large"]))
        n = len(data["runs"])
        at_rank = sum(f == rank for f in final)
        return [
            Check("plateaus of the rank count while learning, small init (min over seeds)",
                  min(held), ">= 3", min(held) >= 3, seeds=n),
            Check("plateau-to-plateau steps breaking 'rank +1 with a loss drop', small init "
                  "(max over seeds)", max(bad), "== 0", max(bad) == 0, seeds=n),
            Check(f"seeds whose final rank count (small init) is {rank}", at_rank, f"== {n}",
                  at_rank == n, seeds=n),
            Check("rank count at half loss, small init (max over seeds)", max(half_small),
                  "<= 2", max(half_small) <= 2, seeds=n),
            Check("rank count at half loss, large init (min over seeds)", min(half_large),
                  ">= 4", min(half_large) >= 4, seeds=n),
        ]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3.2))
        for key, label in (("small", f"alpha {self.ALPHA_SMALL:g}"),
                           ("large", f"alpha {self.ALPHA_LARGE:g}")):
            run = data["runs"][0][key]
            line, = a1.plot(run["steps"], run["count"], drawstyle="steps-post", label=label)
            a1.plot(run["steps"], run["erank"], color=line.get_color(), ls=":", lw=1)
            a2.plot(run["steps"], run["loss"], color=line.get_color())
        a1.set(xlabel="step", ylabel="rank of W_t - W_0 (dotted: erank of dW_Q)",
               title=f"seed {data['seeds'][0]}")
        a1.legend(fontsize=8)
        a2.set(xlabel="step", ylabel="training loss", yscale="log")
        return fig


PHENOMENA.register("gradual-rank-increase", GradualRankIncrease, papers=(71,), reproduces=False,
                   summary="small init: rank of W_t - W_0 of attention grows one step at a time")
