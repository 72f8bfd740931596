"""Gradient starvation: under cross-entropy, once the data are linearly separable along one
direction the network's dominant feature grows and a second one is starved; spectral
decoupling (a penalty on the squared logits) suppresses the first and lets the second grow
(Pezeshki, Kaba, Bengio, Courville, Precup & Lajoie, "Gradient Starvation: A Learning
Proclivity in Neural Networks", NeurIPS 2021; papers.md row 74)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats

from trainlab.init import apply as init_apply
from trainlab.models import build_model
from trainlab.optim import build_optimizer
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon


def shifted_moons(n: int, margin: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's two-moons variant: scikit-learn's two moons (noise 0.1, ``random_state``
    ``seed``), labels ``s = +-1``; moved by (-0.5, -0.3 s); the second coordinate centred,
    then folded so that class +1 lies at or below 0 and class -1 at or above it; then pushed
    ``margin`` further apart (class s by ``-s margin``), so ``margin > 0`` leaves a gap
    of 2 margin (linearly separable along that coordinate) and ``margin < 0`` an overlap;
    finally the two coordinates are swapped (the separating coordinate comes first).
    Returns ``x`` ``(n, 2)`` float32 and ``s`` ``(n,)`` in {-1, +1}."""
    from sklearn.datasets import make_moons

    pts, lab = make_moons(n_samples=n, noise=0.1, random_state=seed)
    s = 2.0 * lab - 1.0
    h, v = pts[:, 0] - 0.5, pts[:, 1] - 0.3 * s
    v = v - v.mean()
    v = -s * np.abs(v) - s * margin
    x = np.stack([v, h], axis=1)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(s, dtype=torch.float32)


def ntk_features(kernel: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
    """The paper's features ``z = |U^T f|``: the outputs on the training points projected on
    the left singular vectors ``U`` of the tangent kernel Gram matrix (columns in decreasing
    order of singular value; ``kernel`` is symmetric PSD, so they are its eigenvectors)."""
    evals, evecs = torch.linalg.eigh(kernel.double())
    u = evecs[:, torch.argsort(evals, descending=True)]
    return (u.T @ outputs.double()).abs()


def batched_two_layer_relu(params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``f_r(x) = w2_r . relu(W1_r x + b1_r) + b2_r`` for R networks at once: ``params`` =
    ``[W1 (R, m, d), b1 (R, m), w2 (R, m), b2 (R,)]``, ``x`` ``(R, n, d)``; returns ``(R, n)``.
    Each run's gradient of a sum over runs is its own, and SGD (momentum, weight decay) is
    elementwise, so one optimizer over these stacked tensors trains R independent runs."""
    w1, b1, w2, b2 = params
    h = torch.relu(torch.einsum("rnd,rmd->rnm", x, w1) + b1[:, None, :])
    return torch.einsum("rnm,rm->rn", h, w2) + b2[:, None]


def two_layer_relu_ntk(w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor,
                       x: torch.Tensor) -> torch.Tensor:
    r"""Tangent kernel Gram matrix ``J J^T`` ``(n, n)`` of ``f(x) = w2 . relu(W1 x + b1) + b2``
    over all parameters, in closed form: with :math:`a_i = 1[W_1 x_i + b_1 > 0]` and
    :math:`h_i = \mathrm{relu}(W_1 x_i + b_1)`,
    :math:`K_{ik} = (x_i \cdot x_k + 1) \sum_j w_{2j}^2 a_{ij} a_{kj} + h_i \cdot h_k + 1`
    (the terms of W1, b1, w2 and b2)."""
    pre = x @ w1.T + b1
    a, h = (pre > 0).to(x.dtype), torch.relu(pre)
    first = (a * w2.pow(2)) @ a.T
    return (x @ x.T + 1) * first + h @ h.T + 1


class GradientStarvation(Phenomenon):
    """The paper's two-moons experiment, setting read from the authors' code
    (mpezeshki/Gradient_Starvation, ``Figure_2/moon_fig_2.py``): n = 300 points
    (:func:`shifted_moons`); a two-layer ReLU network 2 -> 500 -> 1 with PyTorch's default
    init; labels +-1 and the mean logistic loss ``log(1 + exp(-y f))``; full-batch SGD,
    lr 1e-2, momentum 0.9, weight decay 2e-4, 10000 epochs. Three arms per seed, one
    initial network shared by the three: cross-entropy on overlapping moons (margin -0.1),
    cross-entropy on separable moons (+0.1), and spectral decoupling on separable moons
    (loss + 0.003 mean f^2). Measured as in the code: ``U`` = left singular vectors of the
    tangent kernel Gram matrix ``J J^T`` at init (all parameters, on the training points),
    features ``z = |U^T f|`` at the end of training; the code's two plotted features are
    columns 1 and 6 (0-based), here ``z1`` and ``z2``. Full: 5 seeds (the paper: 10);
    quick: 3 seeds, 1000 epochs.

    Pass criterion (the figure's analysis of the three cases: separability increases z1 and
    starves z2; spectral decoupling suppresses z1 and lets z2 grow; written before the full
    run): for each of the four comparisons, the per-seed log ratio of the final features
    has a mean whose 95% t-interval over seeds excludes 0 in the claimed direction:
    (a) z1, CE at +0.1 over CE at -0.1 > 1; (b) z2, the same ratio < 1; (c) z1, SD over CE at
    +0.1 < 1; (d) z2, SD over CE at +0.1 > 1. Precondition (e): every separable-data run
    classifies all its training points.

    Result (full mode, 5 seeds, recorded after the criterion was committed): PASS.
    Geometric means over seeds (95% t half-width of the mean log ratio): (a) z1 separable /
    overlapping 1.91 (0.10); (b) z2 separable / overlapping 0.18 (0.25); (c) z1 SD / CE 0.24
    (0.02); (d) z2 SD / CE 3.01 (0.39); every separable run fits its training set. 1189 s wall
    on the shared machine (load ~15), 155 s of CPU (+45 s system), so about 3 minutes on an
    idle machine.

    Quick mode (the claim, the same criterion (a)-(e), no extra tolerance; set before the
    run, issue 12's quick pass): 3 seeds (so the 95% t-interval has 2 degrees of freedom,
    t = 4.30) and 1000 epochs instead of 10000, the features read at the end of those 1000
    epochs; the epoch count was chosen for time only (9 stacked runs at ~1.2 ms of CPU per
    run and epoch, ~11 s). Before this the quick run was a regression guard (2 seeds, 2000
    epochs: a 2-seed t-interval, t = 12.7, cannot exclude 0); its numbers pointed the same
    way as the full run ((a) 1.51, (b) 0.18, (c) 0.28, (d) 6.26). Result (quick, seeds 0,
    1, 2, run after this setting was committed): PASS, geometric means (95% half-width in
    log units) (a) 1.49 (0.21), (b) 0.20 (1.05), (c) 0.32 (0.04), (d) 4.44 (0.73), (e) every
    separable run fits its training set; 15.9 s user + 3.3 s system CPU for the whole CLI
    call (about 4 s of it the imports), one thread.

    Before issue 12 this was an invented two-feature task with a shuffled-feature test that
    was confounded (a shuffled dominant feature keeps its magnitude, so any model using it is
    at chance); it is replaced by the paper's own setup and measure.

    Deviations: the three arms share one initial network per seed (the code draws a new one for
    each arm); all runs are trained at once on stacked tensors (:func:`batched_two_layer_relu`,
    the same updates as separate runs) and the kernel is computed in closed form
    (:func:`two_layer_relu_ntk`), both for speed; seeds come from ``torch.Generator`` (the data
    from scikit-learn's ``random_state``, as in the code); only the final features are compared,
    not the whole trajectories; only the abstract and the authors' code could be read here, the
    figure's analysis is taken from the figure as recalled, matching the code's three arms and
    two plotted features.
    """

    name = "gradient-starvation"
    papers = (74,)
    paper_figure = ("the two-moons figure: decision boundaries at margin -0.1, +0.1, +0.1 "
                    "with SD, and the dynamics of two NTK features z1, z2 (authors' "
                    "Figure_2/moon_fig_2.py)")
    scale_downs = ("5 seeds (the paper: 10)", "quick: 3 seeds, 1000 epochs (full: 10000)")
    claim = ("When the data become linearly separable along one direction, cross-entropy "
             "training grows the dominant feature and starves a second one (gradient "
             "starvation); spectral decoupling suppresses the first and lets the second grow.")

    N, WIDTH, LR, SD_COEF, WD = 300, 500, 1e-2, 0.003, 2e-4
    ARMS = (("ce_overlap", -0.1, 0.0), ("ce_separable", 0.1, 0.0), ("sd_separable", 0.1, 0.003))
    FEATURES = (1, 6)

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        epochs = 1000 if quick else 10000
        seeds = [seed + i for i in range(3 if quick else 5)]
        keys, xs, ss, coefs, inits = [], [], [], [], []
        for sd in seeds:
            net = build_model("mlp", (2,), 1, depth=1, width=self.WIDTH)
            init_apply(net, "torch-default", generator=torch.Generator().manual_seed(sd))
            first, last = net[1], net[3]
            init = (first.weight.detach(), first.bias.detach(), last.weight.detach()[0],
                    last.bias.detach()[0])
            for arm, margin, coef in self.ARMS:
                x, s = shifted_moons(self.N, margin, sd)
                keys.append(f"{arm}@{sd}")
                xs.append(x)
                ss.append(s)
                coefs.append(coef)
                inits.append(init)
        x, s = torch.stack(xs), torch.stack(ss)
        params = [torch.stack([i[k] for i in inits]).clone().requires_grad_(True)
                  for k in range(4)]
        kernels = [two_layer_relu_ntk(*(p[r].detach() for p in params[:3]), x[r])
                   for r in range(len(keys))]
        coef = torch.tensor(coefs)
        opt = build_optimizer("sgd", params, lr=self.LR, momentum=0.9, weight_decay=self.WD)
        for _ in range(epochs):
            f = batched_two_layer_relu(params, x)
            # the sum over runs of each run's mean loss: every run gets its own gradient
            loss = (F.softplus(-s * f).mean(1) + coef * f.pow(2).mean(1)).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            f = batched_two_layer_relu(params, x)
        runs = {}
        for r, key in enumerate(keys):
            z = ntk_features(kernels[r], f[r])
            runs[key] = {"z": [float(z[i]) for i in self.FEATURES],
                         "train_acc": float((torch.sign(f[r]) == s[r]).float().mean())}
        return {"seeds": seeds, "epochs": epochs, "runs": runs}

    @staticmethod
    def _log_ratios(data: dict[str, Any], num: str, den: str, k: int) -> np.ndarray:
        return np.array([math.log(data["runs"][f"{num}@{sd}"]["z"][k]
                                  / data["runs"][f"{den}@{sd}"]["z"][k])
                         for sd in data["seeds"]])

    def check(self, data: dict[str, Any]) -> list[Check]:
        out = []
        for name, num, den, k, sign in (
                ("(a) z1: CE separable / CE overlapping", "ce_separable", "ce_overlap", 0, 1),
                ("(b) z2: CE separable / CE overlapping", "ce_separable", "ce_overlap", 1, -1),
                ("(c) z1: SD / CE, separable", "sd_separable", "ce_separable", 0, -1),
                ("(d) z2: SD / CE, separable", "sd_separable", "ce_separable", 1, 1)):
            r = self._log_ratios(data, num, den, k)
            mean = float(r.mean())
            half = (float(stats.t.ppf(0.975, len(r) - 1) * r.std(ddof=1) / math.sqrt(len(r)))
                    if len(r) > 1 else math.inf)
            ok = (mean - half > 0) if sign > 0 else (mean + half < 0)
            want = "> 1" if sign > 0 else "< 1"
            out.append(Check(f"{name} (geometric mean over seeds)", math.exp(mean),
                             f"{want}, 95% t-interval of the mean log ratio excluding 0 "
                             f"(spread: its half-width in log units, {half:.3g})",
                             ok, half, len(r)))
        worst = min(data["runs"][f"{arm}@{sd}"]["train_acc"] for sd in data["seeds"]
                    for arm in ("ce_separable", "sd_separable"))
        out.append(Check("(e) lowest training accuracy on separable moons", worst,
                         "== 1 (precondition)", worst == 1.0))
        return out

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
        labels = {"ce_overlap": "CE, margin -0.1", "ce_separable": "CE, margin +0.1",
                  "sd_separable": "SD, margin +0.1"}
        for k, ax in enumerate(axes):
            for j, arm in enumerate(labels):
                vals = [data["runs"][f"{arm}@{sd}"]["z"][k] for sd in data["seeds"]]
                ax.plot([j] * len(vals), vals, "o", alpha=0.7)
            ax.set(xticks=range(3), xticklabels=list(labels.values()),
                   ylabel=f"final |z{k + 1}| (feature {self.FEATURES[k]})")
            ax.tick_params(axis="x", labelsize=7)
        fig.tight_layout()
        return fig


PHENOMENA.register("gradient-starvation", GradientStarvation, papers=(74,), reproduces=True,
                   summary="CE starves a second feature on separable data; SD restores it")
