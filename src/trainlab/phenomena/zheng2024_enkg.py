"""Derivative-free ensemble Kalman guidance solves a nonlinear PDE inverse problem with a
black-box forward model better than gradient-based DPS (Zheng, Chen, Wang, Huang, Stuart &
Yue, "Ensemble Kalman Diffusion Guidance: A Derivative-free Method for Inverse Problems",
2024; papers.md row 106)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trainlab.diffusion.mixtures import signal_mixture
from trainlab.diffusion.zheng2024_enkg import black_box, dps_sample, enkg_sample
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon, seed_effect_check

DPS_STEPS = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
VISCOSITY, DT, T_END, OBS_EVERY = 0.03, 0.005, 0.2, 4


def burgers_observation(u0: torch.Tensor) -> torch.Tensor:
    r"""The forward model: the periodic viscous Burgers equation
    :math:`u_t + (u^2/2)_x = \nu u_{xx}` on [0, 1) (the 1-D analogue of the paper's
    Navier-Stokes problem: infer the initial state from a sparse observation of the final
    one), solved from the initial states ``u0`` ``(J, L)`` (grid spacing 1/L) by forward Euler
    with central differences, :math:`\nu = 0.03`, dt = 0.005 to T = 0.2 (stable for
    :math:`|u| \le 2`: dt < dx^2/(2\nu) and dt < 2\nu/u^2), observed at every 4th grid point.
    Differentiable in torch (for DPS); EnKG sees it only through :func:`black_box`."""
    n = u0.shape[-1]
    dx = 1.0 / n
    u = u0
    for _ in range(round(T_END / DT)):
        up, um = torch.roll(u, -1, -1), torch.roll(u, 1, -1)
        flux = (up ** 2 - um ** 2) / (4 * dx)
        u = u + DT * (VISCOSITY * (up - 2 * u + um) / dx ** 2 - flux)
    return u[..., ::OBS_EVERY]


def _burgers_numpy(u0: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return burgers_observation(torch.from_numpy(u0)).numpy()


class EnKGBlackBox(Phenomenon):
    """Prior: the exact EDM denoiser of the 1-D signal mixture (length 32, three waveform
    classes, :func:`~trainlab.diffusion.mixtures.signal_mixture`). The unknown x* is a draw
    from the prior; the noiseless observation is :func:`burgers_observation` of x* (8 values),
    given to EnKG only as a numpy black box. EnKG at the paper's released Navier-Stokes
    settings (guidance scale 2, 2 corrections per step, 5% windows, Karras grid sigma 80 ..
    0.002, rho 7, N = 80 steps; quick: 40), J = 256 particles. DPS on the same EDM Euler
    sampler with autograd through the solver, its step size chosen per seed as the best of
    ``DPS_STEPS`` (a baseline tuned on the answer, so favoured). Seeds 0, 1, 2 (each a new x*
    and new particles; quick: seed 0).

    Criterion (from the paper's Navier-Stokes comparison, where EnKG's relative L2 error is
    below the gradient-based baselines'; the table was only read through a secondary summary:
    EnKG 0.120 vs DPG 0.325; written before the run): the relative L2 error
    ``||x - x*|| / ||x*||`` averaged over the particles; per seed d = error(best DPS) -
    error(EnKG); PASS iff mean(d) exceeds its seed half-range (quick: d > 0); and EnKG never
    evaluates a gradient of G. This replaces the earlier 2-D tanh-cube problem with an 80%
    share-within-0.3 threshold, which was picked after exploration.

    Result (full, 3 seeds): FAIL. d = -0.024 +- 0.23: EnKG's error is not below the tuned
    DPS's beyond the seed spread. Per seed, EnKG / best DPS relative L2 error: 0.504 / 0.257,
    0.260 / 0.231, 0.091 / 0.294 (EnKG wins on one problem of three; 142 sequential black-box
    calls each). 193 s on the loaded machine (load ~15; 36 s CPU), about 40 s idle. Tried:
    only the paper's released Navier-Stokes settings. DPS's best step was the largest of its
    grid (1.0) on every seed, so a wider grid could only help DPS. Quick (N = 40, seed 0):
    EnKG 0.341 against DPS 0.573, d = 0.232; it is a regression guard (``quick_reference``),
    one seed not being the verdict. The problem instance depends on torch's random streams:
    ``torch.multinomial`` draws a different mixture component for the target on torch 2.6
    than on 2.13 (same seed), and the quick run there gives EnKG 0.258 against DPS 0.533,
    d = 0.275. The guard's absolute tolerance (``quick_atol`` 0.06, so 0.23 +- 0.072) covers
    both releases and still asks for an EnKG lead of at least 0.16.

    Deviations from the paper: a scale-down: a 1-D signal-mixture prior with an exact denoiser and a
    small Burgers observation stand in for the paper's Navier-Stokes problem; EnKG runs at the
    authors' released settings (above), the DPS baseline is tuned here, and the paper's table was
    read only through a secondary summary.
    """

    name = "enkg-black-box"
    quick_reference = {"rel. L2 error: best DPS - EnKG": 0.23216042440685136}
    quick_atol = 0.06  # torch 2.6 draws another target: d = 0.275 there (docstring)
    papers = (106,)
    claim = ("Ensemble Kalman guidance, using only forward evaluations of a black-box model, "
             "guides a pretrained diffusion prior to the solution of a nonlinear PDE inverse "
             "problem more accurately than gradient-based guidance (DPS).")
    paper_figure = ("the Navier-Stokes inverse-problem table (relative L2 error, EnKG vs "
                    "DPS-type gradient guidance), read through a secondary summary; settings "
                    "from the authors' released Navier-Stokes config")
    scale_downs = ("an exact-score 1-D signal mixture (length 32) instead of a trained "
                   "Navier-Stokes vorticity model",
                   "1-D viscous Burgers (8 observations) instead of 2-D Navier-Stokes",
                   "256 particles instead of 2048; 3 problems (seeds); quick: 40 steps, 1 seed")

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        mix = signal_mixture(32)
        forward = black_box(_burgers_numpy)
        n = 40 if quick else 80
        rows = []
        for s in ([seed] if quick else [seed, seed + 1, seed + 2]):
            g = torch.Generator().manual_seed(s)
            x_star = mix.sample(1, generator=g)
            y = forward(x_star)[0]
            x_init = 80 * torch.randn(256, 32, generator=g, dtype=torch.float64)

            def rel(x: torch.Tensor, x_star: torch.Tensor = x_star) -> float:
                return ((x - x_star).norm(dim=1) / x_star.norm()).mean().item()

            enkg = enkg_sample(mix.edm_denoiser, forward, y, x_init, num_steps=n)
            dps = {st: rel(dps_sample(mix.edm_denoiser, burgers_observation, y, x_init,
                                      num_steps=n, step_size=st).x0) for st in DPS_STEPS}
            rows.append({"enkg": rel(enkg.x0), "dps": dps, "calls": enkg.forward_calls,
                         "grads": enkg.uses_gradients, "x_star": x_star[0],
                         "enkg_mean": enkg.x0.mean(0)})
        return {"rows": rows}

    def check(self, data: dict[str, Any]) -> list[Check]:
        rows = data["rows"]
        gaps = [min(r["dps"].values()) - r["enkg"] for r in rows]
        grads = any(r["grads"] for r in rows)
        return [
            seed_effect_check("rel. L2 error: best DPS - EnKG", gaps),
            Check("EnKG gradient evaluations of G", float(grads), "= 0", not grads),
        ]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        r = data["rows"][0]
        fig, ax = plt.subplots(figsize=(4.8, 3.2))
        ax.plot(r["x_star"], "k", label="x* (initial state)")
        ax.plot(r["enkg_mean"], label="EnKG particle mean")
        ax.set(xlabel="grid point", ylabel="u0")
        ax.legend(fontsize=7)
        return fig


PHENOMENA.register("enkg-black-box", EnKGBlackBox, papers=(106,), reproduces=False,
                   summary="derivative-free ensemble Kalman guidance vs DPS on a Burgers "
                           "(PDE) black-box inverse problem")
