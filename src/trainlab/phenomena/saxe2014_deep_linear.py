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
from trainlab.init.orthogonal import orthogonal_
from trainlab.init.standard import xavier_normal_
from trainlab.models import build_model
from trainlab.optim import build_optimizer
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon
from trainlab.phenomena._trend import Slope, ols_slope
from trainlab.tasks import build_task
from trainlab.theory import mode_strength, mode_strength_discrete
from trainlab.train.stacked import keep_runs


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

    Deviations from the paper: sizes, singular values, initial strength and learning rate are this
    library's (the notes' setting above); inputs are whitened exactly on the training set; the
    depth-independence claim is checked through :func:`trainlab.theory.learning_time_vs_depth`, not
    by training deep networks here.
    """

    name = "saxe-sigmoids"
    papers = (1,)
    paper_figure = ("Saxe et al. 2014, Sec. 2: the closed-form mode trajectory (the sigmoid) "
                    "and its comparison with simulation (figure number not re-read)")
    scale_downs = ("a 16-input, 16-output linear teacher with 4 modes instead of the paper's "
                   "data", "one hidden layer", "64 exactly whitened samples")
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


def steps_to_learn(target: torch.Tensor, depth: int, width: int, init: str,
                   lrs: list[float], cap: int, generator: torch.Generator,
                   tol: float = 1e-3) -> tuple[int | None, float | None]:
    r"""Learning time of a deep linear network under full-batch GD with the best learning rate
    of a grid: the first step ``k`` at which, for some ``lr`` in ``lrs``, the loss
    :math:`\tfrac12\|W_D\cdots W_1 - A\|_F^2` (the whitened-input squared error summed over
    examples) is below ``tol`` times its initial value; ``(None, None)`` if no ``lr`` gets
    there within ``cap`` steps.

    All learning rates run at once from the same draw of the ``depth`` weight matrices
    (``width`` x ``width`` hidden layers, ``init`` = ``"orthogonal"`` or ``"xavier-normal"``
    from :mod:`trainlab.init`), batched along a leading axis; a copy whose loss is non-finite
    or above 1e6 times the initial loss has diverged and is dropped from the batch (it can
    never meet the threshold again). Returns ``(k, lr)``: the step and the rate that got
    there first. The product is formed from the output side (``out_dim x width`` partial
    products), which is the same map at a fraction of the cost when ``out_dim < width``.
    """
    tensor_init = {"orthogonal": orthogonal_, "xavier-normal": xavier_normal_}[init]
    out_dim, in_dim = target.shape
    m = len(lrs)
    weights = []
    for i in range(depth):
        rows = out_dim if i == depth - 1 else width
        cols = in_dim if i == 0 else width
        w = tensor_init(torch.empty(rows, cols, dtype=torch.float64), generator=generator)
        weights.append(w.expand(m, rows, cols).clone().requires_grad_(True))
    alive = list(range(m))  # the grid positions of the copies still in the batch
    rate = torch.tensor(lrs, dtype=torch.float64).view(m, 1, 1)
    first = None
    for k in range(cap + 1):
        prod = weights[-1]  # from the output side: out x width products, cheaper when the
        for w in reversed(weights[:-1]):  # output is narrower than the hidden layers
            prod = prod @ w
        loss = 0.5 * (prod - target).pow(2).sum((1, 2))
        value = loss.detach()
        if first is None:
            first = float(value[0])
        done = torch.nonzero(value < tol * first)
        if len(done):
            return k, lrs[alive[int(done[0, 0])]]
        if k == cap:
            return None, None
        grads = torch.autograd.grad(loss.sum(), weights)
        with torch.no_grad():
            for w, g in zip(weights, grads, strict=True):
                w.sub_(rate * g)
            keep = torch.isfinite(value) & (value < 1e6 * first)
            if not bool(keep.all()):  # diverged copies leave the batch
                if not bool(keep.any()):
                    return None, None
                weights, (rate,) = keep_runs(weights, keep), keep_runs([rate], keep)
                alive = [a for a, kp in zip(alive, keep.tolist(), strict=True) if kp]
    return None, None


class SaxeDepth(Phenomenon):
    r"""With random orthogonal initialization the learning time of a deep linear network stays
    (nearly) flat as depth grows; with scaled Gaussian initialization it grows with depth.

    Paper: Saxe, McClelland & Ganguli, "Exact solutions to the nonlinear dynamics of learning
    in deep linear neural networks", ICLR 2014, papers.md row 1; Sec. 3 (learning speed vs
    depth with the learning rate optimized per depth) and Fig. 6A (MNIST, deep linear nets,
    learning time vs number of layers: scaled random Gaussian grows, random orthogonal and
    pretrained stay flat).

    Setting (the paper's protocol, Sec. 2 and 3): deep linear networks with hidden width above
    the input width and far above the output width (the paper: 784 MNIST inputs, hidden layers
    of 1000 units, 10 classes), trained by full-batch gradient descent whose update sums over
    the examples; for each depth the fastest learning rate of a log-spaced grid (the paper: 20
    values over three decades; here 21, ratio sqrt(2), from 1 down to 1e-3, so that no depth
    picks an edge); learning time = the first step at which the training error is below a
    fixed small fraction (1e-3) of its initial value (the paper: a fixed error threshold at
    nearly complete learning). Initializations: ``orthogonal`` (gain 1) and
    ``xavier-normal`` from :mod:`trainlab.init`: std sqrt(2/(fan_in + fan_out)), i.e. the
    paper's std 1/sqrt(N) for its N x N hidden layers (Sec. 3 text; the Fig. 6 caption names
    the equivalent Glorot-Bengio scaling, uniform with the same variance).

    Scale-downs (axes the claim does not depend on): MNIST (784 inputs, 10 classes, hidden
    width 1000) -> a whitened linear teacher with 100 inputs, 10 outputs (one per class) and
    hidden width 128, keeping the paper's ratio inputs/hidden (0.78) and outputs well below
    the hidden width; its 10 singular values spread from 2 to 0.5 (with whitened inputs the
    error is :math:`\tfrac12\|W - A\|_F^2`, so the number of examples drops out); 3 seeds;
    runs capped at 1000 steps. Depths: the paper's range, N_l = 3 ... 100 layers, i.e. 2, 4,
    8, 16, 32, 64 and 99 weight matrices (quick: 16, 24, 32). Once a seed's run with one
    initialization is capped at a depth, its deeper depths are not run and count as capped
    too (the cost of a capped run grows with depth).
    Deviation: the output keeps the paper's shape (fewer outputs than inputs); a square
    input-output map was avoided because with square layers an orthogonal start whose
    determinant has the wrong sign cannot reach the target without passing a singular point
    (seen in trial runs: orthogonal depth 4 never converged for one draw), which has nothing to
    do with the claim.

    Changed after the censored result below (disclosed; the reviewer decides): (1) the width.
    The earlier runs used hidden width 32 = input width 32 with 10 outputs, far from the
    paper's 1000 hidden units on 784 inputs and 10 classes. For products of square Gaussian
    layers of width N the k-th singular value shrinks per layer by the Lyapunov exponent
    (1/2)(psi((N-k+1)/2) + ln(2/N)), about -0.19 for the 10th value at N = 32 but -0.04 at
    N = 128 and -0.005 at the paper's N = 1000: at width 32 the ten target modes start
    exponentially weak, so the Gaussian arm at depth >= 32 was censored by the cap. The
    setting moved to the paper's proportions (above); the paper reports Gaussian learning
    times that grow with depth (Sec. 3), not runs that never learn. One seed was tried at the
    new width before this commit (diagnostic, outside the CLI): Gaussian 124, 396 and 950
    steps at depths 16, 32 and 64, orthogonal 5, 7, 10, 15, 14, 16, 13 steps at depths 2 ...
    99. (2) The number of seeds, 5 -> 3 (the rules' minimum), for
    the cost of the wider layers. (3) How a capped run enters the statistic, now stated:
    a capped run is right-censored (its true time is above the cap) and counts at the cap.
    The least-squares slope is sum_i w_i y_i with w_i proportional to x_i - mean(x)
    (x = log2 depth over the pooled seeds), so a value raised at a depth above the mean
    log-depth raises the slope: when every capped Gaussian run lies at such a depth (here 64
    and 99), the slope computed with the cap is a lower bound of the slope of the true times
    and check (c) is conservative. A capped Gaussian run at a fit depth at or below the mean
    (here 32) makes the slope no bound at all, and check (d) then fails ("not measured"
    rather than "flat"). This is not a strict bound on the interval's width (the capped
    values carry no seed scatter); it is the slope's bound only. The statistic, the fit
    depths, the 0.5 bound and check (c) are unchanged; (d) only adds a way to fail.

    Criterion (written before the first full run; (d) added before the run at width 128):
    with t(D) the learning time and the slope b of log2 t against log2 D fitted by least
    squares over the pooled seeds at the three deepest depths (first run: 8, 16, 32; at the
    paper's depths: 32, 64, 99; old quick guard: 4, 8, 16; quick now: 16, 24, 32), with its
    95% confidence interval:
    (a) orthogonal learns at every depth (finite learning time: the paper's "finite,
    depth-independent delay"); (b) orthogonal is flat: the upper end of its slope CI is < 0.5
    (learning time grows by less than sqrt(2) per doubling of depth); (c) Gaussian grows, by
    more than the seed spread: the lower end of its slope CI exceeds the upper end of the
    orthogonal one; (d) no Gaussian run is capped at a fit depth at or below the mean
    log-depth (see (3) above). Each seed draws the teacher's singular vectors and the initial
    weights.
    Why this measures the claim: both arms run on the same teachers with the same learning-rate
    search, so the only difference between the arms is the initialization, and the slope
    over depth is the paper's "flat vs growing" in one number with its uncertainty.
    Where the numbers come from: the paper states the trend (Fig. 6A and Sec. 3: orthogonal
    and pretrained learning times independent of depth, scaled Gaussian growing) and gives no
    number for it; the 0.5 bound in (b) was chosen here, not read from the paper. It stays
    as written.

    Result at the paper's proportions (width 128, 100 inputs, 10 outputs; depths 2 ... 99):
    PASS (``reproduces=True``). Full mode with the CLI (3 seeds): 356 s wall on the shared
    2-core machine at load ~8 falling to ~2, 112 s of CPU time (about 2 min on an idle
    machine). Orthogonal learning times (steps, median over seeds, range in brackets) 5, 9
    [7-10], 10 [9-10], 14 [14-15], 14, 15 [14-16], 12 [12-13] at depths 2, 4, 8, 16, 32, 64,
    99, every run learned, the best learning rate falling from 0.35 (depth 2) to 0.0039
    (depth 99), inside the grid; slope over depths 32-99 -0.09 with 95% CI [-0.24, 0.06]:
    flat, (b) passes. Scaled Gaussian: 7 [6-7], 22 [21-27], 50 [48-52], 121 [121-128], 403
    [324-431] steps at depths 2-32; at depth 64 one seed learned (897 steps) and two were
    capped, at depth 99 none learned within the cap; slope over depths 32-99 (capped runs at
    the cap, all at depths 64 and 99, so a lower bound by (3)) 0.89 with CI [0.56, 1.23]: its
    lower end is 0.50 above the orthogonal upper end, (c) passes, and (d) holds (no capped
    run at depth 32). The Gaussian/orthogonal ratio of median times grows from 1.4 (depth 2)
    to 29 (depth 32) and at least 83 (1000/12) at depth 99, as the paper describes (a modest
    gap at depths near 6, widening at larger depths). Per-depth numbers: the same code path
    rerun outside the CLI
    (same checks to the last digit; the CLI records the checks only).
    Quick mode (design 2 of issue 12's quick pass, written and committed before its run;
    the claim itself: the same four checks, statistic and 0.5 bound, no tolerance added):
    design 1 below plus the third seed its record names as what the flatness check needs.
    Depths 16, 24, 32 weight matrices, all three fitted (the flat part of the orthogonal
    curve: full-mode medians 14, 14, 15 steps at 16, 32, 64); 3 seeds (``seed`` ...
    ``seed + 2``); hidden width 64 with 50 inputs (inputs/hidden 0.78 kept, 10 outputs);
    runs capped at 400 steps (a capped Gaussian run at 24 or 32, above the mean log-depth
    4.53, only lowers the Gaussian slope, (3) above; at 16, where (d) forbids one, single
    runs needed 122-158 steps). Quick scale-downs: depths 16-32 (not 2-99), width 64 and 50
    inputs (not 128 and 100), cap 400 (not 1000); the seeds stay 3. The other seed tried
    will be 7, the one design 1 failed on. Why it is affordable now (measured before this
    design, one thread, load ~7): design 1's two seeds re-timed at 9.3 s of CPU for the runs
    (less than half the 20-22 s recorded below; measured here with ``time.process_time``
    around the same loop), a third seed adds ~4.5 s, so ~14 s plus ~4.3 s of CLI imports,
    ~18 s. Stacking the seeds as well
    (:mod:`trainlab.train.stacked`'s idea: every (seed, learning rate) copy of a depth in one
    batch) was measured and does not pay here: :func:`steps_to_learn` already batches the
    21 learning rates, and at these shapes a step is bound by the batched products and the
    update's elementwise work, which grow with the batch (139 -> 330 us per layer-step from
    4 to 12 copies at width 64); three seeds stacked took 14.2 s against 12.8 s one seed
    after the other (0.90x; depths 16/24/32, cap 400, seeds 0-2 with a fresh generator per
    call, not this run's draws). Those timing runs printed their learning times (disclosed:
    orthogonal 12, 16, 15 / 16, 14, 13 / 14, 15, 15 steps at depths 16 / 24 / 32; Gaussian
    151, 151, 144 / 307, 265, 224 / all capped), and a timing-only run of seeds 50-52 with
    depth 48 added took 12.7 s (its learning times not printed). The earlier regression guard
    (depths 2-16, 3 seeds, width 128, cap 1000; the orthogonal curve still rises there, CI
    high 0.5495 against 0.5; recorded: 12 orthogonal runs learned, contrast 0.4172, no
    Gaussian run capped) is removed.
    Result of design 2: PASS at both seeds (CLI, ``--quick --threads 1``,
    ``OMP_NUM_THREADS=1``, load ~8 on the shared 2-core machine). Seed 0 (seeds 0-2): all 9
    orthogonal runs learned, orthogonal slope CI high 0.285, Gaussian CI low minus
    orthogonal CI high 0.963, no Gaussian run capped at 16; 18.8 s of CPU (user + sys,
    imports included), 46.5 s wall at 40% of a core. ``--seed 7`` (seeds 7-9, design 1's
    failing seed): 9 learned, CI high 0.337, contrast 0.494, none capped at 16; 17.5 s of
    CPU, 44.5 s wall at 39%.
    Afterwards :func:`steps_to_learn` drops its stopped copies through
    :func:`trainlab.train.stacked.keep_runs` (the same row selection as before, now shared
    and tested), so full mode is rerun; stated before that rerun: the same verdict and the
    same four check values to the last printed digit (the arithmetic is unchanged).
    Rerun (CLI, 3 seeds, ``--threads 1``, load 7-10): PASS; 21 orthogonal runs learned,
    orthogonal CI high 0.05655 (recorded 0.06), contrast 0.5027 (recorded 0.50), no capped
    Gaussian run at a fit depth at or below the mean; 112.7 s of CPU, 261 s wall at 43% of a
    core. The quick run at seed 0 after the change: the same four values (9, 0.2851, 0.9633,
    0).
    Design 1, tried for a quick mode that checks the claim (issue 12's quick pass; designed from the
    records above and single-run timings, committed before its run; not kept): depths 16, 24, 32
    (all fitted; the flat part of the orthogonal curve), 2 seeds, hidden width 64 with 50 inputs
    (inputs/hidden 0.78 kept), cap 400 (a capped Gaussian run at 24 or 32, above the mean
    log-depth 4.53, only lowers its slope). Seed 0: PASS (orthogonal CI high 0.423, contrast
    0.716, nothing capped at 16); seed 7: FAIL (orthogonal CI high 0.624, contrast -0.133): over
    one octave of depth with 2 seeds the integer learning times (12-16 steps) leave the
    orthogonal slope's interval too wide for the 0.5 bound. It also took 89 and 77 s wall at
    load 6-8 (about 25 s idle; 20-22 s of CPU besides ~5.6 s of imports), over the 20 s budget:
    the Gaussian arm costs steps x depth (~21k layer-steps per seed; at width 64 a step is bound
    by per-operation overhead, so float32 did not help: 3.4 vs 3.8 s for the capped depth-32
    run). A wider depth range or a third seed, which the flatness check needs, costs more, and a
    lower cap weakens the Gaussian lower bound (the censored values bend its fit); so the quick
    run stayed the guard until design 2 above.

    Result at the paper's depths (2 ... 99 weight matrices), width 32: FAIL
    (``reproduces=False``), then on the contrast check (c) only. Full mode (5 seeds; 242 s wall
    on the shared 2-core machine at load ~14, 40 s of CPU time): orthogonal learning times
    (steps, median over seeds) 9, 15, 21, 33, 37, 34, 33 at depths 2, 4, 8, 16, 32, 64, 99,
    every run learned, the best learning rate falling from 0.35 (depth 2) to 0.0039 (depth 99),
    inside the grid; slope over depths 32-99 -0.07 with 95% CI [-0.25, 0.10]: flat, check (b)
    passes with room. Gaussian: 9, 30, 87, 378 steps at depths 2-16, and no seed learned at
    depth 32 within the 1000-step cap, so depths 32, 64 and 99 all count at the cap and its
    slope over the three deepest depths is exactly 0 with a zero-width interval: (c) fails
    because the Gaussian arm is censored there, not because it stops growing (its time grows 42x
    from depth 2 to 16 while the orthogonal one grows 3.7x, and it does not finish at all from
    depth 32). Measuring the Gaussian growth at depths 32-99 needs a cap far above 1000 steps (a
    depth-99 step over the 21 learning rates costs ~0.1 s of CPU). A plausible reason for the
    censoring, not tested: with hidden width equal to the input width (32) the product of square
    Gaussian layers is far worse conditioned than with the paper's 1000 hidden units on 784
    inputs. The per-depth numbers come from the same code path rerun outside the CLI (the CLI
    records the checks only).

    First result (depths 2 ... 32, width 32): FAIL (``reproduces=False``), on the flatness
    check only.
    Full mode (5 seeds, first run with a 1500-step cap): orthogonal learning times (steps,
    median over seeds) 9, 15, 21, 33, 37 at depths 2, 4, 8, 16, 32, every run learned; slope
    over depths 8-32 about 0.33 with 95% CI upper end 0.524 against the pre-registered 0.5
    (growth of about 1.25x per doubling, flattening between 16 and 32). Gaussian: 8, 35, 83, 348
    steps at depths 2-16 and no run learned at depth 32 within the cap; its slope CI lies 1.3
    above the orthogonal one, so the contrast the paper draws (Gaussian grows, orthogonal much
    less) is reproduced (rerun with the 1000-step cap: same orthogonal numbers, the Gaussian CI
    1.0 above; 266 s), but the orthogonal curve is not flat to the stated tolerance in this
    range of depths. Tried: only this setting; a square 32 x 32 teacher (trial runs) was dropped
    for the determinant-sign obstruction described above, before any criterion was evaluated.
    The threshold was not moved.
    """

    name = "saxe-depth"
    papers = (1,)
    claim = ("Random orthogonal initialization gives deep linear networks learning times "
             "that stay nearly flat as depth grows, while scaled-Gaussian initialization "
             "slows down with depth.")
    paper_figure = "Saxe et al. 2014, Fig. 6A (learning time vs depth, MNIST)"
    scale_downs = ("MNIST -> whitened linear teacher, 100 inputs, 10 outputs",
                   "hidden width 1000 -> 128 (inputs/hidden 0.78 as 784/1000)", "3 seeds",
                   "runs capped at 1000 steps (counted as 1000, a lower bound)",
                   "quick: depths 16-32, width 64 with 50 inputs, cap 400 (3 seeds)")

    CAP = 1000
    WIDTH, IN, OUT = 128, 100, 10  # the paper's 1000 hidden : 784 inputs : 10 classes, scaled
    DEPTHS = (2, 4, 8, 16, 32, 64, 99)  # weight matrices: the paper's N_l = 3 ... 100 layers
    # quick: the flat part of the orthogonal curve, half the width, a lower cap
    QUICK_CAP, QUICK_WIDTH, QUICK_IN, QUICK_DEPTHS = 400, 64, 50, (16, 24, 32)

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        depths = self.QUICK_DEPTHS if quick else self.DEPTHS
        seeds = range(seed, seed + 3)
        cap = self.QUICK_CAP if quick else self.CAP
        width, n_in = (self.QUICK_WIDTH, self.QUICK_IN) if quick else (self.WIDTH, self.IN)
        lrs = [2.0 ** (-k / 2) for k in range(21)]
        spectrum = np.linspace(2.0, 0.5, self.OUT)
        times = {"orthogonal": np.full((len(seeds), len(depths)), np.nan),
                 "xavier-normal": np.full((len(seeds), len(depths)), np.nan)}
        best_lr = {k: np.full_like(v, np.nan) for k, v in times.items()}
        for i, sd in enumerate(seeds):
            task = build_task("teacher-linear", in_dim=n_in, out_dim=self.OUT,
                              singular_values=tuple(spectrum), n_train=n_in, n_test=1,
                              data_seed=sd)
            info = task.info
            target = info["U"][:, : self.OUT] @ torch.diag(info["S"][: self.OUT]) \
                @ info["V"][:, : self.OUT].T
            g = torch.Generator().manual_seed(10_000 + sd)
            for init in times:
                for j, d in enumerate(depths):
                    k, lr = steps_to_learn(target, d, width, init, lrs, cap, g)
                    if k is None:  # capped: the deeper depths of this seed and init are not
                        break      # run and count at the cap too (see the docstring)
                    times[init][i, j], best_lr[init][i, j] = k, lr
        return {"depths": list(depths), "fit_depths": list(depths[-3:]), "cap": cap,
                "orthogonal": times["orthogonal"], "gaussian": times["xavier-normal"],
                "lr_orthogonal": best_lr["orthogonal"], "lr_gaussian": best_lr["xavier-normal"],
                "lr_grid": (min(lrs), max(lrs))}

    @staticmethod
    def _slope(data: dict[str, Any], key: str) -> Slope:
        depths, fit = data["depths"], data["fit_depths"]
        t = np.nan_to_num(np.asarray(data[key], dtype=float), nan=data["cap"])
        cols = [depths.index(d) for d in fit]
        x = np.log2(np.repeat(np.array(fit, dtype=float)[None], t.shape[0], 0)).ravel()
        return ols_slope(x, np.log2(np.maximum(t[:, cols], 1.0)).ravel())

    @staticmethod
    def censored_below_mean(data: dict[str, Any], key: str) -> int:
        """Capped runs of arm ``key`` at fit depths whose log2 is not above the mean log2 of
        the fit depths: there the OLS weight ``x_i - mean(x)`` is <= 0, so counting the run at
        the cap (below its true time) does not bound the slope from below."""
        depths, fit = data["depths"], data["fit_depths"]
        x = np.log2(np.asarray(fit, dtype=float))
        cols = [depths.index(d) for d, xi in zip(fit, x, strict=True) if xi <= x.mean()]
        return int(np.isnan(np.asarray(data[key], dtype=float)[:, cols]).sum())

    def check(self, data: dict[str, Any]) -> list[Check]:
        orth = np.asarray(data["orthogonal"], dtype=float)
        b_o, b_g = self._slope(data, "orthogonal"), self._slope(data, "gaussian")
        shallow_capped = self.censored_below_mean(data, "gaussian")
        return [
            Check("orthogonal runs that learned", float(np.isfinite(orth).sum()),
                  f"== {orth.size} (every depth and seed)", bool(np.isfinite(orth).all())),
            Check("orthogonal slope d log2 t / d log2 D, CI high", b_o.high,
                  "< 0.5 (flat: < sqrt(2)x per doubling)", b_o.high < 0.5),
            Check("Gaussian slope CI low - orthogonal CI high", b_g.low - b_o.high,
                  "> 0 (grows more, beyond the seed spread)", b_g.low > b_o.high),
            Check("Gaussian runs capped at fit depths with log2 D <= mean (slope no bound)",
                  float(shallow_capped), "== 0 (capped runs only where the cap is a lower "
                  "bound of the slope)", shallow_capped == 0),
        ]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.4))
        cap = data["cap"]
        for i, (key, label) in enumerate((("orthogonal", "orthogonal"),
                                          ("gaussian", "scaled Gaussian"))):
            t = np.nan_to_num(np.asarray(data[key], dtype=float), nan=cap)
            med = np.median(t, 0)
            ax.plot(data["depths"], med, "o-", color=f"C{i}", label=label)
            ax.fill_between(data["depths"], t.min(0), t.max(0), color=f"C{i}", alpha=0.2)
        ax.axhline(cap, color="gray", ls=":", lw=1)
        ax.set(xscale="log", yscale="log", xlabel="depth (weight matrices)",
               ylabel="steps to 1e-3 of initial loss", title="median and range over seeds")
        ax.legend(fontsize=8)
        return fig


PHENOMENA.register("saxe-sigmoids", SaxeSigmoids, papers=(1,), reproduces=True,
                   summary="deep linear modes follow the closed-form sigmoids under GD")
PHENOMENA.register("saxe-depth", SaxeDepth, papers=(1,), reproduces=True,
                   summary="orthogonal init: learning time nearly depth-independent")
