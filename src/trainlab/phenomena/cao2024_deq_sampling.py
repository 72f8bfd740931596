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
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon


def pool2(x: torch.Tensor) -> torch.Tensor:
    """2x average pooling of signals ``(n, L)`` -> ``(n, L/2)`` (the degradation)."""
    return x.reshape(x.shape[0], -1, 2).mean(-1)


class DEQParallelSampling(Phenomenon):
    """Exact-score prior: the 1-D signal mixture (length 32, :func:`signal_mixture`), linear
    VP schedule T = 1000, DDIM with N = 50 steps (eta = 0), float64, 16 samples solved as one
    fixed point by Anderson (memory 5, relative tolerance 1e-6).

    Initialization optimization (the paper's Sec. 3.3, restoration by 2x average pooling
    y = A x_true, no DDNM projection), with a 20-step chain: Adam (lr 0.05) on x_T for 10
    steps (full: 40) on
    ``||A x_0(x_T) - y||^2``, the gradient by implicit differentiation at the fixed point.

    Pass criterion (from the paper's claims, written before running): the fixed point equals
    the serial chain (max abs difference over all states <= 1e-4, the scale of the solver
    tolerance); it takes at most 0.75 x the serial chain's N sequential evaluations; the
    optimized initial noise lowers the measurement residual to <= 0.5 x its initial value.

    Result (seed 0, quick): PASS. Max difference 1.1e-5; 27 Anderson iterations (parallel
    calls) for the 50-step chain (ratio 0.54; total network evaluations 27 x 50 = 1350 vs 50:
    the saving is in sequential depth, not work); residual 78.6 -> 3.40 after 10 Adam steps
    (ratio 0.043).
    """

    name = "deq-parallel-sampling"
    papers = (49,)
    claim = ("Modelling the whole DDIM sampling chain as a joint fixed point lets it be solved "
             "in parallel, reproducing the serial sampler in fewer sequential network "
             "evaluations, and gives fast gradients with respect to the initial noise.")
    paper_figure = ("the abstract's claims and Sec. 3.3 (initialization optimization); the tables "
                    "were not read")
    scale_downs = ("an exact-score 1-D signal mixture (length 32) instead of a pretrained image "
                   "diffusion model",
                   "16 samples, a 50-step DDIM chain",
                   "restoration by 2x average pooling without the DDNM projection",
                   "40 Adam steps on the initial noise (quick: 10)")

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        g = torch.Generator().manual_seed(seed)
        sched, mix, n = vp_schedule(), signal_mixture(32), 50
        eps = mix.denoiser(sched)
        x_T = torch.randn(16, 32, generator=g, dtype=torch.float64)
        deq = deq_ddim_sample(eps, sched, x_T, num_steps=n, tol=1e-6)
        serial = serial_chain(eps, chain_coefficients(sched, n), x_T)
        # initialization optimization for a restoration task
        x_true = mix.sample(4, generator=g)
        y = pool2(x_true)
        z = torch.randn(4, 32, generator=g, dtype=torch.float64).requires_grad_(True)
        opt = torch.optim.Adam([z], lr=0.05)
        residuals = []
        m = 20
        for _ in range(10 if quick else 40):
            sol = deq_ddim_sample(eps, sched, z.detach(), num_steps=m, tol=1e-6)
            res = pool2(sol.x[-1]) - y
            residuals.append(res.pow(2).sum().item())
            grad_states = torch.zeros_like(sol.x)
            grad_states[-1] = 2 * (res.reshape(4, 16, 1).expand(4, 16, 2).reshape(4, 32) / 2)
            z.grad = deq_noise_gradient(eps, sched, z.detach(), sol.x, grad_states, num_steps=m)
            opt.step()
        return {"max_diff": (deq.x - serial).abs().max().item(), "iterations": deq.iterations,
                "steps": n, "residuals": residuals, "anderson_residuals": deq.residuals}

    def check(self, data: dict[str, Any]) -> list[Check]:
        ratio = data["iterations"] / data["steps"]
        drop = data["residuals"][-1] / data["residuals"][0]
        return [
            Check("max |DEQ - serial| over all states", data["max_diff"], "<= 1e-4",
                  data["max_diff"] <= 1e-4),
            Check("sequential evaluations DEQ / serial", ratio, "<= 0.75", ratio <= 0.75),
            Check("restoration residual after / before init optimization", drop, "<= 0.5",
                  drop <= 0.5),
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
