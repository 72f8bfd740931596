r"""Gradient method with a symmetric-polynomial preconditioner.

For a positive semi-definite curvature matrix :math:`B` with eigenvalues
:math:`\lambda_1 \ge \dots \ge \lambda_n` and elementary symmetric polynomials
:math:`\sigma_k = \sigma_k(\lambda)` (:math:`\sigma_0 = 1`), the preconditioner of degree
:math:`\tau` is

.. math::  P_\tau = \frac{\nabla \sigma_{\tau+1}(B)}{\sigma_\tau(B)}
    = \frac{1}{\sigma_\tau} \sum_{i=0}^{\tau} (-1)^i\, \sigma_{\tau-i}\, B^i ,

a polynomial in :math:`B`: applying it costs :math:`\tau` curvature-vector products and needs
no eigendecomposition. :math:`P_\tau B` has the eigenvalues
:math:`\lambda_j\, \sigma_\tau(\lambda_{-j}) / \sigma_\tau(\lambda)` (:math:`\lambda_{-j}`:
the spectrum without :math:`\lambda_j`), all at most
:math:`L_\tau = \sigma_{\tau+1}/\sigma_\tau \le \sum_{i>\tau} \lambda_i`, and the condition
number of the preconditioned problem is at most :math:`\sum_{i>\tau}\lambda_i / \lambda_n`: the
gaps between the :math:`\tau` largest eigenvalues are cut (the tests check both on random
spectra). :math:`\tau = 0` is plain gradient descent with step :math:`1/\operatorname{tr} B`.

The step is :math:`w \leftarrow w - \frac{\eta}{L} P_\tau \nabla L(w)`: with
``line_search=False``, :math:`L = L_\tau` and ``lr = 1`` is the method's safe step on a
quadratic; by default :math:`L` is found by backtracking on the descent condition
:math:`f(w') \le f(w) - \frac{\eta}{L}(1 - \frac{\eta}{2})\, g^\top P_\tau g` (the
descent lemma in the :math:`P_\tau^{-1}` norm), since :math:`L_\tau` is a worst case.
The :math:`\sigma_k` come from the power traces :math:`p_i = \operatorname{tr} B^i` by Newton's
identities :math:`k\sigma_k = \sum_{i=1}^{k} (-1)^{i-1}\sigma_{k-i}\,p_i`; the traces are exact (a
dense :math:`B` from :math:`n` products, small models) or Hutchinson estimates
:math:`z^\top B^i z` over Rademacher probes :math:`z` (:math:`\tau+1` products per probe).

References:
    Doikov, Rodomanov. "Polynomial Preconditioning for Gradient Methods", ICML 2023
    (papers.md row 92).

Deviations from the paper:
    The paper targets structured convex problems with a known :math:`B` (e.g. :math:`A^\top A`)
    and also gives an accelerated variant and an adaptive Krylov search over :math:`\tau`;
    here :math:`B` is the batch GGN (default) or Hessian at the current weights, refreshed every
    ``refresh_every`` steps, :math:`\sigma_k` may be Hutchinson estimates, and only the basic
    gradient method is implemented. The paper's exact normalization of :math:`P_\tau` could not
    be re-read for this implementation; the one above gives the stated bound (tested).
    When estimated :math:`\sigma_1..\sigma_{\tau+1}` are not all positive (indefinite
    Hessian, noisy estimates) the largest degree whose are is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch

from trainlab.errors import ConfigError, check_choice, check_range
from trainlab.optim._generator import DrawsRandom, optimizer_generator
from trainlab.optim._outer import ClosureOptimizer
from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim.closure_curvature import (
    Matvec,
    curvature_matvec,
    flat,
    rademacher,
    split_like,
)
from trainlab.optim.loss_closure import evaluate, set_grads
from trainlab.optim.natural_gradient import dense_matrix

ESTIMATORS = ("exact", "hutchinson")


def elementary_symmetric(values: torch.Tensor, k: int) -> torch.Tensor:
    """``[sigma_0, ..., sigma_k]`` of the entries of ``values``."""
    e = torch.zeros(k + 1, dtype=values.dtype, device=values.device)
    e[0] = 1.0
    for x in values:
        e[1:] = e[1:] + x * e[:-1].clone()
    return e


def elementary_from_power_traces(traces: torch.Tensor) -> torch.Tensor:
    """``[sigma_0, ..., sigma_m]`` from ``traces[i-1] = tr(B^i)``, ``i = 1..m`` (Newton's
    identities)."""
    m = traces.numel()
    e = [torch.ones((), dtype=traces.dtype, device=traces.device)]
    for k in range(1, m + 1):
        s = sum((-1) ** (i - 1) * e[k - i] * traces[i - 1] for i in range(1, k + 1))
        e.append(s / k)
    return torch.stack(e)


def preconditioner_coefficients(sigmas: torch.Tensor, tau: int) -> torch.Tensor:
    """``c_i`` of ``P_tau = sum_i c_i B^i``: ``c_i = (-1)^i sigma_{tau-i} / sigma_tau``."""
    signs = torch.tensor([(-1.0) ** i for i in range(tau + 1)], dtype=sigmas.dtype,
                         device=sigmas.device)
    return signs * sigmas[:tau + 1].flip(0) / sigmas[tau]


def apply_polynomial(matvec: Matvec, coeffs: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``sum_i coeffs[i] B^i v`` by Horner's rule (``len(coeffs) - 1`` products)."""
    out = coeffs[-1] * v
    for c in coeffs[:-1].flip(0):
        out = matvec(out) + c * v
    return out


def power_traces(matvec: Matvec, dim: int, like: torch.Tensor, order: int,
                 estimator: str, samples: int, generator: torch.Generator | None
                 ) -> torch.Tensor:
    """``[tr B, ..., tr B^order]``: exact (dense ``B``) or Hutchinson with ``samples``
    Rademacher probes."""
    if estimator == "exact":
        a = dense_matrix(matvec, dim, like)
        evals = torch.linalg.eigvalsh((a + a.T) / 2)
        return torch.stack([(evals ** i).sum() for i in range(1, order + 1)]).to(like.dtype)
    traces = torch.zeros(order, dtype=like.dtype, device=like.device)
    for _ in range(samples):
        z = rademacher(dim, like, generator)
        u = z
        for i in range(order):
            u = matvec(u)
            traces[i] += z @ u
    return traces / samples


class PolynomialPreconditioned(DrawsRandom, ClosureOptimizer):
    """Gradient method with the symmetric-polynomial preconditioner ``P_tau`` (module
    docstring).

    Args:
        params: parameters (one global preconditioner over all groups).
        lr: multiple of the safe step ``1 / L_tau``, >= 0.
        tau: polynomial degree, >= 0 (0: gradient descent with step ``lr / tr B``).
        curvature: ``"ggn"`` (needs ``make_closure``) or ``"hessian"``.
        estimator: ``"exact"`` (dense ``B``, up to ``max_exact_dim`` parameters) or
            ``"hutchinson"`` (``trace_samples`` probes).
        refresh_every: recompute the ``sigma_k`` every this many steps.
        line_search: backtrack on the smoothness ``L`` (start: half the last accepted value,
            first step ``sigma_{tau+1}/sigma_tau``; doubled until the descent condition in the
            ``P^{-1}`` norm holds), as the paper's adaptive gradient method; else
            ``L = sigma_{tau+1}/sigma_tau``, the worst case on a quadratic.
        generator: randomness of the Hutchinson probes.

    State keys (on the first parameter): ``step``, ``sigmas`` (``sigma_0..sigma_{tau+1}``),
    ``smoothness`` (next trial ``L`` of the line search).
    """

    joint_hypers = "all"
    joint_step = True
    stochastic = True
    needs_ggn = True

    def __init__(self, params: Iterable[Any], lr: float = 1.0, tau: int = 1,
                 curvature: Literal["ggn", "hessian"] = "ggn",
                 estimator: Literal["exact", "hutchinson"] = "hutchinson",
                 trace_samples: int = 10, refresh_every: int = 1, line_search: bool = True,
                 max_exact_dim: int = 2048, generator: torch.Generator | None = None):
        owner = "PolynomialPreconditioned"
        check_range("lr", lr, low=0.0, owner=owner)
        check_range("tau", tau, low=0, owner=owner)
        check_range("trace_samples", trace_samples, low=1, owner=owner)
        check_range("refresh_every", refresh_every, low=1, owner=owner)
        check_choice("estimator", estimator, ESTIMATORS, owner=owner)
        super().__init__(params, dict(lr=lr, tau=tau, curvature=curvature, estimator=estimator,
                                      trace_samples=trace_samples, refresh_every=refresh_every,
                                      line_search=line_search, max_exact_dim=max_exact_dim))
        self.generator = optimizer_generator(generator, self.param_groups)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
        closure = self._require(closure)
        params = self._params()
        h = self.param_groups[0]
        matvec = curvature_matvec(closure, params, h["curvature"], "PolynomialPreconditioned")
        loss, grads = evaluate(closure, params)
        g = flat(grads)
        state = self.state[params[0]]
        count = int(state.get("step", 0))
        if count % h["refresh_every"] == 0 or "sigmas" not in state:
            if h["estimator"] == "exact" and g.numel() > h["max_exact_dim"]:
                raise ConfigError(f"PolynomialPreconditioned(estimator='exact') builds a dense "
                                  f"{g.numel()}x{g.numel()} matrix; max_exact_dim is "
                                  f"{h['max_exact_dim']}: use estimator='hutchinson'")
            traces = power_traces(matvec, g.numel(), g, h["tau"] + 1, h["estimator"],
                                  h["trace_samples"], self.generator)
            state["sigmas"] = elementary_from_power_traces(traces)
        state["step"] = count + 1
        sigmas = state["sigmas"]
        tau = h["tau"]
        while tau > 0 and not bool((sigmas[1:tau + 2] > 0).all()):
            tau -= 1
        if sigmas[tau + 1] > 0:
            direction = apply_polynomial(matvec, preconditioner_coefficients(sigmas, tau), g)
            bound = float(sigmas[tau + 1] / sigmas[tau])
            smooth = float(state.get("smoothness", bound)) if h["line_search"] else bound
            if h["line_search"]:
                smooth = self._search(closure, params, float(loss), direction,
                                      float(g @ direction), smooth, h["lr"])
                state["smoothness"] = torch.tensor(smooth / 2)
            for p, d in zip(params, split_like(direction, params)):
                p.add_(d, alpha=-h["lr"] / smooth)
        set_grads(params, grads)
        return loss


    @staticmethod
    def _search(closure: Callable[[], torch.Tensor], params: list[torch.Tensor], loss: float,
                direction: torch.Tensor, gpg: float, smooth: float, lr: float,
                max_trials: int = 30) -> float:
        """The smallest ``L = smooth * 2^j`` (j >= 0) whose step ``w - lr/L P g`` satisfies
        the descent condition in the ``P^{-1}`` norm:
        ``f(w') <= f(w) - (lr/L)(1 - lr/2) g^T P g``."""
        saved = [p.detach().clone() for p in params]
        parts = split_like(direction, params)
        for _ in range(max_trials):
            for p, w, d in zip(params, saved, parts):
                p.copy_(w).add_(d, alpha=-lr / smooth)
            trial, _ = evaluate(closure, params)
            if float(trial) <= loss - lr / smooth * (1 - lr / 2) * gpg:
                break
            smooth *= 2.0
        for p, w in zip(params, saved):
            p.copy_(w)
        return smooth


def polynomial_preconditioned(params: Iterable[Any], lr: float = 1.0, tau: int = 1,
                              curvature: str = "ggn", estimator: str = "hutchinson",
                              trace_samples: int = 10, refresh_every: int = 1,
                              line_search: bool = True, max_exact_dim: int = 2048,
                              generator: torch.Generator | None = None
                              ) -> PolynomialPreconditioned:
    """Gradient method with the symmetric-polynomial preconditioner of degree ``tau``."""
    return PolynomialPreconditioned(params, lr=lr, tau=tau, curvature=curvature,
                                    estimator=estimator, trace_samples=trace_samples,
                                    refresh_every=refresh_every, line_search=line_search,
                                    max_exact_dim=max_exact_dim, generator=generator)


OPTIMIZERS.register("polynomial-preconditioned", polynomial_preconditioned, papers=(92,),
                    summary="gradient method with a symmetric-polynomial preconditioner P_tau(B)")
