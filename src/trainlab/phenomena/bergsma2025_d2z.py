"""Linear decay to zero (D2Z) beats cosine decay to 10% of the peak ("10x") at each schedule's
best peak learning rate (Bergsma et al., "Straight to Zero: Why Linearly Decaying the
Learning Rate to Zero Works Best for LLMs", 2025; papers.md row 14)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trainlab.models import build_model
from trainlab.optim import ScheduleLR, build_optimizer, build_schedule
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon, map_runs, seed_summary
from trainlab.phenomena._markov_lm import MarkovSource, markov_source
from trainlab.phenomena._trend import ols_slope

# The language, the model and the batch (fixed before any full run; docstring of StraightToZero).
VOCAB, ORDER, BRANCHING, SOURCE_SEED = 16, 2, 3, 1234
CONTEXT, BATCH, N_HELD = 16, 16, 4096
D_MODEL, HEADS, LAYERS = 16, 2, 2
SCHEDULES = ("d2z", "cosine")


def language() -> MarkovSource:
    """The synthetic language every run trains on (one fixed "dataset", as the paper's
    SlimPajama): a random sparse order-2 Markov source over 16 tokens, 3 allowed next tokens
    per context."""
    return markov_source(VOCAB, ORDER, BRANCHING, torch.Generator().manual_seed(SOURCE_SEED))


def build_lm(seed: int) -> nn.Module:
    """The decoder-only ``transformer`` (every position predicted) with torch's default
    init drawn from ``seed`` alone (the global RNG is forked and restored)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build_model("transformer", (CONTEXT,), VOCAB, d_model=D_MODEL, heads=HEADS,
                           layers=LAYERS, readout="all")


def n_params() -> int:
    """Parameters of the model, all counted (embeddings included), for tokens per parameter."""
    return sum(p.numel() for p in build_lm(0).parameters())


def steps_for(tpp: float) -> int:
    """Training steps that give ``tpp`` tokens per parameter at ``BATCH`` sequences of
    ``CONTEXT`` predicted tokens per step."""
    return max(1, round(tpp * n_params() / (BATCH * CONTEXT)))


def _ce(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, VOCAB), tokens.reshape(-1))


def train_run(schedule: str, lr: float, steps: int, seed: int) -> float:
    """One run: the held-out next-token cross-entropy (nats) after ``steps`` AdamW steps of
    ``schedule`` at peak ``lr``; ``inf`` if the training loss turned non-finite.
    Self-contained: the init is drawn from ``seed`` and the training stream from
    ``seed + 1`` (so every schedule and lr of a seed sees the same init and batches), the
    language and the held-out set are fixed, so separate processes give the numbers of one."""
    src = language()
    held = src.sample(N_HELD, CONTEXT + 1, torch.Generator().manual_seed(SOURCE_SEED + 1))
    stream = src.sample(steps * BATCH, CONTEXT + 1, torch.Generator().manual_seed(seed + 1))
    model = build_lm(seed)
    opt = build_optimizer("adamw", model.parameters(), lr=lr, betas=(0.9, 0.95), eps=1e-8,
                          weight_decay=0.1)
    hyper = {"warmup": 0.1} | ({"floor": 0.1} if schedule == "cosine" else {})
    sched = ScheduleLR(opt, build_schedule(schedule, steps, **hyper))
    for batch in stream.view(steps, BATCH, CONTEXT + 1):
        loss = _ce(model(batch[:, :-1]), batch[:, 1:])
        if not torch.isfinite(loss):
            return math.inf
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    with torch.no_grad():
        final = _ce(model(held[:, :-1]), held[:, 1:]).item()
    return final if math.isfinite(final) else math.inf


class StraightToZero(Phenomenon):
    """Next-token prediction on a synthetic language by a small decoder-only transformer
    trained with AdamW, the two schedules each over a peak-lr sweep at three training lengths
    (2, 20 and 200 tokens per parameter); the claim tested is the paper's trend: D2Z's gain
    over 10x cosine grows with the tokens per parameter (TPP).

    The paper's setting (Bergsma et al. 2025, ICLR; arXiv 2502.15938). Read in its text
    (the abstract and the opening of Sec. 1, the parts the search tool returned): LLMs
    trained with a warmup, then 10x cosine decay (to 10% of the peak) or linear decay to
    zero (D2Z), each schedule "under an optimal peak LR"; D2Z wins at compute-optimal
    dataset sizes (20 TPP) across model sizes, batch sizes, datasets and vocabularies;
    "benefits increase as dataset size increases" (610M parameters at 80 TPP with D2Z
    beat 200 TPP with 10x); the explanation is AdamW read as an exponential moving average
    of weight updates, whose coefficients the lr schedule sets (early: move away from the
    init, late: average over more updates against gradient noise). Recalled, NOT re-read
    here (the experiment section could not be retrieved): GPT-2-style decoder-only models
    of 111M-1.7B parameters trained on SlimPajama with muP, AdamW with betas (0.9, 0.95),
    eps 1e-8 and weight decay 0.1 in torch's form (decay multiplied by the lr, the form
    the paper's EMA view needs), a linear warmup over 10% of the steps, gradient clipping
    at norm 1, peak lrs swept on a factor-2 grid, TPP swept from 2 to 200.

    This setting: a fixed random sparse order-2 Markov language (``_markov_lm``: 16
    tokens, 3 allowed next tokens per two-token context with flat-Dirichlet probabilities;
    entropy rate 0.830 nats, Bayes loss 0.922 nats over the 16 targets of a 17-token
    sequence) stands for the corpus: fresh sequences every step (one pass, as LLM
    pretraining), a fixed held-out set of 4096 sequences for the final next-token
    cross-entropy. Model: ``transformer`` (pre-LayerNorm GPT block, learned positions,
    every position predicted), d_model 16, 2 heads, 2 layers, torch's default init; 7376
    parameters, all counted for TPP (tokens = predicted tokens). Batch 16 sequences of 16
    predicted tokens (256 tokens per step), so 2, 20 and 200 TPP are 58, 576 and 5762
    steps. AdamW as recalled above (``weight_decay=0.1``, torch's lr-coupled decay),
    warmup 10% of the steps, clipping at 1; schedules ``d2z`` and ``cosine`` with floor 0.1
    ("10x"); peak lr in {8e-3, 1.6e-2, 3.2e-2, 6.4e-2, 0.128, 0.256} (factor 2). Three
    seeds (the init and the training stream; the language and the held-out set are fixed,
    as the paper's dataset is). Every run is self-contained (:func:`train_run`), so full
    mode runs them in 2 processes (``map_runs``; each worker uses the caller's torch
    threads, one under the CLI's default, so the numbers equal a serial run's).

    Why the claim does not depend on the data source: the paper's explanation needs only
    a stochastic-gradient objective with an irreducible loss (so gradient noise persists
    at the end of training), fresh data at every step, and AdamW's EMA of updates set by
    the schedule; no property of natural language enters it. The Markov source supplies
    all three and a known floor, and a next-token cross-entropy of a decoder-only
    transformer is the paper's loss and model family.

    Sizing pilot (seed 0 only, before this criterion was committed; used to choose the
    model and batch by cost, and the lr grid so that it brackets the optima): one step
    costs ~4 ms of CPU (~0.23 Mstep in full mode, ~920 CPU-s, ~460 s on 2 idle cores).
    Best peak lr: 0.064 at 2 TPP for both schedules (0.128 worse by 0.1 nats); 0.064
    (D2Z) and 0.032 (10x) at 20 TPP, where 0.128 is 0.5-0.9 nats worse; 0.064 (D2Z) and
    0.016 (10x) at 200 TPP on a grid {1e-3 .. 6.4e-2} (D2Z's at its top, hence the two
    points above it here; 0.128 was not run at 200 TPP). Its losses at those optima were
    seen (D2Z / 10x: 2.420 / 2.418 at 2 TPP, 1.195 / 1.216 at 20, 0.973 / 1.001 at 200);
    the grid above was set from the optima's places only, one factor-2 step beyond each
    side, and nothing else was changed after the pilot.

    Pass criterion (the form of the earlier MLP version below, kept; re-checked against
    the paper's text: "under an optimal peak LR" is (c) and the comparison at each
    schedule's best lr, "D2Z consistently outperforms" at and beyond compute-optimal sizes
    is (b), "benefits increase as dataset size increases" is (a); the x axis is log TPP
    instead of log steps, the same up to a constant): with ``gain = 1 - L_D2Z / L_10x``
    (each schedule at its best peak lr) per seed and TPP, (a) the least-squares slope of
    gain against log(TPP) over the 3 x 3 (seed, TPP) points has its 95% confidence
    interval above 0 (``_trend.ols_slope``); (b) at 200 TPP the mean gain over seeds
    exceeds its half-range (D2Z wins beyond the seed-to-seed spread); (c) precondition,
    the optimum is bracketed: no schedule's best peak lr is at an end of the grid, at any
    TPP and seed. The gain at 20 TPP is reported, not gated.

    Why the check measures the claim: the paper compares the schedules each at its own
    best peak lr after the same number of tokens of the same data; here both schedules
    share the init, the batches and the held-out set per seed, so the gain is paired.

    Result (full mode, seeds 0, 100, 200; run once, after the criterion and setting were
    committed): PASS (``reproduces=True``). (a) the gain grows with TPP: slope +0.0069 per
    unit of log(TPP) (+1.6 points of gain per decade), 95% interval low end +0.0033
    (n = 9); (b) at 200 TPP D2Z is 3.10% below 10x cosine (mean over seeds), half-range
    0.26%; (c) 0 of the 18 (seed, TPP, schedule) optima at an end of the grid. Cost: 17
    min 30 s of CPU (user) + 9 s system for 216 runs in 2 processes, 32 min 27 s wall on
    the shared 2 cores at load average 6.5-8, so about 9 minutes on 2 idle cores (CPU
    time / 2, and wall time / (load / 2), agree). Nothing was changed after the run.
    Per seed, gain at 2, 20, 200 TPP: -0.09, +1.72, +2.85% (seed 0); +0.05, +3.91,
    +3.37% (seed 100); -0.19, +1.42, +3.07% (seed 200): at 2 TPP the two schedules tie
    (10x ahead by < 0.2% on 2 of 3 seeds), from 20 TPP D2Z wins on every seed (mean
    +2.35%), and at 200 TPP by 2.9-3.4%; seed 100 gains less at 200 than at 20 TPP, so
    the trend holds for the mean, not for every seed. Best held-out loss at 200 TPP
    (means over seeds): 0.968 (D2Z) against 0.999 (10x), Bayes 0.922, so D2Z removes ~40%
    of 10x's excess loss. Best peak lr: 10x's falls with length (0.064, 0.032, 0.016 on
    every seed), D2Z's stays at 0.032-0.064 (one seed 0.016 at 200 TPP), and at 200 TPP
    D2Z's loss is flat over 0.016-0.064 (0.968-0.972, means) where 10x's rises from 0.999
    to 1.049. These numbers were read from a second, bit-identical run of the same code
    (``run()`` with its data saved; same three check values), since the CLI keeps only
    the checks.

    History (teacher-student MLP regression, issue 12; the form of the criterion came from
    it): a fixed tanh teacher (width 32) on 20-dimensional Gaussian inputs with label noise
    0.5, fresh batches of 32, student ``mlp`` depth 2 width 32 (1761 parameters), AdamW
    weight decay 0.1, 5% warmup, lengths 250, 1000, 4000 steps (4.5, 18, 73 samples per
    parameter). On lrs {3e-3 .. 1e-1} (half-decade) and then {3e-3 .. 3e-1}, full mode
    (seeds 0, 100, 200; ~27-32 CPU-s) gave the same gains per seed at the three lengths:
    -0.53, +0.03, +0.29% (seed 0), -0.59, +0.05, +0.69% (seed 100), +0.75, +0.33,
    +0.35% (seed 200): FAIL on (a) only, slope +0.0020 per unit of log(steps), 95%
    interval [-0.0009, +0.0050]; (b) passed (mean 0.44% > half-range 0.20%); (c) failed
    once on the 4-point grid (seed 200's D2Z optimum at its top at 250 steps), passed on
    the 5-point grid. Before that a single-length form (1500 steps) gave +0.36% +- 0.81%
    at the top of its grid. That setting was not the paper's (no language model), which
    is why it was replaced by the one above.

    Quick mode (a regression guard, not the claim): the same code path at 0.5 and 2 TPP
    (14 and 58 steps), one seed, the full lr grid, serially (~24 short runs); one seed
    cannot give a slope's confidence interval or a seed spread, so the test compares its
    numbers with the recorded ones (``quick_reference``). The training arithmetic differs
    between torch releases (same seed, data and grid): the best-lr held-out losses at 2 TPP
    are 2.4202 (D2Z) / 2.4179 (10x) on torch 2.13.0 and 2.3961 / 2.3894 on 2.6.0, so the quick
    gain is -0.000925 / -0.002820; the guard's absolute tolerance (``quick_atol`` 2.5e-3)
    covers both releases (a change that moves the quick gain by more than 0.25 points of
    loss ratio still turns the test red), and the optimum-at-the-edge count is exact on both.

    Deviations: a 7376-parameter 2-layer transformer on a synthetic order-2 Markov
    language instead of 111M-1.7B GPT-style models on SlimPajama; torch's default init
    and standard parameterization instead of muP (the schedules are compared at each one's
    own best peak lr, which a parameterization does not change); learned positions and a
    GELU MLP (the paper's position encoding and MLP were not re-read); context 16 and 256
    tokens per batch; TPP counts every parameter, embeddings included (the paper's
    convention was not re-read); the optimizer, warmup, clipping and grid spacing are
    recalled, not re-read (above).
    """

    name = "d2z-vs-cosine"
    papers = (14,)
    claim = ("At the best peak learning rate for each, linear decay to zero ends at a lower "
             "loss than cosine decay to 10% of the peak, by more the longer the training "
             "(tokens per parameter).")

    paper_figure = ("the abstract (D2Z beats 10x at the optimal peak lr; benefits increase as "
                    "dataset size increases; 610M at 80 TPP with D2Z beats 200 TPP with 10x) "
                    "and the loss-vs-peak-lr sweeps over TPP of the main text (figure numbers "
                    "not re-read)")
    scale_downs = ("7.4k-parameter 2-layer decoder-only transformer instead of 111M-1.7B "
                   "GPT-style models", "synthetic order-2 Markov language (16 tokens) "
                   "instead of SlimPajama", "context 16 and 16 sequences per batch",
                   "3 seeds, 6 peak lrs (quick: 1 seed, 0.5 and 2 TPP)")
    quick_reference = {
        "gain of D2Z at the longest length (mean over seeds)": -0.0009253952921881581,
        "(seed, length, schedule) whose best peak lr is at the grid edge": 0.0}
    quick_atol = 2.5e-3  # torch 2.13 vs 2.6 moved the quick gain by 1.9e-3 (docstring)

    LRS = (8e-3, 1.6e-2, 3.2e-2, 6.4e-2, 0.128, 0.256)  # factor 2, brackets the optima
    TPPS = (2, 20, 200)
    QUICK_TPPS = (0.5, 2)
    FULL_WORKERS = 2  # full mode's budget is 2 cores; each run is self-contained

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        tpps = self.QUICK_TPPS if quick else self.TPPS
        seeds = [seed + 100 * i for i in range(1 if quick else 3)]
        steps = [steps_for(t) for t in tpps]
        keys = [(sd, j, sch, k) for j in reversed(range(len(tpps))) for sd in seeds
                for sch in SCHEDULES for k in range(len(self.LRS))]  # longest first
        jobs = {key: (key[2], self.LRS[key[3]], steps[key[1]], key[0]) for key in keys}
        losses = map_runs(train_run, jobs, processes=1 if quick else self.FULL_WORKERS)
        out = {sch: np.full((len(seeds), len(tpps), len(self.LRS)), np.inf)
               for sch in SCHEDULES}
        for (sd, j, sch, k), loss in losses.items():
            out[sch][seeds.index(sd), j, k] = loss
        src = language()
        return {"lrs": list(self.LRS), "tpps": list(tpps), "steps": steps, "seeds": seeds,
                "n_params": n_params(), "bayes_loss": src.bayes_loss(CONTEXT + 1),
                **out}  # each (seed, tpp, lr)

    @staticmethod
    def gains(data: dict[str, Any]) -> np.ndarray:
        """``1 - L_D2Z / L_10x`` at each schedule's best peak lr, shape (seed, tpp)."""
        return 1 - data["d2z"].min(-1) / data["cosine"].min(-1)

    def check(self, data: dict[str, Any]) -> list[Check]:
        gain = self.gains(data)
        n_seeds, n_len = gain.shape
        last, spread, _ = seed_summary(gain[:, -1])
        checks = []
        if n_seeds * n_len >= 3 and n_len >= 2:
            x = np.tile(np.log(np.asarray(data["tpps"], dtype=float)), n_seeds)
            fit = ols_slope(x, gain.ravel())
            checks.append(Check("slope of the D2Z gain against log(TPP), 95% CI low end",
                                fit.low, f"> 0 (slope {fit.value:.4g}, n = {fit.n})",
                                n_seeds >= 3 and fit.low > 0, seeds=n_seeds))
        checks.append(Check("gain of D2Z at the longest length (mean over seeds)", last,
                            "> its half-range over seeds", n_seeds >= 3 and last > spread,
                            spread, n_seeds))
        n_lr = len(data["lrs"])
        edge = sum(int(np.sum((data[s].argmin(-1) == 0) | (data[s].argmin(-1) == n_lr - 1)))
                   for s in SCHEDULES)
        checks.append(Check("(seed, length, schedule) whose best peak lr is at the grid edge",
                            edge, "== 0 (optimum bracketed)", edge == 0, seeds=n_seeds))
        return checks

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
        for j, tpp in enumerate(data["tpps"]):
            for key, style in (("d2z", "o-"), ("cosine", "s--")):
                a1.plot(data["lrs"], data[key][:, j].mean(0), style, color=f"C{j}",
                        label=f"{'D2Z' if key == 'd2z' else '10x cosine'}, {tpp:g} TPP")
        a1.axhline(data["bayes_loss"], color="k", ls=":", lw=0.8)
        a1.set(xscale="log", xlabel="peak lr",
               ylabel="held-out cross-entropy (mean over seeds; dotted: Bayes)")
        a1.legend(fontsize=7)
        gain = 100 * self.gains(data)
        for i, sd in enumerate(data["seeds"]):
            a2.plot(data["tpps"], gain[i], "o-", color=f"C{i}", label=f"seed {sd}")
        a2.axhline(0, color="k", lw=0.8)
        a2.set(xscale="log", xlabel="tokens per parameter", ylabel="1 - L_D2Z / L_10x (%)")
        a2.legend(fontsize=7)
        fig.tight_layout()
        return fig


PHENOMENA.register("d2z-vs-cosine", StraightToZero, papers=(14,), reproduces=True,
                   summary="D2Z beats 10x cosine at the best peak lr, more so the longer")
