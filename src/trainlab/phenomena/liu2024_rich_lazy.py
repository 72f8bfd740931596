"""Connectivity rank decides rich versus lazy learning: a recurrent network whose initial
recurrent weights have high effective rank learns lazily (small weight change, kernel and
representation stay aligned with their initial values), one with low-rank initial weights of
the same Frobenius norm learns richly ("How connectivity structure shapes rich and lazy
learning in neural circuits", Liu, Baratin, Cornford, Mihalas, Shea-Brown & Lajoie, ICLR 2024;
papers.md row 68)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trainlab.analyses.ntk import empirical_ntk
from trainlab.models import build_model
from trainlab.optim import build_optimizer
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon, map_runs, seed_summary
from trainlab.phenomena._trend import ols_slope

_COHERENCES = (0.0, 6.4, 12.8, 25.6, 51.2)


def perceptual_decision_trials(n: int, generator: torch.Generator, *, steps: int = 8,
                               noise: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Two-alternative perceptual decision trials (the neurogym ``PerceptualDecisionMaking``
    task at dt = 100 ms: 700 ms stimulus, 100 ms decision), written in-process.

    Inputs ``(n, steps, 3)``: a fixation channel (1 during the stimulus, 0 at the decision
    step) and two stimulus channels ``0.5 + cos(theta_i - theta_c) c / 200 + noise eps``,
    ``theta = (0, pi)``, ``c`` the trial's coherence in {0, 6.4, 12.8, 25.6, 51.2}, ``theta_c``
    the correct side. Targets ``(n, steps)``: 0 (fixate) during the stimulus, ``1 + side`` at
    the last (decision) step.
    """
    side = torch.randint(0, 2, (n,), generator=generator)
    coh = torch.tensor(_COHERENCES)[torch.randint(0, len(_COHERENCES), (n,),
                                                  generator=generator)]
    theta = torch.tensor([0.0, math.pi])
    stim = 0.5 + torch.cos(theta[None, :] - theta[side][:, None]) * coh[:, None] / 200
    x = torch.zeros(n, steps, 3)
    x[:, :-1, 0] = 1.0
    x[:, :-1, 1:] = stim[:, None, :] + noise * torch.randn(n, steps - 1, 2, generator=generator)
    y = torch.zeros(n, steps, dtype=torch.long)
    y[:, -1] = side + 1
    return x, y


def truncated_same_norm(w: torch.Tensor, rank: int) -> torch.Tensor:
    """The best rank-``rank`` approximation of ``w`` (its top singular components), rescaled
    to the Frobenius norm of ``w``."""
    u, s, vt = torch.linalg.svd(w)
    low = u[:, :rank] @ torch.diag(s[:rank]) @ vt[:rank]
    return low * (w.norm() / low.norm())


def cosine_alignment(a: torch.Tensor, b: torch.Tensor) -> float:
    """``<A, B>_F / (||A||_F ||B||_F)``: 1 for kernels equal up to scale."""
    return float((a * b).sum() / (a.norm() * b.norm()))


def recurrent_kernel(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The tangent kernel of every output (trial, step, unit) w.r.t. the recurrent weights
    only (as in the paper's measure), via :func:`trainlab.analyses.ntk.empirical_ntk`."""
    others = [p for n, p in model.named_parameters() if n != "rnn.weight_hh_l0"]
    for p in others:
        p.requires_grad_(False)
    try:
        return empirical_ntk(model, x)
    finally:
        for p in others:
            p.requires_grad_(True)


class RichLazyConnectivity(Phenomenon):
    """The paper's RNN experiment (setting read from the authors' code, ``main.py`` of
    Helena-Yuhan-Liu/BioRNN_RichLazy): a ReLU RNN ``h_t = relu(W_in x_t + W h_{t-1})`` with
    a linear readout at every step, no biases (the code's continuous-time RNN with dt = tau,
    i.e. alpha = 1; here the ``rnn`` model); the recurrent init ``W0 = 1.25 N(0, 1)/sqrt(N)``
    and, for each rank r, its top-r singular components rescaled to the Frobenius norm of
    ``W0`` (one ``W0`` per seed shared by all ranks; the input and readout weights are the
    ``nn.Linear`` defaults U(+-1/sqrt(fan_in)), also shared). Task: two-alternative
    perceptual decisions (:func:`perceptual_decision_trials`), cross-entropy over all 8 steps,
    fresh batches of 32, SGD momentum 0.9, lr 3e-3, a fixed budget of 10000 iterations. The
    code's default width N = 300 (``--hidden_size``) with its rank grid for
    150 <= N <= 500, r in {1, 30, 100, 300}. Measured as in the code:
    ``||W_T - W_0||_F`` of the recurrent weights; representation alignment, the cosine of
    the decision-time activity Gram matrices (320 probe trials) before and after; tangent
    kernel alignment ``<K_0, K_T> / (||K_0|| ||K_T||)``, K the Gram matrix of the gradients
    of every output (32 probe trials x 8 steps x 3 units) w.r.t. the recurrent weights.
    Lower alignment and larger weight change = richer. Full: 3 seeds; quick: ranks 1 and
    300, 300 iterations, tangent kernels over 8 probe trials, 2 seeds.

    Pass criterion (the paper's headline claim, abstract and RNN rank sweep: higher initial
    rank gives lazier learning on all three measures; written before the full run, as a
    trend test): over all (seed, rank) runs, the least-squares slope against log10 r has a
    95% confidence interval (Student t, seed scatter in the residuals) that excludes 0 in
    the lazier direction: (a) weight change, upper end < 0; (b) kernel alignment, lower end
    > 0; (c) representation alignment, lower end > 0. Precondition (d): every run learned the
    task, decision accuracy >= 0.7 on 2000 fresh trials (chance 0.5; a perfect observer is
    near 0.9 because a fifth of the trials have coherence 0).

    Result (full mode at N = 300, seeds 0, 100, 200, 12 runs; recorded after the criterion
    and the N = 300 setting were committed): PASS. The weight change falls with rank (slope
    -0.140 per decade of r, 95% CI [-0.177, -0.102]), kernel alignment rises (0.187,
    [0.115, 0.260]) and so does representation alignment (0.042, [0.027, 0.058]); every run
    learned the task (lowest accuracy 0.852, mean 0.868). Cost: 11.2 CPU-minutes with one
    thread (619 s user + 54 s system; each run ~45 s of training plus ~8 s for the two
    768 x 768 tangent kernels over 90000 recurrent weights), measured when the 12 runs ran
    one after another in one process (39 minutes wall on the shared machine, load average
    ~12 on 2 cores: about 11 minutes idle, over the 10-minute budget). Full mode now runs
    the 12 self-contained (seed, rank) runs (:func:`rank_run`, equal cost) in 2 worker
    processes, 6 each, so about 6 minutes on 2 idle cores (673 s / 2 plus a few seconds of
    process start). The numbers above are unchanged: the per-run code is the same, and a
    test checks that 2 processes give exactly (==) the serial numbers. Quick mode stays in
    one process (starting 2 workers costs more than its 4 short runs).

    History (issue 12): the first full run used the code's grid for N < 150, N = 100,
    r in {1, 30, 100}, 5 seeds (187 s wall, 178 s CPU): FAIL on (a) only. Kernel alignment
    rose with rank (0.23 per decade, [0.15, 0.31]) and representation alignment too (0.12,
    [0.07, 0.17]), the weight change fell (-0.045) but its CI [-0.097, +0.007] included 0;
    lowest accuracy 0.85. The width was then moved to the paper's default N = 300 (the
    axis the FAIL pointed to), with the criterion unchanged; that run is the result above.

    Quick mode (a regression guard, not the claim): at 300 iterations the regimes have not
    separated (weight-change slope +0.017, 95% CI [-0.002, 0.035]; kernel alignment 0.19,
    [-0.02, 0.41]), so the quick run declares ``quick_reference``, numbers recorded from
    this code path, and the test compares a fresh quick run with them (~15 s of CPU).
    Why the claim cannot show in 20 s (issue 12's quick pass): one iteration at N = 300
    costs ~4.5 ms of CPU (a batch of 32 through 8 steps of a 300 x 300 recurrence, forward
    and backward; ~45 s per 10^4-iteration run), so 20 s buys ~4000 iterations over all
    runs, while the regimes separate over the paper's 10^4 iterations per run; a smaller
    width is no way out either: at N = 100 the weight-change trend was not resolved even
    with 10^4 iterations and 5 seeds (History above).

    Before issue 12 this was a two-layer linear student (d = 50 -> 100 -> 10) trained to a
    loss target; at that scale every run fitted within ~40 steps and the regimes did not
    separate (FAIL). That setting was not the paper's and is replaced by the paper's RNN.

    Deviations: the task is written in-process after neurogym's (no neurogym dependency;
    its noise 1/sqrt(dt) = 0.1 is kept); the paper's other tasks (delayed match-to-sample,
    context-dependent decisions), its experimentally derived connectivities and the
    aligned-low-rank exception (the two-layer linear theory, Fig. 3 of the paper) are not
    run here; seeds come from ``torch.Generator`` instead of the global RNG. Only the
    abstract, the Fig. 3 caption and the authors' code could be read here, so the figure
    number of the RNN rank sweep is not given.
    """

    name = "rich-lazy-connectivity"
    papers = (68,)
    paper_figure = ("the RNN rank sweep (weight change, representation and tangent kernel "
                    "alignment against initial rank; setting from the authors' main.py)")
    scale_downs = ("one task (perceptual decision making) of the paper's three",
                   "3 seeds (the budget on a shared machine)",
                   "quick: ranks 1 and 300, 300 iterations, kernels over 8 probe trials, "
                   "2 seeds (guard)")
    quick_reference = {
        "slope of weight change ||W_T - W_0||_F vs log10(rank)": 0.01670948977828424,
        "slope of tangent kernel alignment vs log10(rank)": 0.1921342101697351,
        "slope of representation alignment vs log10(rank)": 0.034037266266154435,
        "lowest decision accuracy over runs (precondition: learned)": 0.7590000033378601}
    claim = ("Recurrent networks whose initial connectivity has higher effective rank learn "
             "more lazily: smaller weight change and higher kernel and representation "
             "alignment than low-rank initial connectivity of the same norm.")

    WIDTH, GAIN, LR, BATCH, STEPS = 300, 1.25, 3e-3, 32, 8
    RANKS = (1, 30, 100, 300)

    FULL_WORKERS = 2  # full mode's budget is 2 cores; each (seed, rank) run is self-contained

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        iterations = 300 if quick else 10000
        ranks = (self.RANKS[0], self.RANKS[-1]) if quick else self.RANKS
        seeds = [seed + 100 * i for i in range(2 if quick else 3)]
        jobs = {f"{r}@{sd}": (sd, r, iterations, 8 if quick else 32)
                for sd in seeds for r in ranks}
        runs = map_runs(rank_run, jobs, processes=1 if quick else self.FULL_WORKERS)
        return {"ranks": list(ranks), "seeds": seeds, "iterations": iterations,
                "runs": runs}

    @staticmethod
    def _points(data: dict[str, Any], key: str) -> tuple[np.ndarray, np.ndarray]:
        pairs = [(math.log10(r), data["runs"][f"{r}@{sd}"][key])
                 for sd in data["seeds"] for r in data["ranks"]]
        x, y = np.array(pairs).T
        return x, y

    def check(self, data: dict[str, Any]) -> list[Check]:
        out = []
        n = len(data["seeds"])
        for key, label, sign in (("weight_change", "weight change ||W_T - W_0||_F", -1),
                                 ("kernel_alignment", "tangent kernel alignment", 1),
                                 ("rep_alignment", "representation alignment", 1)):
            s = ols_slope(*self._points(data, key))
            ok = s.high < 0 if sign < 0 else s.low > 0
            side = "upper end < 0" if sign < 0 else "lower end > 0"
            out.append(Check(f"slope of {label} vs log10(rank)", s.value,
                             f"95% CI [{s.low:.3g}, {s.high:.3g}]: {side} "
                             "(spread: the CI half-width)", ok, 0.5 * (s.high - s.low), n))
        accs = [r["accuracy"] for r in data["runs"].values()]
        mean, spread, _ = seed_summary(accs)
        out.append(Check("lowest decision accuracy over runs (precondition: learned)",
                         min(accs), f">= 0.7 (chance 0.5; mean {mean:.3f})",
                         min(accs) >= 0.7, spread, len(accs)))
        return out

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        keys = (("weight_change", "||W_T - W_0||_F"), ("kernel_alignment", "kernel alignment"),
                ("rep_alignment", "representation alignment"))
        fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
        for ax, (key, label) in zip(axes, keys):
            x, y = self._points(data, key)
            ax.plot(10**x, y, "o", alpha=0.6)
            means = [np.mean([data["runs"][f"{r}@{sd}"][key] for sd in data["seeds"]])
                     for r in data["ranks"]]
            ax.plot(data["ranks"], means, "k-", lw=1)
            ax.set(xscale="log", xlabel="initial rank of W", ylabel=label)
        fig.tight_layout()
        return fig


def rank_run(sd: int, rank: int, iterations: int, kernel_trials: int = 32
             ) -> dict[str, float]:
    """One self-contained run of the rank sweep (the job that full mode's worker processes
    run): seed ``sd``'s ``W0``, input and readout weights and probe set (drawn in that order
    from ``torch.Generator().manual_seed(sd)``, so every rank of a seed gets the same ones),
    ``W0`` truncated to ``rank`` at its norm, trained for ``iterations`` on batches from
    ``torch.Generator().manual_seed(sd + 1)``. The tangent kernels use the first
    ``kernel_trials`` probe trials (the paper's code: one batch of 32)."""
    n, steps = RichLazyConnectivity.WIDTH, RichLazyConnectivity.STEPS
    g = torch.Generator().manual_seed(sd)
    w0 = RichLazyConnectivity.GAIN * torch.randn(n, n, generator=g) / n**0.5
    w_in = (2 * torch.rand(n, 3, generator=g) - 1) / 3**0.5
    w_out = (2 * torch.rand(3, n, generator=g) - 1) / n**0.5
    probe, _ = perceptual_decision_trials(320, g, steps=steps)
    return _train(truncated_same_norm(w0, rank), w_in, w_out, probe[:kernel_trials], probe,
                  iterations, sd + 1)


def _train(w_rec: torch.Tensor, w_in: torch.Tensor, w_out: torch.Tensor,
           kernel_probe: torch.Tensor, probe: torch.Tensor, iterations: int,
           data_seed: int) -> dict[str, float]:
    c = RichLazyConnectivity
    model = build_model("rnn", (c.STEPS, 3), 3, hidden=c.WIDTH, nonlinearity="relu",
                        bias=False, readout="all")
    with torch.no_grad():
        model.recurrent_weight.copy_(w_rec)
        model.input_weight.copy_(w_in)
        model.out.weight.copy_(w_out)

    def decision_activity() -> torch.Tensor:
        with torch.no_grad():
            return model.rnn(probe)[0][:, -1]

    k0, a0 = recurrent_kernel(model, kernel_probe), decision_activity()
    opt = build_optimizer("sgd", model.parameters(), lr=c.LR, momentum=0.9)
    g = torch.Generator().manual_seed(data_seed)
    for _ in range(iterations):
        x, y = perceptual_decision_trials(c.BATCH, g, steps=c.STEPS)
        opt.zero_grad()
        F.cross_entropy(model(x).reshape(-1, 3), y.reshape(-1)).backward()
        opt.step()
    kt, at = recurrent_kernel(model, kernel_probe), decision_activity()
    xt, yt = perceptual_decision_trials(2000, torch.Generator().manual_seed(data_seed + 1),
                                        steps=c.STEPS)
    with torch.no_grad():
        acc = (model(xt)[:, -1].argmax(1) == yt[:, -1]).float().mean().item()
    return {"weight_change": float((model.recurrent_weight.detach() - w_rec).norm()),
            "kernel_alignment": cosine_alignment(k0, kt),
            "rep_alignment": cosine_alignment(a0 @ a0.T, at @ at.T),
            "accuracy": acc}


PHENOMENA.register("rich-lazy-connectivity", RichLazyConnectivity, papers=(68,),
                   reproduces=True,
                   summary="high-rank initial connectivity learns lazier than low-rank")
