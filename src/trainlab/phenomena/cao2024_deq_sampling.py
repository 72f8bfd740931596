"""The DDIM chain solved as one fixed point matches the serial sampler in fewer sequential
network evaluations, and gradients through the fixed point steer the initial noise (Cao,
Shi, Zhang, Zhang, Timofte & Van Gool, "Deep Equilibrium Diffusion Restoration with
Parallel Sampling", CVPR 2024; papers.md row 49)."""

from __future__ import annotations

from typing import Any

import torch

from trainlab.diffusion.cao2024_deq_sampling import (
    chain_coefficients,
    deq_ddim_sample,
    deq_noise_gradient,
    serial_chain,
)
from trainlab.diffusion.mixtures import signal_mixture
from trainlab.diffusion.schedules import vp_schedule
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon, seed_effect_check


def pool2(x: torch.Tensor) -> torch.Tensor:
    """2x average pooling of signals ``(n, L)`` -> ``(n, L/2)`` (the degradation)."""
    return x.reshape(x.shape[0], -1, 2).mean(-1)


class DEQParallelSampling(Phenomenon):
    """Exact-score prior: the 1-D signal mixture (length 32, :func:`signal_mixture`), linear
    VP schedule T = 1000, DDIM with N = 25 steps (eta = 0; the authors' README example uses
    25 steps), float64, 16 samples solved as one fixed point by Anderson with the authors'
    solver settings (memory 5, stop at relative residual 1e-3, at most 15 iterations; the
    code hard-codes these).

    Initialization optimization (the paper's Sec. 3.3, restoration by 2x average pooling
    y = A x_true, no DDNM projection), on the same 25-step chain: Adam (lr 0.05) on x_T for
    40 steps (quick: 10) on ``||A x_0(x_T) - y||^2``, the gradient by implicit
    differentiation at the fixed point. Seeds 0, 1, 2 (quick: seed 0), each with new noises
    and 4 new restoration problems.

    Criterion (the paper's claims: the parallel fixed-point solve reproduces the serial
    sampler in fewer sequential network evaluations; gradients through the fixed point
    optimise the initialization and improve the restoration; written before the run):
    (1) every seed's solve meets the authors' tolerance within their 15-iteration cap, i.e.
    in fewer parallel iterations than the N = 25 sequential serial steps; (2) the DEQ sample
    equals the serial sample to the solver's accuracy: relative difference <= 1e-2, ten times
    the stopping tolerance, an allowance for the amplification of the residual through the
    chain; (3) per seed d = 1 - residual after / before the initialization optimization;
    PASS iff mean(d) exceeds its seed half-range (quick: d > 0). This replaces earlier
    thresholds (<= 1e-4 difference at tolerance 1e-6, <= 0.75 N evaluations, residual ratio
    <= 0.5) that were not read from the paper.

    Result (full, 3 seeds): PASS. Every solve met tol 1e-3 in 9 parallel iterations (the
    serial chain: 25 sequential steps; 9 x 25 = 225 network evaluations in all: the saving is
    in sequential depth, not work); largest relative difference to the serial sample
    1.4e-3; restoration residual lowered by d = 0.936 +- 0.024. 43 s on the loaded machine
    (load ~15; 11 s CPU), about 12 s idle. Quick: difference 1.4e-3, d = 0.956, PASS.

    Deviations from the paper: a scale-down: an exact-score prior on 1-D signal mixtures instead of
    a pretrained image diffusion model, and restoration by 2x average pooling without the DDNM
    projection; the solver settings are the authors' (stated above); the criterion is this
    library's, written before the run.
    """

    name = "deq-parallel-sampling"
    papers = (49,)
    claim = ("Modelling the whole DDIM sampling chain as a joint fixed point lets it be solved "
             "in parallel, reproducing the serial sampler in fewer sequential network "
             "evaluations, and gives gradients with respect to the initial noise that improve "
             "a restoration.")
    paper_figure = ("the abstract's claims and Sec. 3.2-3.3 (parallel solve, initialization "
                    "optimization), solver settings from the authors' code; the tables could "
                    "not be read here")
    scale_downs = ("an exact-score 1-D signal mixture (length 32) instead of a pretrained image "
                   "diffusion model",
                   "16 samples per seed, 3 seeds (quick: 1)",
                   "restoration by 2x average pooling without the DDNM projection",
                   "40 Adam steps on the initial noise (quick: 10)")

    STEPS, TOL, MAX_ITER = 25, 1e-3, 15

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        sched, mix, n = vp_schedule(), signal_mixture(32), self.STEPS
        eps = mix.denoiser(sched)
        rows = []
        for sd in ([seed] if quick else [seed, seed + 1, seed + 2]):
            g = torch.Generator().manual_seed(sd)
            x_T = torch.randn(16, 32, generator=g, dtype=torch.float64)
            deq = deq_ddim_sample(eps, sched, x_T, num_steps=n, tol=self.TOL,
                                  max_iter=self.MAX_ITER)
            serial = serial_chain(eps, chain_coefficients(sched, n), x_T)
            x_true = mix.sample(4, generator=g)
            y = pool2(x_true)
            z = torch.randn(4, 32, generator=g, dtype=torch.float64).requires_grad_(True)
            opt = torch.optim.Adam([z], lr=0.05)
            residuals = []
            for _ in range(10 if quick else 40):
                sol = deq_ddim_sample(eps, sched, z.detach(), num_steps=n, tol=self.TOL,
                                      max_iter=self.MAX_ITER)
                res = pool2(sol.x[-1]) - y
                residuals.append(res.pow(2).sum().item())
                grad_states = torch.zeros_like(sol.x)
                grad_states[-1] = res.reshape(4, 16, 1).expand(4, 16, 2).reshape(4, 32)
                z.grad = deq_noise_gradient(eps, sched, z.detach(), sol.x, grad_states,
                                            num_steps=n)
                opt.step()
            rows.append({"rel_diff": ((deq.x[-1] - serial[-1]).norm()
                                      / serial[-1].norm()).item(),
                         "iterations": deq.iterations, "converged": deq.converged,
                         "residuals": residuals, "anderson_residuals": deq.residuals})
        return {"rows": rows, "steps": n, **rows[0]}

    def check(self, data: dict[str, Any]) -> list[Check]:
        rows, n = data["rows"], data["steps"]
        ok = [r["converged"] for r in rows]
        worst = max(r["rel_diff"] for r in rows)
        return [
            Check("solves meeting tol within the cap < N (share of seeds)", sum(ok) / len(ok),
                  f"= 1 (tol {self.TOL:g} within {self.MAX_ITER} parallel iterations < N = {n})",
                  all(ok), seeds=len(ok)),
            Check("max relative |DEQ - serial| of the sample", worst, "<= 1e-2 (10 x tol)",
                  worst <= 1e-2, seeds=len(rows)),
            seed_effect_check("1 - restoration residual after / before init optimization",
                              [1 - r["residuals"][-1] / r["residuals"][0] for r in rows]),
        ]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.2))
        a.semilogy(range(1, len(data["anderson_residuals"]) + 1), data["anderson_residuals"])
        a.axvline(data["steps"], color="k", ls=":", label="serial chain (N calls)")
        a.set(xlabel="Anderson iteration (parallel calls)", ylabel="relative residual")
        a.legend(fontsize=7)
        b.semilogy(data["residuals"])
        b.set(xlabel="Adam step on x_T", ylabel="||A x0 - y||^2")
        fig.tight_layout()
        return fig


PHENOMENA.register("deq-parallel-sampling", DEQParallelSampling, papers=(49,), reproduces=True,
                   summary="DDIM as a joint fixed point: serial result in fewer sequential "
                           "evaluations; gradients steer the initial noise")
