r"""Gradient-regularized Newton with approximate Hessians and an adaptive search over the
gradient-normalized smoothness.

Each step solves

.. math::  (H_k + \lambda_k I)\, \delta = -\nabla f(x_k), \qquad
    \lambda_k = \frac{\|\nabla f(x_k)\|}{\gamma_k},

with :math:`H_k` the exact Hessian or an approximation (the GGN / Fisher), and accepts
:math:`x_k + \delta` when :math:`f(x_k) - f(x_k + \delta) \ge
\|\nabla f(x_k + \delta)\|^2 / (8 \lambda_k)`, doubling :math:`\gamma` for the next step;
otherwise :math:`\gamma` is halved and the step recomputed (up to ``max_search`` times, then
the last trial is taken). :math:`\gamma_k` estimates the gradient-normalized smoothness, the
radius in which the Hessian model linearizes the gradient well relative to its norm, so the
method adapts to the problem class by itself.

References:
    Semenov, Jaggi, Doikov. "Gradient-Normalized Smoothness for Optimization with
    Approximate Hessians", ICLR 2026 (arXiv 2506.13710; papers.md row 34), Algorithm 1.
    Defaults: ``gamma0 = 1``, 40 search trials, as in the authors' code.

Deviations from the paper:
    Dense solves (``solver="exact"``, small models) use a Cholesky factorization; if it fails
    (indefinite ``H + lambda I``) the trial counts as rejected. ``solver="cg"`` solves
    matrix-free (for the GGN, which is positive semi-definite). ``lr`` scales the accepted
    step (1 is the paper).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch

from trainlab.errors import ConfigError, check_choice, check_range
from trainlab.optim._outer import ClosureOptimizer
from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim.closure_curvature import Matvec, curvature_matvec, flat, split_like
from trainlab.optim.loss_closure import evaluate, set_grads
from trainlab.optim.natural_gradient import conjugate_gradient, dense_matrix

SOLVERS = ("exact", "cg")


def regularized_newton_step(g: torch.Tensor, lam: float, *, hess: torch.Tensor | None = None,
                            matvec: Matvec | None = None, cg_iters: int = 50
                            ) -> torch.Tensor | None:
    """``-(H + lam I)^{-1} g``: Cholesky on a dense ``hess`` (``None`` when ``H + lam I`` is
    not positive definite), else conjugate gradients on ``matvec``."""
    if hess is None:
        return -conjugate_gradient(lambda v: matvec(v) + lam * v, g, None, cg_iters)
    eye = torch.eye(g.numel(), dtype=g.dtype, device=g.device)
    factor, info = torch.linalg.cholesky_ex(hess + lam * eye)
    if int(info) != 0:
        return None
    return -torch.cholesky_solve(g[:, None], factor)[:, 0]


class RegularizedNewton(ClosureOptimizer):
    """Gradient-regularized Newton with adaptive gradient-normalized smoothness (module
    docstring).

    Args:
        params: parameters (one global solve).
        lr: scale of the step, >= 0 (1: the paper's step).
        gamma0: initial smoothness estimate ``gamma_0`` > 0.
        curvature: ``"hessian"`` or ``"ggn"`` (approximate Hessian; needs ``make_closure``).
        solver: ``"exact"`` (dense, up to ``max_exact_dim`` parameters) or ``"cg"``.
        adaptive: the search over ``gamma`` (else ``gamma0`` throughout).
        max_search: trials per step. cg_iters: CG budget.

    State keys: ``gamma``.
    """

    joint_hypers = "all"
    joint_step = True

    def __init__(self, params: Iterable[Any], lr: float = 1.0, gamma0: float = 1.0,
                 curvature: Literal["hessian", "ggn"] = "hessian",
                 solver: Literal["exact", "cg"] = "exact", adaptive: bool = True,
                 max_search: int = 40, cg_iters: int = 50, max_exact_dim: int = 2048):
        owner = "RegularizedNewton"
        check_range("lr", lr, low=0.0, owner=owner)
        check_range("gamma0", gamma0, low=0.0, low_open=True, owner=owner)
        check_range("max_search", max_search, low=1, owner=owner)
        check_range("cg_iters", cg_iters, low=1, owner=owner)
        check_choice("solver", solver, SOLVERS, owner=owner)
        super().__init__(params, dict(lr=lr, gamma0=gamma0, curvature=curvature, solver=solver,
                                      adaptive=adaptive, max_search=max_search,
                                      cg_iters=cg_iters, max_exact_dim=max_exact_dim))

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
        closure = self._require(closure)
        params = self._params()
        h = self.param_groups[0]
        matvec = curvature_matvec(closure, params, h["curvature"], "RegularizedNewton")
        loss, grads = evaluate(closure, params)
        g = flat(grads)
        gnorm = float(g.norm())
        state = self.state[params[0]]
        gamma = float(state.get("gamma", h["gamma0"]))
        if gnorm == 0.0:
            set_grads(params, grads)
            return loss
        hess = None
        if h["solver"] == "exact":
            if g.numel() > h["max_exact_dim"]:
                raise ConfigError(f"RegularizedNewton(solver='exact') builds a dense "
                                  f"{g.numel()}x{g.numel()} matrix; max_exact_dim is "
                                  f"{h['max_exact_dim']}: use solver='cg'")
            hess = dense_matrix(matvec, g.numel(), g)
            hess = (hess + hess.T) / 2
        saved = [p.detach().clone() for p in params]
        delta = None
        for _ in range(h["max_search"]):
            lam = gnorm / gamma
            trial = regularized_newton_step(g, lam, hess=hess, matvec=matvec,
                                            cg_iters=h["cg_iters"])
            if trial is None:  # H + lam I not positive definite: more regularization
                gamma *= 0.5
                continue
            delta = trial
            if not h["adaptive"]:
                break
            for p, d in zip(params, split_like(delta, params)):
                p.add_(d)
            new_loss, new_grads = evaluate(closure, params)
            for p, w in zip(params, saved):
                p.copy_(w)
            if float(loss - new_loss) >= float(flat(new_grads).pow(2).sum()) / (8 * lam):
                gamma *= 2.0
                break
            gamma *= 0.5
        state["gamma"] = torch.tensor(gamma, dtype=torch.float64)
        if delta is not None:
            for p, d in zip(params, split_like(delta, params)):
                p.add_(d, alpha=h["lr"])
        set_grads(params, grads)
        return loss

def regularized_newton(params: Iterable[Any], lr: float = 1.0, gamma0: float = 1.0,
                       curvature: str = "hessian", solver: str = "exact", adaptive: bool = True,
                       max_search: int = 40, cg_iters: int = 50, max_exact_dim: int = 2048
                       ) -> RegularizedNewton:
    """Gradient-regularized Newton with approximate Hessians (gradient-normalized smoothness)."""
    return RegularizedNewton(params, lr=lr, gamma0=gamma0, curvature=curvature, solver=solver,
                             adaptive=adaptive, max_search=max_search, cg_iters=cg_iters,
                             max_exact_dim=max_exact_dim)


OPTIMIZERS.register("regularized-newton", regularized_newton, papers=(34,),
                    summary="gradient-regularized Newton, (approximate) Hessian + ||g||/gamma I, "
                            "adaptive gamma")
