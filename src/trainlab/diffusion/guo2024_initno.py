r"""InitNO: steer the initial noise of a sampler into the region of "valid" noises for a
prompt by optimising a reparameterised noise against an alignment score.

"InitNO: Boosting Text-to-Image Diffusion Models via Initial Noise Optimization" (Guo, Liu,
Zhang, Wang, Zhang & Zhou, CVPR 2024, papers.md row 107). A noise :math:`z` is *valid* when
its alignment score, computed from the model's response at the **first** denoising step, is
below a threshold. InitNO optimises :math:`z' = \mu + \sigma\odot z` over
:math:`(\mu, \log\sigma^2)` (both starting at 0) with Adam (lr 1e-2, eps 1e-3) on the score,
and after each step pulls the distribution back with Adam steps on
:math:`KL(N(\mu,\sigma^2)\,\|\,N(0, I))` (element mean) until it is at most 1e-3 ("distribution
alignment", so :math:`z'` stays a plausible Gaussian noise; the authors' code runs this loop
with the same Adam optimiser, per sample, until the threshold is met). Up to 5 rounds of 10
steps, each from fresh noise, stop at the first valid noise; otherwise the round with the
lowest score is rerun for 50 steps from its original noise (the authors' code).

Our alignment score (the analogue of the paper's cross-attention score
:math:`S_{CA} = 1 - \max` response of the subject token): with a CFG digits model
(:mod:`trainlab.diffusion.digits_denoiser` or :mod:`trainlab.diffusion.digits_prior`),
:math:`S(z) = 1 - p_{clf}(c \mid \hat x_0(z))`, where
:math:`\hat x_0` is Tweedie's estimate at a chosen step of the DDIM chain from z
(:func:`alignment_score`; the paper's choice is the first step); valid iff :math:`S < 0.2`
(the paper's threshold for :math:`S_{CA}`).

Deviations from the paper: a classifier on the first-step prediction replaces the
cross-attention maps (there is no text encoder or attention here), so the self-attention
(subject-mixing) score and the Attend-and-Excite nudges of the released pipeline are
absent; the KL loop has a (large) safety cap ``max_kl_steps`` with a warning. On the exact
digits prior at CFG weight 0.3 no noise reaches the validity threshold at the first step, so
every sample runs all rounds and the final 50 steps (``initno-digits`` phenomenon).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch

from trainlab.diffusion._registry import DIFFUSION
from trainlab.diffusion.digits_denoiser import TrainedDigitsModel
from trainlab.diffusion.digits_prior import DigitsModel
from trainlab.diffusion.noise_distribution import NoiseDistribution
from trainlab.diffusion.samplers import ddim_step, tweedie_x0
from trainlab.errors import check_range

ScoreFn = Callable[[torch.Tensor], torch.Tensor]
_LOG = logging.getLogger("trainlab")


def alignment_score(model: DigitsModel | TrainedDigitsModel, digit: int, weight: float,
                    num_steps: int = 20, at_step: int = 0) -> ScoreFn:
    r""":math:`S(z) = 1 - p_{clf}(c \mid \hat x_0)` per row of ``z`` ``(n, 64)``, with
    :math:`\hat x_0` Tweedie's estimate at step ``at_step`` of the ``num_steps``-step DDIM chain
    started at z (``at_step = 0``: the first step, as in the paper; later steps run the chain
    differentiably up to there)."""
    check_range("at_step", at_step, low=0, high=num_steps - 1, owner="alignment_score")
    eps_fn = model.guided_denoiser(digit, weight)
    ts = model.schedule.inference_timesteps(num_steps)

    def score(z: torch.Tensor) -> torch.Tensor:
        x = z
        for i in range(at_step + 1):
            t = torch.full((z.shape[0],), int(ts[i]), dtype=torch.long)
            eps = eps_fn(x, t)
            if i == at_step:
                x0 = tweedie_x0(x, eps, model.schedule.abar(ts[i]))
                return 1 - model.log_prob_digit(x0, digit).exp()
            x = ddim_step(x, eps, model.schedule.abar(ts[i]), model.schedule.abar(ts[i + 1]))
        raise AssertionError("unreachable")

    return score


@dataclass(frozen=True)
class InitNOResult:
    """Optimised noises ``(n, ...)``, their final scores, whether each is valid, the
    number of score evaluations (gradient steps) spent per row, and the largest final
    KL(N(mu, sigma^2) || N(0, I)) (element mean) over the optimisation rounds."""

    noise: torch.Tensor
    score: torch.Tensor
    valid: torch.Tensor
    steps: torch.Tensor
    kl: float = 0.0


def optimize_noise(score_fn: ScoreFn, z: torch.Tensor, *, steps: int = 10, lr: float = 1e-2,
                   kl_threshold: float = 1e-3, max_kl_steps: int = 100_000
                   ) -> tuple[torch.Tensor, torch.Tensor, float]:
    """One InitNO round from the noises ``z`` (rows are independent samples, each with its
    own per-element mu and log-variance). After each Adam step on the score, the same Adam
    optimiser takes steps on the KL of every row still above ``kl_threshold`` until none is
    (the authors' ``while kld_loss > 0.001`` loop, per sample); ``max_kl_steps`` only guards
    against a loop that never ends, with a warning. Returns the optimised noises, their
    scores and the largest row KL to the standard normal."""
    check_range("steps", steps, low=0, owner="optimize_noise")
    dist = NoiseDistribution(tuple(z.shape))
    opt = torch.optim.Adam(dist.parameters(), lr=lr, eps=1e-3)
    for _ in range(steps):
        opt.zero_grad()
        score_fn(dist.reparameterize(z)).sum().backward()
        opt.step()
        for k in range(max_kl_steps + 1):
            kl = dist.kl_to_standard(per_row=True)
            over = kl > kl_threshold
            if not over.any():
                break
            if k == max_kl_steps:
                _LOG.warning("optimize_noise: KL alignment stopped after max_kl_steps=%d with "
                             "KL %.3g > %.3g", max_kl_steps, kl.max().item(), kl_threshold)
                break
            opt.zero_grad()
            (kl * over).sum().backward()
            opt.step()
    with torch.no_grad():
        out = dist.reparameterize(z)
    with torch.enable_grad():
        final = score_fn(out).detach()
    return out, final, dist.kl_to_standard(per_row=True).max().item()


def initno(score_fn: ScoreFn, shape: tuple[int, ...], n: int, *, threshold: float = 0.2,
           rounds: int = 5, steps: int = 10, final_steps: int = 50, lr: float = 1e-2,
           generator: torch.Generator | None = None) -> InitNOResult:
    """InitNO for ``n`` independent samples of noise shape ``shape`` (module docstring)."""
    check_range("rounds", rounds, low=1, owner="initno")
    best_noise = torch.zeros((n, *shape), dtype=torch.float64)
    best_start = torch.zeros_like(best_noise)
    best_score = torch.full((n,), float("inf"), dtype=torch.float64)
    spent = torch.zeros(n, dtype=torch.long)
    worst_kl = 0.0
    for _ in range(rounds):
        todo = best_score >= threshold
        z = torch.randn((n, *shape), generator=generator, dtype=torch.float64)
        if not todo.any():
            continue
        out, sc, kl = optimize_noise(score_fn, z[todo], steps=steps, lr=lr)
        worst_kl = max(worst_kl, kl)
        spent[todo] += steps
        better = sc < best_score[todo]
        idx = torch.nonzero(todo).flatten()[better]
        best_noise[idx], best_start[idx], best_score[idx] = out[better], z[todo][better], \
            sc[better]
    todo = best_score >= threshold
    if todo.any() and final_steps > 0:
        out, sc, kl = optimize_noise(score_fn, best_start[todo], steps=final_steps, lr=lr)
        worst_kl = max(worst_kl, kl)
        spent[todo] += final_steps
        best_noise[todo], best_score[todo] = out, sc
    return InitNOResult(best_noise, best_score, best_score < threshold, spent, worst_kl)


DIFFUSION.register("initno", initno, papers=(107,),
                   summary="initial-noise optimization into the valid region of an alignment "
                           "score, with KL distribution alignment (InitNO)")

__all__ = ["InitNOResult", "alignment_score", "initno", "optimize_noise"]
