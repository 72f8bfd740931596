r"""Exact train and test error of linear regression under gradient descent, from the spectrum
of the data (Advani, Saxe & Sompolinsky, "High-dimensional dynamics of generalization error in
neural networks", Neural Networks 2020; papers.md row 26).

Setting (the paper's): ``P`` examples :math:`x^\mu \sim \mathcal N(0, I/N)` in ``N``
dimensions, a noisy linear teacher :math:`y = \bar w\cdot x + \epsilon` with
:math:`\bar w_i \sim \mathcal N(0, \sigma_{\bar w}^2)` and
:math:`\epsilon \sim \mathcal N(0, \sigma_\epsilon^2)`, a linear student started at
:math:`w_0 \sim \mathcal N(0, \sigma_0^2 I)` and trained by gradient descent on
:math:`\tfrac12 \|y - Xw\|^2`. In the eigenbasis :math:`X^T X = \sum_i \lambda_i v_i v_i^T`
each mode relaxes on its own, with the factor :math:`d_i(t) = e^{-\lambda_i t/\tau}` (gradient
flow) or :math:`(1 - \eta\lambda_i)^t` (gradient descent with step :math:`\eta`). Averaged over
teacher, noise and initialization:

.. math::
    E_g(t) = \frac1N \sum_i \Big[(\sigma_{\bar w}^2 + \sigma_0^2) d_i^2
             + \sigma_\epsilon^2 \frac{(1 - d_i)^2}{\lambda_i}\Big] + \sigma_\epsilon^2,

.. math::
    E_t(t) = \frac1P \Big[\sum_{\lambda_i > 0} d_i^2 \big(\sigma_\epsilon^2
             + \lambda_i(\sigma_{\bar w}^2 + \sigma_0^2)\big) + (P - \mathrm{rank}\,X)\,
             \sigma_\epsilon^2\Big].

Modes with :math:`\lambda_i = 0` never move (the frozen subspace, :math:`d_i = 1`). As
:math:`N \to \infty` with :math:`\alpha = P/N` fixed the sums become integrals over the
Marchenko-Pastur law :func:`marchenko_pastur_density` (edges :math:`(1 \pm \sqrt\alpha)^2`,
mass :math:`1 - \alpha` at 0 when :math:`\alpha < 1`). The :math:`1/\lambda` noise term makes
the converged test error blow up as :math:`\lambda_- \to 0`, i.e. at :math:`\alpha = 1`
(:math:`N = P`): the double-descent peak. Stopping early (finite :math:`t`) or ridge
(:func:`ridge_generalization_error`) keeps every mode's noise gain bounded and removes the peak.

Functions take either ``alpha`` (the large-N theory) or an explicit eigenvalue array
(``eigenvalues=``, the exact finite-N average for that data matrix).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainlab.errors import ConfigError, check_range


@dataclass(frozen=True)
class Spectrum:
    """A spectral measure of :math:`X^T X`: atoms ``values`` with ``weights`` per input
    dimension (sum of weights = fraction of nonzero eigenvalues), plus ``zero_mass`` (the
    fraction of zero eigenvalues) and ``alpha`` = P/N."""

    values: np.ndarray
    weights: np.ndarray
    zero_mass: float
    alpha: float


def marchenko_pastur_density(lam: np.ndarray | float, alpha: float) -> np.ndarray:
    r"""Continuous part of the Marchenko-Pastur density of the eigenvalues of :math:`X^T X`,
    :math:`\rho(\lambda) = \sqrt{(\lambda_+ - \lambda)(\lambda - \lambda_-)}/(2\pi\lambda)` on
    :math:`[\lambda_-, \lambda_+] = [(1-\sqrt\alpha)^2, (1+\sqrt\alpha)^2]`; it integrates to
    :math:`\min(1, \alpha)`."""
    check_range("alpha", alpha, low=0.0, low_open=True, owner="marchenko_pastur_density")
    lam = np.asarray(lam, dtype=np.float64)
    lo, hi = (1 - np.sqrt(alpha)) ** 2, (1 + np.sqrt(alpha)) ** 2
    inside = (lam > lo) & (lam < hi)
    out = np.zeros_like(lam)
    out[inside] = np.sqrt((hi - lam[inside]) * (lam[inside] - lo)) / (2 * np.pi * lam[inside])
    return out


def marchenko_pastur(alpha: float, nodes: int = 4000) -> Spectrum:
    r"""The Marchenko-Pastur law as a quadrature rule. With :math:`\lambda = (1+\alpha) +
    2\sqrt\alpha\cos\theta` the density becomes smooth in :math:`\theta`, so a midpoint rule in
    :math:`\theta` converges fast (exact to ~1e-10 for smooth integrands at 4000 nodes, slower
    near :math:`\alpha = 1` where :math:`1/\lambda` is singular at the edge)."""
    check_range("alpha", alpha, low=0.0, low_open=True, owner="marchenko_pastur")
    check_range("nodes", nodes, low=16, owner="marchenko_pastur")
    theta = (np.arange(nodes) + 0.5) * np.pi / nodes
    h = 2 * np.sqrt(alpha)
    lam = 1 + alpha + h * np.cos(theta)
    weights = h**2 * np.sin(theta) ** 2 / (2 * np.pi * lam) * (np.pi / nodes)
    return Spectrum(lam, weights, max(0.0, 1 - alpha), alpha)


def empirical_spectrum(eigenvalues: np.ndarray, num_samples: int, tol: float = 1e-10
                       ) -> Spectrum:
    """The spectrum of one data matrix: ``eigenvalues`` of :math:`X^T X` (length N) and the
    number of samples P. Eigenvalues below ``tol * max`` count as zero."""
    ev = np.asarray(eigenvalues, dtype=np.float64)
    if ev.ndim != 1 or ev.size == 0:
        raise ConfigError("empirical_spectrum: eigenvalues must be a non-empty 1-D array")
    check_range("num_samples", num_samples, low=1, owner="empirical_spectrum")
    zero = ev <= tol * max(ev.max(), 1e-300)
    n = ev.size
    return Spectrum(ev[~zero], np.full((~zero).sum(), 1.0 / n), zero.sum() / n, num_samples / n)


def _decay(spec: Spectrum, t: np.ndarray, lr: float | None) -> np.ndarray:
    lam = spec.values[None, :]
    tt = t[:, None]
    if lr is None:
        return np.exp(-lam * tt)
    if np.any(np.abs(1 - lr * spec.values) >= 1):
        raise ConfigError(f"linear regression theory: lr={lr} makes gradient descent diverge "
                          f"(needs lr < 2/lambda_max = {2 / spec.values.max():.4g})")
    return (1 - lr * lam) ** tt


def _spectrum(alpha: float | None, eigenvalues: np.ndarray | None, num_samples: int | None
              ) -> Spectrum:
    if (alpha is None) == (eigenvalues is None):
        raise ConfigError("give exactly one of alpha (large-N theory) or eigenvalues")
    if eigenvalues is not None:
        if num_samples is None:
            raise ConfigError("eigenvalues= needs num_samples= (P)")
        return empirical_spectrum(eigenvalues, num_samples)
    return marchenko_pastur(float(alpha))


def generalization_error(t: np.ndarray | float, *, alpha: float | None = None,
               eigenvalues: np.ndarray | None = None, num_samples: int | None = None,
               teacher_var: float = 1.0, noise_var: float = 0.0, init_var: float = 0.0,
               lr: float | None = None) -> np.ndarray:
    r"""Expected test (generalization) error :math:`E_g(t)` at time(s) ``t``.

    Deviations from the paper: the discrete gradient-descent factor :math:`(1 - \eta\lambda_i)^t`
    and the exact average for one given data matrix are additions beside the paper's gradient-flow,
    Marchenko-Pastur theory; the formulas were not re-read line by line against the paper for this
    paragraph.

    Args:
        t: gradient-flow time in units of :math:`\tau` (``lr=None``) or GD step counts.
        alpha: P/N for the Marchenko-Pastur (large-N) theory.
        eigenvalues, num_samples: instead, the exact average for one data matrix.
        teacher_var: :math:`\sigma_{\bar w}^2`; noise_var: :math:`\sigma_\epsilon^2`;
            init_var: :math:`\sigma_0^2`.
        lr: when given, discrete gradient descent with this step on
            :math:`\tfrac12\|y - Xw\|^2`.
    """
    spec = _spectrum(alpha, eigenvalues, num_samples)
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))
    d = _decay(spec, t, lr)
    signal = (teacher_var + init_var) * (d**2 @ spec.weights)
    noise = noise_var * (((1 - d) ** 2) @ (spec.weights / spec.values))
    frozen = (teacher_var + init_var) * spec.zero_mass
    return signal + noise + frozen + noise_var


def training_error(t: np.ndarray | float, *, alpha: float | None = None,
                eigenvalues: np.ndarray | None = None, num_samples: int | None = None,
                teacher_var: float = 1.0, noise_var: float = 0.0, init_var: float = 0.0,
                lr: float | None = None) -> np.ndarray:
    r"""Expected training error :math:`E_t(t) = \frac1P\|y - Xw(t)\|^2` (arguments as in
    :func:`generalization_error`). Once :math:`P > N` it tends to
    :math:`\sigma_\epsilon^2(1 - N/P)`.

    Deviations from the paper: the discrete gradient-descent factor :math:`(1 - \eta\lambda_i)^t`
    and the exact average for one given data matrix are additions beside the paper's gradient-flow,
    Marchenko-Pastur theory; the formulas were not re-read line by line against the paper for this
    paragraph.
    """
    spec = _spectrum(alpha, eigenvalues, num_samples)
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))
    d = _decay(spec, t, lr)
    per_mode = noise_var + spec.values * (teacher_var + init_var)
    fitted = (d**2 @ (spec.weights * per_mode)) / spec.alpha
    rank_fraction = 1.0 - spec.zero_mass
    residual = max(0.0, 1.0 - rank_fraction / spec.alpha) * noise_var
    return fitted + residual


def ridge_generalization_error(gamma: float, *, alpha: float | None = None,
                     eigenvalues: np.ndarray | None = None, num_samples: int | None = None,
                     teacher_var: float = 1.0, noise_var: float = 0.0) -> float:
    r"""Expected test error of ridge regression :math:`w = (X^TX + \gamma I)^{-1}X^Ty`:
    :math:`\int\rho\,[\sigma_{\bar w}^2\gamma^2 + \sigma_\epsilon^2\lambda]/(\lambda+\gamma)^2
    + (1-\alpha)_+\sigma_{\bar w}^2 + \sigma_\epsilon^2`."""
    check_range("gamma", gamma, low=0.0, low_open=True, owner="ridge_generalization_error")
    spec = _spectrum(alpha, eigenvalues, num_samples)
    lam = spec.values
    per_mode = (teacher_var * gamma**2 + noise_var * lam) / (lam + gamma) ** 2
    return float(per_mode @ spec.weights + teacher_var * spec.zero_mass + noise_var)


def optimal_stopping(t: np.ndarray, **kwargs: float) -> tuple[float, float]:
    """``(t*, E_g(t*))``: the time on the grid ``t`` with the lowest test error (the
    early-stopped error), for the keyword arguments of :func:`generalization_error`."""
    t = np.asarray(t, dtype=np.float64)
    err = generalization_error(t, **kwargs)  # type: ignore[arg-type]
    i = int(np.argmin(err))
    return float(t[i]), float(err[i])
