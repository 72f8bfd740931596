"""Linear decay to zero (D2Z) beats cosine decay to 10% of the peak ("10x") at each schedule's
best peak learning rate (Bergsma et al., "Straight to Zero: Why Linearly Decaying the
Learning Rate to Zero Works Best for LLMs", 2025; papers.md row 14)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from trainlab.init import apply as init_apply
from trainlab.models import build_model
from trainlab.optim import ScheduleLR, build_optimizer, build_schedule
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon, seed_summary
from trainlab.phenomena._trend import ols_slope


class StraightToZero(Phenomenon):
    """Noisy online regression trained by AdamW, the two schedules over a peak-lr grid at
    three training lengths; the claim tested is the paper's trend: D2Z's gain over 10x
    cosine grows with the training length (tokens per parameter).

    Setup (the notes' B11 "noisy SGD regression" option): a fixed random teacher ``mlp``
    (depth 1, width 32, tanh) on 20-dimensional Gaussian inputs plus label noise of std 0.5;
    every step draws a fresh batch of 32 (infinite data, like LM pretraining, the regime in
    which the paper's EMA argument applies); student ``mlp`` depth 2 width 32 (ReLU,
    ``kaiming-normal``, 1761 parameters); AdamW (weight decay 0.1), 5%
    warmup, peak lr in {3e-3, 1e-2, 3e-2, 1e-1, 3e-1}; schedules ``d2z`` and ``cosine`` with floor
    0.1 ("10x"). Training lengths 250, 1000 and 4000 steps, i.e. 4.5, 18 and 73 samples per
    parameter (the paper's tokens per parameter, TPP; its sweeps span 2 to 200 TPP with 20
    TPP compute-optimal). The final loss is measured on 20000 held-out points. Three seeds
    (data, init and batches).

    Pass criterion (written before the full run of this form, from the abstract's "benefits
    increase as dataset size increases" and the paper's TPP sweeps, in which D2Z's loss
    improvement over 10x at each schedule's best peak lr grows with TPP; issue 12): with
    ``gain = 1 - L_D2Z / L_10x`` (each schedule at its best peak lr) per seed and length,
    (a) the least-squares slope of gain against log(steps) over the 3 x 3 (seed, length)
    points has its 95% confidence interval above 0 (``_trend.ols_slope``); (b) at the
    longest length the mean gain over seeds exceeds its half-range (D2Z wins beyond the
    seed-to-seed spread); (c) precondition, the optimum is bracketed: each schedule's best
    peak lr is interior to the grid at every length and seed (else the "at the optimal peak
    lr" comparison is not made).

    Why the check measures the claim: the paper compares the two schedules each at its own
    best peak lr, after the same number of steps on the same data; here both schedules see
    the same fresh batches, init and held-out set per seed, so the gain is paired, and fresh
    batches every step put AdamW in the data-rich regime the paper's EMA explanation needs.

    Result, this form (full mode, seeds 0, 100, 200; 31.7 s of one core, 6 min 34 s of
    wall time at load average ~15 on the shared 2 cores): reported FAIL
    (``reproduces=False``). The mean gain over seeds grows with length as the paper says,
    -0.12%, +0.13%, +0.44% at 250, 1000, 4000 steps, and at 4000 steps D2Z wins on 3 of 3
    seeds (+0.29, +0.69, +0.35%; mean 0.44% > half-range 0.20%, check (b) passes). But the
    slope over the 9 (seed, length) points, +0.0020 per unit of log(steps), has the 95%
    interval [-0.0009, +0.0050]: seed 200 gains +0.75% at 250 steps, where its D2Z optimum
    is the top of the grid (1e-1), the one unbracketed optimum of the 18 (check (c) fails
    with 1); seeds 0 and 100 go -0.53 -> +0.03 -> +0.29% and -0.59 -> +0.05 -> +0.69%.
    Nothing was changed after the run.

    Grid widened (issue 12, committed before the next full run): the paper's comparison is
    each schedule "under an optimal peak LR" (abstract), found by sweeping the peak lr
    (its loss-vs-peak-lr figures); a sweep whose best point is its top end has not found
    the optimum, so that comparison was not made for seed 200 at 250 steps. The grid gets
    one more point, 3e-1, at the same half-decade spacing (the paper's protocol: sweep
    until the optimum is bracketed). The criterion (a)-(c) is unchanged; (c) now counts
    edge optima on the 5-point grid.

    Result on the 5-point grid (full mode, seeds 0, 100, 200; 27 s of one core, 1 min 41 s
    of wall time at load average 3-7 on the shared 2 cores, about 30 s idle): reported
    FAIL (``reproduces=False``). The grid now brackets every optimum (check (c): 0 of 18 at
    an edge; 3e-1 is never best), and the optima are the same as on the 4-point grid, so
    the gains are unchanged: per seed at 250, 1000, 4000 steps -0.53, +0.03, +0.29%
    (seed 0), -0.59, +0.05, +0.69% (seed 100), +0.75, +0.33, +0.35% (seed 200). Seed
    200's D2Z optimum at 250 steps is 1e-1, interior now (3e-1 is worse), so its +0.75% at
    the shortest length is a real bracketed optimum, not a grid artefact. Check (b) passes
    (mean gain 0.44% at 4000 steps, half-range 0.20%); check (a) fails: slope +0.0020 per
    unit of log(steps), 95% interval [-0.0009, +0.0050]. Seeds 0 and 100 follow the
    paper's trend (10x wins at 4.5 samples per parameter, D2Z wins more the longer);
    seed 200 does not (D2Z already ahead at 250 steps, gain flat). Nothing was changed
    after the run.

    History: the earlier single-length form (1500 steps, student width 64, lrs {1e-3, 3e-3,
    1e-2}) gave D2Z a mean gain of +0.36% with a seed half-range of 0.81% and picked the top
    of the lr grid: a FAIL that did not bracket the optimum and did not test the trend. At
    300 and 600 steps 10x won on 3 of 3 seeds (D2Z 0.8% worse), the pattern the trend form
    tests.

    Quick mode (a regression guard, not the claim): lengths 100 and 400, one seed, the same
    code path (about 2 s of one core); one seed and two lengths cannot give a slope's
    confidence interval, so the test compares its numbers with the recorded ones
    (``quick_reference``: gain +0.36% at 400 steps; on the 5-point grid 0 of 4 optima at
    the grid edge, 2 of 4 on the old 4-point grid).

    Deviations: an MLP regression with fresh Gaussian inputs instead of LLM pretraining
    (the paper's 111M-1.7B GPT models on SlimPajama); TPP counts samples, not tokens; the lr
    grid has 5 half-decade points (the paper's own grid spacing was not re-read).
    """

    name = "d2z-vs-cosine"
    papers = (14,)
    claim = ("At the best peak learning rate for each, linear decay to zero ends at a lower "
             "loss than cosine decay to 10% of the peak, by more the longer the training "
             "(tokens per parameter).")

    paper_figure = ("the abstract (benefits grow with dataset size; 610M at 80 TPP with D2Z "
                    "beats 200 TPP with 10x) and the loss-vs-peak-lr sweeps over TPP of the "
                    "main text (figure numbers not re-read)")
    scale_downs = ("teacher-student MLP regression with fresh batches instead of LLM "
                   "pretraining", "4.5-73 samples per parameter (paper 2-200 TPP)",
                   "3 seeds, 5 peak lrs (quick: 1 seed, lengths 100 and 400)")
    quick_reference = {
        "gain of D2Z at the longest length (mean over seeds)": 0.003629426946788028,
        "(seed, length, schedule) whose best peak lr is at the grid edge": 0.0}
    quick_atol = 1e-3

    LRS = (3e-3, 1e-2, 3e-2, 1e-1, 3e-1)  # half-decade grid; 3e-1 added so it brackets
    LENGTHS = (250, 1000, 4000)
    QUICK_LENGTHS = (100, 400)
    WIDTH = 32

    SCHEDULES = ("d2z", "cosine")

    def _seed_data(self, seed: int, steps: int) -> tuple:
        """Teacher, held-out set and the ``steps`` fresh batches of one seed."""
        g = torch.Generator().manual_seed(seed)
        teacher = build_model("mlp", (20,), 1, depth=1, width=32, activation="tanh")
        init_apply(teacher, "xavier-normal", generator=g)
        x_test = torch.randn(20000, 20, generator=g)
        batches = torch.Generator().manual_seed(seed + 13)
        xs = torch.randn(steps, 32, 20, generator=batches)
        with torch.no_grad():
            y_test = teacher(x_test) + 0.5 * torch.randn(20000, 1, generator=g)
            ys = teacher(xs.reshape(-1, 20)).reshape(steps, 32, 1)
        ys += 0.5 * torch.randn(steps, 32, 1, generator=batches)
        return x_test, y_test, xs, ys

    def final_losses(self, steps: int, seeds: list[int], lrs: tuple[float, ...] | None = None
                     ) -> dict[str, np.ndarray]:
        """Held-out loss after ``steps`` AdamW steps for every (seed, peak lr) and schedule:
        ``{schedule: array (seed, lr)}``. The runs are independent; they are trained
        together (their parameters stacked, ``torch.func.vmap`` over the student) only to
        save interpreter overhead, each with its own AdamW param group, peak lr and
        schedule, on its own seed's batches."""
        lrs = self.LRS if lrs is None else lrs
        data = [self._seed_data(sd, steps) for sd in seeds]
        runs = [(i, sch, lr) for i in range(len(seeds)) for sch in self.SCHEDULES for lr in lrs]
        models = []
        for i, _, _ in runs:
            model = build_model("mlp", (20,), 1, depth=2, width=self.WIDTH)
            init_apply(model, "kaiming-normal",
                       generator=torch.Generator().manual_seed(seeds[i] + 7))
            models.append(model)
        scheds = []
        for sch in self.SCHEDULES:
            groups = [{"params": list(m.parameters()), "lr": lr}
                      for m, (_, s, lr) in zip(models, runs, strict=True) if s == sch]
            opt = build_optimizer("adamw", groups, lr=lrs[0], weight_decay=0.1)
            hyper = {"warmup": steps // 20} | ({"floor": 0.1} if sch == "cosine" else {})
            scheds.append(ScheduleLR(opt, build_schedule(sch, steps, **hyper)))
        names = [n for n, _ in models[0].named_parameters()]
        per_name = [[dict(m.named_parameters())[n] for m in models] for n in names]
        seed_of = torch.tensor([i for i, _, _ in runs])
        xs, ys = torch.stack([d[2] for d in data]), torch.stack([d[3] for d in data])

        def forward(params: dict, x: torch.Tensor) -> torch.Tensor:
            return torch.func.functional_call(models[0], params, (x,))

        batched = torch.func.vmap(forward)
        for step in range(steps):
            params = {n: torch.stack(ps) for n, ps in zip(names, per_name, strict=True)}
            out = batched(params, xs[seed_of, step])
            loss = (out - ys[seed_of, step]).pow(2).mean(dim=(1, 2)).sum()
            for sc in scheds:
                sc.optimizer.zero_grad()
            loss.backward()
            for sc in scheds:
                sc.optimizer.step()
                sc.step()
        out = {sch: np.full((len(seeds), len(lrs)), np.inf) for sch in self.SCHEDULES}
        with torch.no_grad():
            for model, (i, sch, lr) in zip(models, runs, strict=True):
                x_test, y_test = data[i][0], data[i][1]
                loss = (model(x_test) - y_test).pow(2).mean().item()
                out[sch][i, lrs.index(lr)] = loss if math.isfinite(loss) else np.inf
        return out

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        lengths = self.QUICK_LENGTHS if quick else self.LENGTHS
        seeds = [seed + 100 * i for i in range(1 if quick else 3)]
        per_length = [self.final_losses(n, seeds) for n in lengths]
        loss = {s: np.stack([p[s] for p in per_length], axis=1) for s in self.SCHEDULES}
        return {"lrs": list(self.LRS), "lengths": list(lengths), "seeds": seeds,
                **loss}  # each (seed, length, lr)

    @staticmethod
    def gains(data: dict[str, Any]) -> np.ndarray:
        """``1 - L_D2Z / L_10x`` at each schedule's best peak lr, shape (seed, length)."""
        return 1 - data["d2z"].min(-1) / data["cosine"].min(-1)

    def check(self, data: dict[str, Any]) -> list[Check]:
        gain = self.gains(data)
        n_seeds, n_len = gain.shape
        last, spread, _ = seed_summary(gain[:, -1])
        checks = []
        if n_seeds * n_len >= 3 and n_len >= 2:
            x = np.tile(np.log(np.asarray(data["lengths"], dtype=float)), n_seeds)
            fit = ols_slope(x, gain.ravel())
            checks.append(Check("slope of the D2Z gain against log(steps), 95% CI low end",
                                fit.low, f"> 0 (slope {fit.value:.4g}, n = {fit.n})",
                                n_seeds >= 3 and fit.low > 0, seeds=n_seeds))
        checks.append(Check("gain of D2Z at the longest length (mean over seeds)", last,
                            "> its half-range over seeds", n_seeds >= 3 and last > spread,
                            spread, n_seeds))
        n_lr = len(data["lrs"])
        edge = sum(int(np.sum((data[s].argmin(-1) == 0) | (data[s].argmin(-1) == n_lr - 1)))
                   for s in ("d2z", "cosine"))
        checks.append(Check("(seed, length, schedule) whose best peak lr is at the grid edge",
                            edge, "== 0 (optimum bracketed)", edge == 0, seeds=n_seeds))
        return checks

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
        for j, n in enumerate(data["lengths"]):
            for key, style in (("d2z", "o-"), ("cosine", "s--")):
                a1.plot(data["lrs"], data[key][:, j].mean(0), style, color=f"C{j}",
                        label=f"{key}, {n} steps")
        a1.set(xscale="log", yscale="log", xlabel="peak lr",
               ylabel="held-out loss (mean over seeds)")
        a1.legend(fontsize=7)
        gain = 100 * self.gains(data)
        for i, sd in enumerate(data["seeds"]):
            a2.plot(data["lengths"], gain[i], "o-", color=f"C{i}", label=f"seed {sd}")
        a2.axhline(0, color="k", lw=0.8)
        a2.set(xscale="log", xlabel="steps", ylabel="1 - L_D2Z / L_10x (%)")
        a2.legend(fontsize=7)
        fig.tight_layout()
        return fig


PHENOMENA.register("d2z-vs-cosine", StraightToZero, papers=(14,), reproduces=False,
                   summary="D2Z beats 10x cosine at the best peak lr, more so the longer")
