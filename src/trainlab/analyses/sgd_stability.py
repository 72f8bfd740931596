r"""Linear stability of SGD at a minimum, exactly, from the per-example Hessians.

Near a minimum where every example's gradient vanishes (an interpolating minimum), SGD with
learning rate :math:`\eta` and batches of :math:`B` examples drawn independently is the
random linear map :math:`\theta_{t+1} = (I - \eta H_{\mathcal B})\theta_t`,
:math:`H_{\mathcal B} = \frac1B\sum_{j} H_{i_j}`. Its second moment
:math:`M_t = E[\theta_t\theta_t^T]` evolves by the linear operator

.. math:: T(M) = M - \eta(HM + MH) + \eta^2\Big[\tfrac1B\,\overline{H_i M H_i}
          + (1 - \tfrac1B) H M H\Big],

and the minimum is linearly stable in mean square iff the spectral radius of :math:`T` is at
most 1 (Wu, Ma & E, "How SGD selects the global minima in over-parameterized learning",
NeurIPS 2018). "A Precise Characterization of SGD Stability Using Loss Surface Geometry"
(Dexter et al., ICLR 2024; papers.md row 70) characterizes this condition through the
sharpness and a coherence measure of the per-example Hessians (:func:`hessian_coherence`):
with :math:`S_{ij} = \|H_i^{1/2} H_j^{1/2}\|_F = \sqrt{\mathrm{tr}(H_i H_j)}` for the
positive semi-definite :math:`H_i`,

.. math:: \sigma = \frac{\lambda_1(S)}{\max_i \lambda_1(H_i)} \ge 1,

large when the examples' curvature shares directions (:math:`\sigma = n` for :math:`n`
identical rank-one Hessians) and small when it is spread over orthogonal ones
(:math:`\sigma = 1` for rank-one Hessians with mutually orthogonal ranges). "The Implicit
Regularization of Dynamical Stability in SGD" (Wu & Su, ICML 2023; row 30) derives from
the criterion that stable minima have :math:`\mathrm{tr}\,H \le 2/\eta`, where gradient
descent only needs :math:`\lambda_{max} \le 2/\eta`.

Deviations from the paper:
    Stability itself is decided by the exact criterion (a :math:`d^2 \times d^2` symmetric
    eigenproblem, small models only) rather than by the paper's sufficient condition in
    terms of :math:`\sigma`, :math:`\eta`, :math:`B` and :math:`\lambda_1(H)`: the full
    text with that theorem's exact form was not available (searched: the search tool's
    "pages" corpus, which holds arXiv 2401.12332's abstract and opening; the "code" corpus).
    The definition of :math:`S` and :math:`\sigma` is confirmed by the code of the follow-up
    by the same group (Chang & Khanna 2025, github.com/changwk1001/
    Stability_Analysis_and_Simplicity-Bias, ``coherence_local.py``: ``S_ij = sqrt(tr(A_i
    A_j))`` and a construction whose coherence is the integer it is built with, which the
    tests reproduce). :class:`~trainlab.probes.hessian_spectrum.HessianSpectrum` reports the
    scalable bounds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, hessian, vmap

from trainlab.curvature import flatten, trainable_params, unflatten
from trainlab.errors import ConfigError, check_range


def per_example_hessians(model: nn.Module, loss_fn: Callable[[torch.Tensor, Any], torch.Tensor],
                         inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Dense Hessians ``(n, d, d)`` of each example's loss w.r.t. the flat trainable
    parameters (small models only)."""
    params = trainable_params(model)
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    flat = flatten(params)

    def one(v: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, (unflatten(v, params), buffers), (x.unsqueeze(0),))
        return loss_fn(out, y.unsqueeze(0))

    return vmap(hessian(one), in_dims=(None, 0, 0))(flat, inputs, targets)


def second_moment_operator(hessians: torch.Tensor, lr: float, batch_size: int) -> torch.Tensor:
    """The matrix of :math:`T` acting on ``vec(M)`` (row-major), ``(d^2, d^2)``, symmetric."""
    check_range("lr", lr, low=0.0, low_open=True, owner="second_moment_operator")
    check_range("batch_size", batch_size, low=1, owner="second_moment_operator")
    n, d, _ = hessians.shape
    h = hessians.mean(0)
    eye = torch.eye(d, dtype=h.dtype, device=h.device)
    pair_mean = torch.einsum("nij,nkl->ikjl", hessians, hessians).reshape(d * d, d * d) / n
    hh = torch.kron(h, h)
    return (torch.eye(d * d, dtype=h.dtype, device=h.device)
            - lr * (torch.kron(h, eye) + torch.kron(eye, h))
            + lr ** 2 * (pair_mean / batch_size + (1 - 1 / batch_size) * hh))


def stability_radius(hessians: torch.Tensor, lr: float, batch_size: int) -> float:
    """Spectral radius of :math:`T`: SGD is mean-square stable at the minimum iff <= 1."""
    ev = torch.linalg.eigvalsh(second_moment_operator(hessians, lr, batch_size))
    return float(ev.abs().max())


def critical_lr(hessians: torch.Tensor, batch_size: int, *, rtol: float = 1e-6) -> float:
    """The largest learning rate at which the minimum is still mean-square stable, by
    bisection on :func:`stability_radius` (bracketed by the GD limit ``2/lambda_max``)."""
    lam = float(torch.linalg.eigvalsh(hessians.mean(0)).max())
    hi = 2.0 / lam
    lo = 0.0
    while hi - lo > rtol * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if stability_radius(hessians, mid, batch_size) <= 1.0 else (lo, mid)
    return lo


def hessian_coherence(hessians: torch.Tensor) -> float:
    r"""Dexter et al.'s coherence :math:`\sigma = \lambda_1(S) / \max_i \lambda_1(H_i)` of
    per-example Hessians ``(n, d, d)``, :math:`S_{ij} = \sqrt{\mathrm{tr}(H_i H_j)}` (module
    docstring). The Hessians must be positive semi-definite, as at a minimum of a loss with
    convex per-example terms (their Gauss-Newton parts); a negative eigenvalue below
    ``-1e-8`` times the largest raises :class:`ConfigError`."""
    if hessians.ndim != 3 or hessians.shape[1] != hessians.shape[2] or not len(hessians):
        raise ConfigError(f"hessian_coherence: expected (n, d, d) Hessians, got shape "
                          f"{tuple(hessians.shape)}")
    h = 0.5 * (hessians + hessians.transpose(1, 2))
    ev = torch.linalg.eigvalsh(h)
    top = float(ev[:, -1].max())
    if top <= 0:
        raise ConfigError("hessian_coherence: every per-example Hessian is zero")
    if float(ev.min()) < -1e-8 * top:
        raise ConfigError(f"hessian_coherence: the Hessians must be positive semi-definite "
                          f"(smallest eigenvalue {float(ev.min()):.3g}); use the Gauss-Newton "
                          "parts at a non-convex point")
    flat = h.reshape(len(h), -1)
    s = (flat @ flat.T).clamp_min(0).sqrt()  # tr(H_i H_j) = <H_i, H_j>_F for symmetric H
    return float(torch.linalg.eigvalsh(s)[-1]) / top
