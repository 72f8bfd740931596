r"""The DDIM chain as one joint fixed point, solved in parallel by Anderson acceleration.

"Deep Equilibrium Diffusion Restoration with Parallel Sampling" (Cao, Shi, Zhang, Zhang,
Timofte & Van Gool, CVPR 2024, papers.md row 49; building on Pokle, Geng & Kolter, "Deep
Equilibrium Approaches to Diffusion Models", 2022). A DDIM step is affine in the current state
and the network output (:func:`~trainlab.diffusion.samplers.ddim_coefficients`),
:math:`x_{i+1} = a_i x_i + b_i\,\varepsilon(x_i, t_i) + c_i z_i`, so every state of the chain
is an explicit function of the initial noise and all network outputs (the paper's
"analytical solution", Sec. 3.2):

.. math:: x_k = A_{0:k}\,x_T + \sum_{j<k} A_{j+1:k}\,(b_j \varepsilon(x_j, t_j) + c_j z_j),
          \qquad A_{j:k} = \prod_{l=j}^{k-1} a_l.

Write :math:`X = (x_1, .., x_N)` and :math:`F(X)` for the right-hand side with all
:math:`\varepsilon(x_j, t_j)` evaluated at once on the current guess (one *parallel* batch of N
network calls). The serial chain is the unique fixed point :math:`X = F(X)` (the Jacobian of
F is strictly block-lower-triangular, so plain iteration is exact after N sweeps, and
state k after k sweeps). The paper solves it with Anderson acceleration; a converged solve
that takes fewer than N iterations needs fewer *sequential* network evaluations than the
serial sampler (N), at the price of more total evaluations.

Deviations from the paper: the restoration-specific projection (DDNM's range-null-space
step) is not included; the chain is plain DDIM. Anderson acceleration is written here (type
II, Walker & Ni 2011, with the DEQ defaults memory 5, regularisation 1e-4 (made relative to
the residual scale, see :func:`anderson`), mixing 1), since
torch has none and ``scipy.optimize.anderson`` is numpy-only and does not report the
evaluations it spends; the iteration starts from all states equal to ``x_T`` and stops at a
relative residual ``||F(X) - X|| / ||F(X)|| <= tol``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from trainlab.diffusion._registry import DIFFUSION
from trainlab.diffusion.samplers import EpsFn, as_schedule, ddim_coefficients
from trainlab.diffusion.schedules import NoiseSchedule
from trainlab.errors import check_range


@dataclass(frozen=True)
class ChainCoefficients:
    """The affine DDIM chain on a grid: timesteps ``t`` (N,) and ``a, b, c`` (N,) float64."""

    t: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor
    c: torch.Tensor


def chain_coefficients(schedule: NoiseSchedule | Any, num_steps: int, eta: float = 0.0
                       ) -> ChainCoefficients:
    """The coefficients of the ``num_steps``-step DDIM chain (last step to clean data)."""
    sched = as_schedule(schedule)
    ts = sched.inference_timesteps(num_steps)
    nxt = torch.cat([ts[1:], torch.tensor([-1])])
    a, b, c = ddim_coefficients(sched.abar(ts), sched.abar(nxt), eta)
    return ChainCoefficients(ts, a, b, c)


def _bc(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.to(like.dtype).reshape((-1,) + (1,) * (like.ndim - 1))


def chain_map(eps_fn: EpsFn, coef: ChainCoefficients, x_T: torch.Tensor, states: torch.Tensor,
              noise: torch.Tensor | None = None) -> torch.Tensor:
    r"""``F(X)``: all N network outputs on ``[x_T, x_1, .., x_{N-1}]`` in one batched call,
    then the states by the prefix recursion (module docstring). ``states`` is ``(N, *x_T.shape)``
    and ``noise`` (N, ...) the per-step z (needed iff some ``c > 0``)."""
    n = len(coef.t)
    inputs = torch.cat([x_T[None], states[:-1]])  # the state each step starts from
    flat = inputs.reshape(n * x_T.shape[0], *x_T.shape[1:])
    tt = coef.t.repeat_interleave(x_T.shape[0])
    eps = eps_fn(flat, tt).reshape(inputs.shape)
    drive = _bc(coef.b, eps) * eps
    if noise is not None:
        drive = drive + _bc(coef.c, eps) * noise
    out, x = [], x_T
    for i in range(n):  # cheap affine prefix recursion, no network calls
        x = coef.a[i].to(x.dtype) * x + drive[i]
        out.append(x)
    return torch.stack(out)


def serial_chain(eps_fn: EpsFn, coef: ChainCoefficients, x_T: torch.Tensor,
                 noise: torch.Tensor | None = None) -> torch.Tensor:
    """The states ``(N, ...)`` of the ordinary serial DDIM chain (N sequential calls)."""
    out, x = [], x_T
    for i in range(len(coef.t)):
        eps = eps_fn(x, torch.full((x.shape[0],), int(coef.t[i]), dtype=torch.long))
        x = coef.a[i].to(x.dtype) * x + coef.b[i].to(x.dtype) * eps
        if noise is not None:
            x = x + coef.c[i].to(x.dtype) * noise[i]
        out.append(x)
    return torch.stack(out)


@dataclass(frozen=True)
class FixedPointResult:
    """The solution, the number of map evaluations (= sequential network evaluations, each a
    parallel batch), the relative residual after each one, and whether ``tol`` was met."""

    x: torch.Tensor
    iterations: int
    residuals: list[float]
    converged: bool


def anderson(f: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor, *, memory: int = 5,
             tol: float = 1e-5, max_iter: int = 100, lam: float = 1e-4, beta: float = 1.0
             ) -> FixedPointResult:
    r"""Anderson acceleration (type II) for ``x = f(x)``: with residuals
    :math:`g_k = f(x_k) - x_k` of the last ``memory`` iterates, solve
    :math:`\min_\alpha \|\sum_i \alpha_i g_i\|^2 + \lambda\bar g^2\|\alpha\|^2` s.t.
    :math:`\sum\alpha_i = 1`, and set
    :math:`x_{k+1} = \beta\sum\alpha_i f(x_i) + (1-\beta)\sum\alpha_i x_i`.
    Stops when :math:`\|g_k\|/\|f(x_k)\| \le` ``tol`` (then returns :math:`f(x_k)`).
    :math:`\bar g^2` is the mean squared residual norm in memory: the regularisation is
    relative (an absolute :math:`\lambda`, as in the DEQ code, swamps the residuals once they
    fall below :math:`\sqrt\lambda` and stalls the iteration there)."""
    check_range("memory", memory, low=1, owner="anderson")
    check_range("tol", tol, low=0.0, low_open=True, owner="anderson")
    xs, fs, res = [], [], []
    x = x0
    for k in range(1, max_iter + 1):
        fx = f(x)
        g = fx - x
        rel = (g.norm() / fx.norm().clamp(min=1e-300)).item()
        res.append(rel)
        if rel <= tol:
            return FixedPointResult(fx, k, res, True)
        xs.append(x.flatten())
        fs.append(fx.flatten())
        xs, fs = xs[-memory:], fs[-memory:]
        gmat = torch.stack(fs) - torch.stack(xs)  # (m, D)
        m = len(xs)
        gram = gmat @ gmat.T
        h = gram + lam * (gram.diagonal().mean() + 1e-300) * torch.eye(m, dtype=gmat.dtype)
        alpha = torch.linalg.solve(h, torch.ones(m, 1, dtype=gmat.dtype))[:, 0]
        alpha = alpha / alpha.sum()
        x = (beta * (alpha @ torch.stack(fs)) + (1 - beta) * (alpha @ torch.stack(xs))
             ).reshape(x0.shape)
    return FixedPointResult(f(x), max_iter + 1, res, False)


def deq_ddim_sample(eps_fn: EpsFn, schedule: NoiseSchedule | Any, x_T: torch.Tensor, *,
                    num_steps: int = 50, eta: float = 0.0,
                    generator: torch.Generator | None = None, tol: float = 1e-5,
                    max_iter: int | None = None, memory: int = 5) -> FixedPointResult:
    """Sample by solving the whole DDIM chain as one fixed point with :func:`anderson`.

    Args:
        eps_fn: denoiser ``eps_fn(x, t)``; it is called on all N states at once.
        schedule: :class:`NoiseSchedule` or a ``diffusers`` DDPM/DDIM scheduler.
        x_T: initial noise ``(n, ...)``.
        num_steps: DDIM steps N.
        eta: DDIM stochasticity; for ``eta > 0`` the per-step noise is drawn up front from
            ``generator`` (N draws of ``x_T``'s shape, in step order, as
            :func:`serial_chain` expects them).
        tol, max_iter (default 2N), memory: Anderson settings.

    Returns:
        :class:`FixedPointResult` whose ``x`` holds all N states; ``x[-1]`` is the sample.

    Example:
        >>> from trainlab.diffusion import ring_mixture, vp_schedule
        >>> s = vp_schedule(); eps = ring_mixture().denoiser(s)
        >>> xT = torch.randn(4, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> r = deq_ddim_sample(eps, s, xT, num_steps=20, tol=1e-8)
        >>> ref = serial_chain(eps, chain_coefficients(s, 20), xT)
        >>> bool(torch.allclose(r.x, ref, atol=1e-6)), r.iterations < 20
        (True, True)
    """
    coef = chain_coefficients(schedule, num_steps, eta)
    noise = None
    if eta > 0:
        noise = torch.randn((num_steps, *x_T.shape), generator=generator, dtype=x_T.dtype)
    init = x_T[None].expand(num_steps, *x_T.shape).clone()
    return anderson(lambda s: chain_map(eps_fn, coef, x_T, s, noise), init, memory=memory,
                    tol=tol, max_iter=2 * num_steps if max_iter is None else max_iter)


def deq_noise_gradient(eps_fn: EpsFn, schedule: NoiseSchedule | Any, x_T: torch.Tensor,
                       states: torch.Tensor, grad_states: torch.Tensor, *, num_steps: int,
                       eta: float = 0.0, noise: torch.Tensor | None = None,
                       tol: float = 1e-10, max_iter: int | None = None) -> torch.Tensor:
    r"""The gradient of a loss of the chain's states with respect to the initial noise, by
    implicit differentiation at the fixed point (the paper's "DEQ inversion", Sec. 3.3):
    solve the adjoint fixed point :math:`v = \partial L/\partial X + (\partial F/\partial X)^T
    v` by iteration (exact after N sweeps, the Jacobian being nilpotent), then return
    :math:`(\partial F/\partial x_T)^T v`.

    Args:
        states: the fixed point ``X`` (from :func:`deq_ddim_sample`).
        grad_states: :math:`\partial L/\partial X`, same shape (e.g. zeros except the last
            state for a loss of the sample alone).
        noise: the per-step noise used for ``states`` when ``eta > 0``.
    """
    coef = chain_coefficients(schedule, num_steps, eta)
    _, vjp = torch.func.vjp(lambda xs, x0: chain_map(eps_fn, coef, x0, xs, noise),
                            states.detach(), x_T.detach())
    v = grad_states
    for _ in range(num_steps + 1 if max_iter is None else max_iter):
        nv = grad_states + vjp(v)[0]
        done = (nv - v).norm() <= tol * nv.norm().clamp(min=1e-300)
        v = nv
        if done:
            break
    return vjp(v)[1]


DIFFUSION.register("deq-ddim", deq_ddim_sample, papers=(49,),
                   summary="DDIM chain as a joint fixed point solved in parallel by Anderson "
                           "acceleration (DeqIR)")

__all__ = ["ChainCoefficients", "FixedPointResult", "anderson", "chain_coefficients",
           "chain_map", "deq_ddim_sample", "deq_noise_gradient", "serial_chain"]
