r"""The proximal sampler for a log-concave density :math:`\pi \propto e^{-V}` with only an
evaluation oracle for :math:`V`, and its mixing from a cold start.

One step alternates two exact conditional draws of the joint density
:math:`\propto e^{-V(x) - \|x - y\|^2 / (2h)}`:

.. math::
    y_k \sim \mathcal{N}(x_k, h I), \qquad
    x_{k+1} \sim \pi^{X \mid Y = y_k} \propto e^{-V(x) - \|x - y_k\|^2 / (2h)},

the second (the restricted Gaussian oracle) by rejection, in one of two exact ways:

- ``oracle="zeroth"`` (values of :math:`V` only): propose :math:`x \sim \mathcal{N}(y_k, hI)`,
  accept with probability :math:`e^{-(V(x) - V_{\min})}` for a lower bound
  :math:`V_{\min} \le \min V`; exact, but the acceptance rate is tiny wherever
  :math:`V(y_k) \gg V_{\min}`;
- ``oracle="first"`` (default; values and gradients): with the tangent
  :math:`\ell(x) = V(y_k) + \langle \nabla V(y_k), x - y_k\rangle \le V(x)` (convexity),
  propose :math:`x \sim \mathcal{N}(y_k - h\nabla V(y_k), hI)` and accept with probability
  :math:`e^{-(V(x) - \ell(x))}`; exact, with acceptance near one when :math:`h` is small
  against the curvature.
 The marginal chain in :math:`x` is reversible for :math:`\pi`
and contracts in every Rényi divergence; from a cold start (a point mass, infinitely far from
warm) its law approaches :math:`\pi` at a rate set by :math:`h` and :math:`\pi`'s
log-Sobolev constant. For :math:`\pi = \mathcal{N}(0, s^2 I)` the chain is exactly the AR(1)
process :math:`x_{k+1} = a x_k + \text{noise}`, :math:`a = s^2 / (s^2 + h)`, so from
:math:`x_0 = 0` the law after :math:`k` steps is :math:`\mathcal{N}(0, s^2(1 - a^{2k}) I)`
(:func:`gaussian_law_after`, the tests' oracle for W2 mixing).

Every rejection loop is capped (``max_tries``); a chain that exhausts it raises instead of
looping forever or returning an inexact draw.

References:
    "Faster logconcave sampling from a cold start", arXiv 2505.01937, 2025 (papers.md row
    109): proximal-sampler mixing from a cold start, generating the warm start under an
    evaluation oracle. The proximal sampler is Lee, Shen, Tian (2021); its rejection
    implementations of the restricted Gaussian oracle are the standard ones.

Deviations from the paper:
    Only the abstract and opening were read. Implemented: the proximal sampler with an exact
    rejection oracle, and mixing measured from a cold start; the default oracle uses
    gradients (the paper assumes only an evaluation oracle, offered as ``"zeroth"``);
    not implemented: the paper's annealing schedule for generating a Rényi-warm start and
    its complexity analysis (no step counts of the paper are claimed here). The
    zeroth-order oracle's acceptance rate decays like :math:`e^{-\Theta(d)}`, so it is
    meant for small dimensions.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from trainlab.errors import TrainlabError, check_choice, check_range

Potential = Callable[[torch.Tensor], torch.Tensor]


def _tangent(potential: Potential, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    y = y.detach().requires_grad_(True)
    with torch.enable_grad():
        v = potential(y)
        (g,) = torch.autograd.grad(v.sum(), y)
    return v.detach(), g


def restricted_gaussian_oracle(potential: Potential, y: torch.Tensor, h: float, *,
                               oracle: str = "first", v_min: float = 0.0,
                               max_tries: int = 10_000,
                               generator: torch.Generator | None = None
                               ) -> tuple[torch.Tensor, int]:
    """Exact draws ``x ~ exp(-V(x) - |x - y|^2 / 2h)`` for every row of ``y``
    (``oracle``: ``"first"`` tangent envelope, or ``"zeroth"`` with the bound ``v_min``).

    Returns:
        ``(x, tries)``: the draws and the total number of proposals (oracle calls).

    Raises:
        TrainlabError: some row had no accepted proposal in ``max_tries`` tries, or a
            proposal had ``V(x) < v_min`` (the bound is wrong, the draw would be inexact).
    """
    check_choice("oracle", oracle, ("first", "zeroth"), owner="restricted_gaussian_oracle")
    x = torch.empty_like(y)
    todo = torch.ones(y.shape[0], dtype=torch.bool)
    if oracle == "first":
        v_y, g_y = _tangent(potential, y)
        centre = y - h * g_y
    else:
        centre = y
    calls = 0
    for _ in range(max_tries):
        rows = todo.nonzero().squeeze(1)
        prop = centre[rows] + math.sqrt(h) * torch.randn(y[rows].shape, generator=generator,
                                                         dtype=y.dtype)
        with torch.no_grad():
            v = potential(prop)
        if oracle == "first":
            lower = v_y[rows] + ((prop - y[rows]) * g_y[rows]).sum(1)
        else:
            lower = torch.full_like(v, v_min)
        excess = v - lower
        calls += rows.numel()
        if bool((excess < -1e-9 * (1 + v.abs())).any()):
            raise TrainlabError("restricted_gaussian_oracle: V(x) fell below its lower bound "
                                "(V not convex, or v_min not a lower bound): the draw would "
                                "be inexact")
        u = torch.rand(rows.numel(), generator=generator, dtype=y.dtype)
        ok = u < torch.exp(-excess.clamp_min(0))
        x[rows[ok]] = prop[ok]
        todo[rows[ok]] = False
        if not bool(todo.any()):
            return x, calls
    raise TrainlabError(f"restricted_gaussian_oracle: {int(todo.sum())} chain(s) had no "
                        f"accepted proposal in max_tries={max_tries}; lower h or start warmer")


def proximal_sampler(potential: Potential, x0: torch.Tensor, *, h: float, steps: int,
                     oracle: str = "first", v_min: float = 0.0, max_tries: int = 10_000,
                     generator: torch.Generator | None = None
                     ) -> tuple[torch.Tensor, int]:
    """Run ``steps`` proximal-sampler steps on every chain (row) of ``x0``.

    Args:
        potential: ``V`` on rows ``(chains, d) -> (chains,)``; ``pi ~ exp(-V)`` log-concave.
        x0: ``(chains, d)`` starting points (equal rows: a point-mass cold start).
        h: the step ``> 0``. steps: number of steps.
        oracle: ``"first"`` (tangent envelope, needs autograd through ``V``) or
            ``"zeroth"`` (values only, with ``v_min``).
        v_min: a lower bound of ``V`` for the zeroth-order oracle.
        max_tries: the cap on proposals per oracle call.
        generator: all randomness.

    Returns:
        ``(x_steps, oracle_calls)``.
    """
    check_range("h", h, low=0.0, low_open=True, owner="proximal_sampler")
    check_range("steps", steps, low=0, owner="proximal_sampler")
    check_range("max_tries", max_tries, low=1, owner="proximal_sampler")
    x, calls = x0.detach().clone(), 0
    for _ in range(steps):
        y = x + math.sqrt(h) * torch.randn(x.shape, generator=generator, dtype=x.dtype)
        x, c = restricted_gaussian_oracle(potential, y, h, oracle=oracle, v_min=v_min,
                                          max_tries=max_tries, generator=generator)
        calls += c
    return x, calls


def gaussian_law_after(steps: int, *, h: float, s: float = 1.0) -> tuple[float, float]:
    """``(a, variance)`` of the proximal sampler on ``N(0, s^2 I)`` after ``steps`` steps
    from ``x0 = 0``: ``a = s^2/(s^2+h)``, variance ``s^2 (1 - a^(2 steps))`` per coordinate."""
    a = s * s / (s * s + h)
    return a, s * s * (1 - a ** (2 * steps))
