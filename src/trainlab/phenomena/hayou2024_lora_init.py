"""LoRA's Init[A] (A random, B = 0) tolerates larger learning rates than Init[B] (A = 0,
B random), increasingly so as the width grows (Hayou, Ghosh & Yu, "The Impact of
Initialization on LoRA Finetuning Dynamics", NeurIPS 2024; papers.md row 32)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from trainlab.init import apply as init_apply
from trainlab.models.lora import add_lora
from trainlab.optim import build_optimizer
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon, seed_summary


class LoRAInitLearningRate(Phenomenon):
    """Teacher-student LoRA finetuning of a frozen linear layer: base ``W0`` (n x n, entries
    N(0, 1/n)), target ``W0 + sqrt(n/r) U V^T`` with U, V entries N(0, 1/n) (a rank-r change
    with O(1) outputs), r = 4, adapters from :func:`trainlab.models.lora.add_lora`
    initialized with ``lora-a`` (Init[A]) or ``lora-b`` (Init[B]); Adam, batch 64 of fresh
    N(0, I) inputs, 200 steps, mean squared error. For each init and width the learning rate
    is lowered from 4 by factors of 2 (down to 2^-11) until a run is *stable*: finite, with
    final loss below half the initial one; that lr is the largest stable lr, eta*. Widths
    n = 64, 256, 1024 (quick: 64, 1024).

    Pass criterion (from the paper's claim, written before running; the scalings
    Theta(n^-1/2) for Init[A] and Theta(n^-1) for Init[B] are the paper's large-width
    result): with eta* the median over 3 seeds at each width, eta* of Init[A] >= that of
    Init[B] at every width, and eta* decays more slowly with n for Init[A]: the slope of
    log2 eta* against log2 n is larger (less negative) for Init[A] by more than the slopes'
    seed-to-seed half-range. An exploratory sweep (lr 1 .. 2^-11, widths 64/256/1024) was
    run before the grid's top was fixed at 4, since at n = 64 both inits were stable at 1.

    Why the check measures the claim: the two inits differ only in which adapter factor is
    zero (both start at the base model, BA = 0); same teacher, data stream, optimizer and lr
    grid; the claim is about the largest usable lr and its width scaling, which is what
    eta* and its slope measure.

    Result (seed 0, one seed, before issue 12): eta* = 2, 1, 0.25 for Init[A] against 2,
    0.5, 0.0625 for Init[B] at n = 64, 256, 1024; slopes -0.75 and -1.25 (the paper: -1/2
    and -1, a gap of 1/2 as measured). Full, 3 seeds (0, 1000, 2000; 130 s): PASS, slope
    gap 0.42 +- 0.13 (half-range over seeds), Init[A]'s median eta* never below Init[B]'s
    (equal at n = 64, where both are stable at the grid's top region).

    Quick mode before issue 12's quick pass (the claim, same criterion, one seed): widths
    64 and 256 (n = 1024 does not fit in 20 s; before issue 12 the quick widths were 64 and
    512, where the factor-2 grid could not separate the inits: at n = 512 Init[B] at lr 0.5
    ends at 0.499 of its initial loss, just under the bar). The widths were chosen for time
    before the run: 5 s, eta* = 2, 1 for Init[A] against 2, 0.5 for Init[B], slope gap 0.5,
    PASS (one seed).

    Quick mode now (the claim, same two checks and statistic, no added tolerance; issue 12's
    quick pass, designed before its run from single lr scans and committed before it): widths 64
    and 1024, the full mode's extremes: the claim is that the gap grows with the width, so the
    width ratio sets how many factor-2 grid steps the slopes can differ by (paper: 1/2 per
    octave, i.e. two grid steps over 64 -> 1024, one over 64 -> 256, which the grid's
    quantization swamps). Single scans at 200 steps (outside the verdict, seeds 0, 1000, 2000):
    n = 1024 gives eta* = 0.25 for Init[A] and 0.0625 for Init[B] for every seed; n = 512 does
    not separate them (A 0.5, 0.25, 0.5; B 0.5, 0.25, 0.25). The number of Adam steps is not a
    free axis: at 100 steps the same scans move eta* (Init[A] at n = 1024 to 0.125, Init[B] to
    0.0156, Init[B] at n = 64 from 2 to 1), so it stays 200, with the full grid. 2 seeds (seed,
    seed + 1000; the full mode's first two). Cost: a run at n = 1024 costs ~0.8 s idle, two n x
    n products per step; the teacher's outputs are now cached across the runs of one scan (same
    draws and input stream for every lr, so the same tensors: bit-identical losses, checked
    against the previous code at n = 64 and 256), which halves every run after the first; ~12
    runs per seed at n = 1024 (5 for Init[A], 7 for Init[B]), about 6 s per seed idle. Quick
    scale-downs: widths 64 and 1024 (not 64, 256, 1024), 2 seeds (not 3).

    Quick result (CLI, ``--quick --threads 1``): PASS at both seeds tried. Seed 0 (seeds 0,
    1000): eta* = (2, 0.25) for Init[A] and (2, 0.0625) for Init[B] at n = (64, 1024) for both
    seeds, slope gap 0.5 +- 0 (half-range), min over widths of log2(eta*_A / eta*_B) 0 (equal at
    n = 64); 53 s wall at load ~7.5 (about 14 s idle; 29 s of CPU with ~5.6 s of imports). Seed
    7 (seeds 7, 1007): gap 0.375 +- 0.125, min log2 ratio 0.585; 58 s at load ~7.5. Full mode
    was rerun after the target cache (it touches the full code path): PASS, gap 0.4167 +- 0.125,
    Init[A]'s median eta* never below Init[B]'s, the numbers recorded before; 163 s wall at load
    ~8, 45 s of CPU.

    History: the quick mode's second version, replaced by the one above (a regression guard,
    not the claim; issue 12's first quick pass): the quick run was given the full mode's 3
    seeds (0, 1000, 2000; committed before the run), since
    a comparison is judged against its seed spread. At widths 64 and 256 the claim does
    not show over 3 seeds: eta* = (2, 1), (2, 1), (4, 1) for Init[A] against (2, 0.5),
    (2, 0.5), (2, 1) for Init[B], per-seed slope gaps 0.5, 0.5, -0.5, mean 0.17 +- 0.5
    (FAIL; 10.5 s of CPU). Seed 2000 is where the factor-2 grid cannot resolve these
    widths: Init[A] is stable at the grid's top (4) at n = 64, and Init[B] at n = 256 and
    lr 1 ends at 0.485 of its initial loss, just under the bar. Full mode separates the
    inits at n = 1024, which alone costs ~29 s of CPU over 3 seeds (~0.8 s per 200-step
    run, ~12 runs per seed while scanning down; the whole full run 43 s of CPU with the
    imports, rerun after this pass: PASS, gap 0.42 +- 0.12), so the claim cannot show in
    20 s; the single-seed quick PASS (the first version) was not judged against any seed
    spread. That version therefore kept the 3 seeds and widths 64, 256 and compared its two
    numbers with recorded ones (``quick_reference``, since removed); the current version
    above took the full mode's widest width instead, with 2 seeds, once the target cache
    halved a run's cost.

    Deviations: the paper finetunes RoBERTa and Llama and studies the infinite-width limit;
    here a single linear layer and a grid of factor-2 resolution. Scanning down from the top
    assumes that stability is monotone in the lr.
    """

    name = "lora-init-lr"
    papers = (32,)
    claim = ("With LoRA, initializing A randomly and B at zero (Init[A]) allows larger "
             "learning rates than the reverse (Init[B]), and the gap grows with the width.")

    paper_figure = ("the abstract and the large-width rates of the main text (Theta(n^-1/2) "
                    "vs Theta(n^-1) stable lr; theorem and figure numbers not re-read)")
    scale_downs = ("one frozen linear layer with a rank-4 LoRA instead of RoBERTa/Llama",
                   "widths 64-1024", "200 Adam steps per run, factor-2 lr grid, 3 seeds",
                   "quick: widths 64 and 1024, 2 seeds")
    RANK, BATCH, STEPS = 4, 64, 200
    LRS = tuple(2.0 ** -k for k in range(-2, 12))

    def _relative_loss(self, n: int, init: str, lr: float, seed: int,
                       targets: list[torch.Tensor] | None = None) -> float:
        """Final loss over initial loss of one run (``inf`` if it became non-finite).
        ``targets``, shared by the runs of one lr scan (same ``n``, ``init``, ``seed``, hence
        the same draws and the same input stream), caches the teacher's outputs per step:
        the same tensors as recomputing them, at half the cost of a step."""
        g = torch.Generator().manual_seed(seed)
        r = self.RANK
        base = nn.Linear(n, n, bias=False)
        with torch.no_grad():
            base.weight.normal_(0.0, 1 / math.sqrt(n), generator=g)
        u = torch.randn(n, r, generator=g) / math.sqrt(n)
        v = torch.randn(n, r, generator=g) / math.sqrt(n)
        target = base.weight.detach() + math.sqrt(n / r) * u @ v.T
        model = nn.Sequential(base)
        add_lora(model, rank=r)
        init_apply(model, "lora-a" if init == "A" else "lora-b", generator=g)
        opt = build_optimizer("adam", [p for p in model.parameters() if p.requires_grad], lr=lr)
        first = None
        targets = [] if targets is None else targets
        for step in range(self.STEPS):
            x = torch.randn(self.BATCH, n, generator=g)
            if step == len(targets):
                targets.append(x @ target.T)
            loss = (model(x) - targets[step]).pow(2).mean()
            value = loss.item()
            if not math.isfinite(value):
                return float("inf")
            first = value if first is None else first
            opt.zero_grad()
            loss.backward()
            opt.step()
        return value / first

    def _largest_stable_lr(self, n: int, init: str, seed: int) -> tuple[float, dict[str, float]]:
        tried, targets = {}, []
        for lr in self.LRS:
            rel = self._relative_loss(n, init, lr, seed, targets)
            tried[f"{lr:g}"] = rel
            if rel < 0.5:
                return lr, tried
        return float("nan"), tried

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        widths = (64, 1024) if quick else (64, 256, 1024)
        seeds = [seed + 1000 * i for i in range(2 if quick else 3)]
        eta: dict[str, list[list[float]]] = {"A": [], "B": []}
        tried: dict[str, dict[str, float]] = {}
        for sd in seeds:
            for init in ("A", "B"):
                row = []
                for n in widths:
                    lr, losses = self._largest_stable_lr(n, init, sd)
                    row.append(lr)
                    tried[f"{init}@{n} seed {sd}"] = losses
                eta[init].append(row)
        return {"widths": list(widths), "seeds": seeds, "eta_A": eta["A"], "eta_B": eta["B"],
                "tried": tried}

    def check(self, data: dict[str, Any]) -> list[Check]:
        logn = np.log2(np.array(data["widths"], dtype=float))
        a, b = np.array(data["eta_A"], dtype=float), np.array(data["eta_B"], dtype=float)
        n = a.shape[0]
        ok = bool(np.isfinite(a).all() and np.isfinite(b).all())
        if not ok:
            nan = float("nan")
            return [Check("min over widths of log2(eta*_A / eta*_B)", nan, ">= 0", False),
                    Check("slope of log2 eta* vs log2 n, Init[A] minus Init[B]", nan,
                          "> 0 and > its half-range over seeds", False)]
        worst = float(np.min(np.log2(np.median(a, 0) / np.median(b, 0))))
        gaps = [np.polyfit(logn, np.log2(ra), 1)[0] - np.polyfit(logn, np.log2(rb), 1)[0]
                for ra, rb in zip(a, b, strict=True)]
        gap, spread, _ = seed_summary(gaps)
        beats = gap > 0 and (n == 1 or gap > spread)
        return [
            Check("min over widths of log2(eta*_A / eta*_B)", worst,
                  ">= 0 (eta* the median over seeds)", worst >= 0, seeds=n),
            Check("slope of log2 eta* vs log2 n, Init[A] minus Init[B]", gap,
                  "> 0 and > its half-range over seeds (paper: -1/2 - (-1) = 1/2)", beats,
                  spread, n),
        ]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4.8, 3.4))
        ax.plot(data["widths"], np.median(data["eta_A"], 0), "o-", label="Init[A] (B = 0)")
        ax.plot(data["widths"], np.median(data["eta_B"], 0), "s-", label="Init[B] (A = 0)")
        ax.set(xscale="log", yscale="log", xlabel="width n", ylabel="largest stable lr (Adam)")
        ax.legend(fontsize=8)
        return fig


PHENOMENA.register("lora-init-lr", LoRAInitLearningRate, papers=(32,), reproduces=True,
                   summary="LoRA Init[A] (B = 0) tolerates larger lrs than Init[B], more so wider")
