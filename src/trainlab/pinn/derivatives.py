r"""Derivatives of a network with respect to its inputs, from :mod:`torch.func`.

The one implementation every method of :mod:`trainlab.pinn` uses (PDE residuals, boundary
operators, energy natural gradient, constraints): for a pointwise function
:math:`u: \mathbb{R}^d \to \mathbb{R}^m` evaluated at points :math:`x_1, \dots, x_N`,

.. math::  u(x_n), \quad \partial_i u(x_n), \quad \partial_i \partial_j u(x_n)

are computed per point (``jacrev`` for the gradient, ``jacfwd`` of it for the Hessian) and
batched over the points with ``vmap``. Working per point keeps the cost linear in ``N``
(``jacrev`` of the batched output would build an ``N x N`` Jacobian) and lets the result be
differentiated again with respect to the network's parameters, which is how the energy
natural gradient gets per-point Jacobians of residuals (``vmap(jacrev(...))`` over
parameters on top of these input derivatives).

Coordinates are ordered as the problem orders them; for time-dependent problems the first
coordinate is time, so ``jet.d(0)`` is :math:`u_t` and ``jet.laplacian(space)`` sums the
remaining second derivatives.

Under ``torch.inference_mode`` (trainlab's evaluation probe runs the model there) torch 2.6
has no batching rule for forward-mode AD (``vmap`` of ``jacfwd`` raises "Batching rule not
implemented for aten::_make_dual"; torch 2.13 has one). Where a one-off probe finds it
missing, second-order jets leave inference mode for ``torch.no_grad`` (the same arithmetic:
bit-identical results on 2.13) and say so once per process on the ``trainlab`` logger.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import jacfwd, jacrev, vmap

from trainlab.errors import check_choice

PointFn = Callable[[torch.Tensor], torch.Tensor]
LOG = logging.getLogger("trainlab")


@dataclass(frozen=True)
class Jet:
    """A function's value and input derivatives at ``N`` points.

    Attributes:
        u: values, shape ``(N, m)``.
        grad: first derivatives ``grad[n, k, i] = d u_k / d x_i``, shape ``(N, m, d)``; None
            when the jet was computed to order 0.
        hess: second derivatives ``hess[n, k, i, j]``, shape ``(N, m, d, d)``; None when the
            jet was computed to order 1.
    """

    u: torch.Tensor
    grad: torch.Tensor | None = None
    hess: torch.Tensor | None = None

    def d(self, i: int) -> torch.Tensor:
        """``d u / d x_i``, shape ``(N, m)`` (needs an order-1 or order-2 jet)."""
        if self.grad is None:
            raise ValueError("this jet was computed to order 0; first derivatives need "
                             "order >= 1")
        return self.grad[..., i]

    def dd(self, i: int, j: int) -> torch.Tensor:
        """``d^2 u / d x_i d x_j``, shape ``(N, m)`` (needs an order-2 jet)."""
        return self._hess()[..., i, j]

    def laplacian(self, dims: Sequence[int] | None = None) -> torch.Tensor:
        """Sum of ``d^2 u / d x_i^2`` over ``dims`` (all coordinates by default), ``(N, m)``."""
        h = self._hess()
        dims = range(h.shape[-1]) if dims is None else dims
        return sum(h[..., i, i] for i in dims)

    def _hess(self) -> torch.Tensor:
        if self.hess is None:
            raise ValueError("this jet was computed to order 1; second derivatives need "
                             "order=2")
        return self.hess


def point_function(model: nn.Module | PointFn) -> PointFn:
    """A function of one point ``x`` (shape ``(d,)``) returning ``(m,)``, from a module that
    maps a batch ``(B, d)`` to ``(B, m)`` (or from such a pointwise function itself)."""
    if isinstance(model, nn.Module):
        return lambda x: model(x.unsqueeze(0)).squeeze(0)
    return model


def jet(fn: nn.Module | PointFn, x: torch.Tensor, order: int = 2) -> Jet:
    """Value and input derivatives of ``fn`` at the rows of ``x``.

    Args:
        fn: a module mapping ``(B, d) -> (B, m)`` or a pointwise function ``(d,) -> (m,)``.
        x: points, shape ``(N, d)``.
        order: 0 (value only), 1 (and gradient) or 2 (also the Hessian).

    Returns:
        a :class:`Jet`; every tensor stays differentiable with respect to the parameters
        that ``fn`` closes over.

    Example:
        >>> j = jet(lambda p: (p ** 2).sum(0, keepdim=True), torch.ones(3, 2))
        >>> j.laplacian()[0].item()
        4.0
    """
    check_choice("order", order, (0, 1, 2), owner="jet")
    if order == 0:
        return Jet(fn(x) if isinstance(fn, nn.Module) else vmap(fn)(x))
    f = point_function(fn)

    def first(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u = f(p)
        return u, u

    if order == 1:
        grad, u = vmap(jacrev(first, has_aux=True))(x)
        return Jet(u, grad)

    def second(p: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        g, u = jacrev(first, has_aux=True)(p)
        return g, (g, u)

    if torch.is_inference_mode_enabled() and not _forward_ad_in_inference_mode():
        _warn_inference_fallback()
        with torch.inference_mode(False), torch.no_grad():
            hess, (grad, u) = vmap(jacfwd(second, has_aux=True))(x)
        return Jet(u, grad, hess)
    hess, (grad, u) = vmap(jacfwd(second, has_aux=True))(x)
    return Jet(u, grad, hess)


@functools.cache
def _forward_ad_in_inference_mode() -> bool:
    """Whether this torch batches forward-mode AD (``vmap(jacfwd(...))``) under
    ``torch.inference_mode`` (torch 2.13 does, 2.6 does not); probed once per process."""
    try:
        with torch.inference_mode():
            vmap(jacfwd(torch.sin))(torch.zeros(2, 1))
    except RuntimeError:
        return False
    return True


@functools.cache
def _warn_inference_fallback() -> None:
    """The once-per-process warning of :func:`jet`'s fallback (module docstring)."""
    LOG.warning("torch %s cannot batch forward-mode AD under torch.inference_mode: "
                "second-order input derivatives (trainlab.pinn.jet) are computed under "
                "torch.no_grad there instead (same numbers)", torch.__version__)
