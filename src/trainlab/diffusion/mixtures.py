r"""Gaussian mixtures: data whose noised score is known in closed form.

If :math:`x_0 \sim \sum_k w_k N(\mu_k, \Sigma_k)` and :math:`x = s\,x_0 + \sqrt{v}\,\xi`
(VP: :math:`s = \sqrt{\bar\alpha}, v = 1 - \bar\alpha`; VE/EDM: :math:`s = 1, v = \sigma^2`),
then :math:`x \sim \sum_k w_k N(s\mu_k,\ s^2\Sigma_k + vI)` and

.. math:: \nabla \log p(x) = -\sum_k r_k(x)\, C_k^{-1}(x - s\mu_k),\qquad
          C_k = s^2\Sigma_k + vI,

with :math:`r_k` the posterior responsibilities. The optimal noise prediction is
:math:`\varepsilon^*(x) = -\sqrt{v}\,\nabla\log p(x)` and Tweedie's formula gives
:math:`E[x_0 \mid x] = (x + v\nabla\log p(x))/s`. Everything is float64.

These mixtures are the oracle of every diffusion test: the 2-D mixtures of the rows' toy
experiments, and "1-D signals" (a mixture over length-L waveforms with smooth low-rank
covariances), so a learned or sampled quantity can be compared with the exact one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from trainlab.diffusion.schedules import NoiseSchedule
from trainlab.errors import ConfigError, check_range


@dataclass(frozen=True)
class GaussianMixture:
    """``sum_k weights[k] N(means[k], covs[k])`` in R^d (float64; weights sum to 1)."""

    weights: torch.Tensor  # (K,)
    means: torch.Tensor  # (K, d)
    covs: torch.Tensor  # (K, d, d)

    def __post_init__(self) -> None:
        w = torch.as_tensor(self.weights, dtype=torch.float64)
        m = torch.as_tensor(self.means, dtype=torch.float64)
        c = torch.as_tensor(self.covs, dtype=torch.float64)
        if m.ndim != 2 or w.shape != m.shape[:1] or c.shape != (*m.shape, m.shape[1]):
            raise ConfigError("GaussianMixture needs weights (K,), means (K, d), covs (K, d, d);"
                              f" got {tuple(w.shape)}, {tuple(m.shape)}, {tuple(c.shape)}.")
        if not bool((w > 0).all()) or abs(w.sum().item() - 1) > 1e-9:
            raise ConfigError("The 'weights' of GaussianMixture must be positive and sum to 1.")
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "means", m)
        object.__setattr__(self, "covs", c)
        lam, vecs = torch.linalg.eigh(0.5 * (c + c.transpose(-1, -2)))
        object.__setattr__(self, "_eig", (lam.clamp(min=0), vecs))

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def sample(self, n: int, *, generator: torch.Generator | None = None,
               return_labels: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``n`` draws (and their component labels if asked)."""
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        chol = torch.linalg.cholesky(self.covs + 1e-12 * torch.eye(self.dim, dtype=torch.float64))
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        x = self.means[k] + torch.einsum("nij,nj->ni", chol[k], z)
        return (x, k) if return_labels else x

    def _noised(self, scale: torch.Tensor, var: torch.Tensor, x: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Responsibilities ``(n, K)``, the component scores ``(n, K, d)`` and the log density
        ``(n,)`` of the noised mixture; ``scale``/``var`` broadcast as ``(n,)`` or scalars."""
        x = x.to(torch.float64)
        n, d = x.shape
        s = torch.as_tensor(scale, dtype=torch.float64).expand(n)
        v = torch.as_tensor(var, dtype=torch.float64).expand(n)
        lam, vecs = self._eig  # Sigma_k = U diag(lam) U^T, so C_k = U diag(s^2 lam + v) U^T
        diff = x[:, None, :] - s[:, None, None] * self.means  # (n, K, d)
        proj = torch.einsum("kdj,nkd->nkj", vecs, diff)
        c_eig = s[:, None, None] ** 2 * lam + v[:, None, None]  # (n, K, d)
        sol = torch.einsum("kdj,nkj->nkd", vecs, proj / c_eig)  # C^-1 diff
        logdet = torch.log(c_eig).sum(-1)
        logp = -0.5 * ((proj ** 2 / c_eig).sum(-1) + logdet + d * math.log(2 * math.pi))
        resp = torch.softmax(logp + self.weights.log(), dim=1)
        return resp, -sol, torch.logsumexp(logp + self.weights.log(), dim=1)

    def score(self, x: torch.Tensor, scale: torch.Tensor | float, var: torch.Tensor | float
              ) -> torch.Tensor:
        r""":math:`\nabla\log p(x)` of :math:`s x_0 + \sqrt{v}\xi` (``scale`` s, ``var`` v)."""
        resp, comp, _ = self._noised(torch.as_tensor(scale), torch.as_tensor(var), x)
        return (resp[..., None] * comp).sum(1)

    def log_prob(self, x: torch.Tensor, scale: float = 1.0, var: float = 0.0) -> torch.Tensor:
        """Log density of the (noised) mixture at ``x``."""
        return self._noised(torch.as_tensor(scale), torch.as_tensor(var), x)[2]

    def eps_star(self, x: torch.Tensor, abar: torch.Tensor | float) -> torch.Tensor:
        r"""The exact noise prediction :math:`-\sqrt{1-\bar\alpha}\,\nabla\log p_t(x)` (VP)."""
        abar = torch.as_tensor(abar, dtype=torch.float64).expand(x.shape[0])
        return -torch.sqrt(1 - abar)[:, None] * self.score(x, abar.sqrt(), 1 - abar)

    def denoiser(self, schedule: NoiseSchedule) -> Callable[[torch.Tensor, torch.Tensor],
                                                             torch.Tensor]:
        """The exact ``eps_fn(x, t)`` under ``schedule`` (``t``: integer or real timesteps,
        shape ``(n,)`` or scalar), in the dtype of ``x``."""

        def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            t = torch.as_tensor(t)
            abar = schedule.abar(t) if not t.is_floating_point() else \
                schedule.abar_continuous(t)
            return self.eps_star(x, abar.expand(x.shape[0])).to(x.dtype)

        return eps_fn

    def edm_denoiser(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        r"""The exact EDM denoiser :math:`D(x, \sigma) = E[x_0 \mid x_0 + \sigma\xi = x]
        = x + \sigma^2 \nabla\log p_\sigma(x)`."""
        sigma = torch.as_tensor(sigma, dtype=torch.float64)
        return (x + sigma ** 2 * self.score(x, 1.0, sigma ** 2)).to(x.dtype)


def ring_mixture(components: int = 8, radius: float = 2.0, std: float = 0.2) -> GaussianMixture:
    """``components`` equal-weight isotropic Gaussians (std ``std``) on a circle in R^2."""
    check_range("components", components, low=1, owner="ring_mixture")
    check_range("std", std, low=0.0, low_open=True, owner="ring_mixture")
    ang = 2 * math.pi * torch.arange(components, dtype=torch.float64) / components
    means = radius * torch.stack([ang.cos(), ang.sin()], 1)
    covs = std ** 2 * torch.eye(2, dtype=torch.float64).expand(components, 2, 2).clone()
    return GaussianMixture(torch.full((components,), 1 / components, dtype=torch.float64),
                           means, covs)


def signal_mixture(length: int = 32, *, rank: int = 3, noise: float = 0.05) -> GaussianMixture:
    r"""1-D signals: three waveform classes of length ``length`` on [0, 1) (a sine, a square
    wave, a ramp), each with a smooth rank-``rank`` covariance (random amplitudes of the first
    ``rank`` cosine modes, std 0.3/(j+1)) plus ``noise``^2 I. Equal weights."""
    check_range("length", length, low=2, owner="signal_mixture")
    check_range("rank", rank, low=0, owner="signal_mixture")
    check_range("noise", noise, low=0.0, low_open=True, owner="signal_mixture")
    s = torch.arange(length, dtype=torch.float64) / length
    means = torch.stack([torch.sin(2 * math.pi * s), torch.sign(torch.sin(2 * math.pi * s)
                                                                   + 1e-12) * 0.8,
                         2 * s - 1])
    basis = torch.stack([torch.cos(math.pi * j * s) * 0.3 / (j + 1) for j in range(rank)], 1) \
        if rank else torch.zeros(length, 0, dtype=torch.float64)
    cov = basis @ basis.T + noise ** 2 * torch.eye(length, dtype=torch.float64)
    return GaussianMixture(torch.full((3,), 1 / 3, dtype=torch.float64), means,
                           cov.expand(3, length, length).clone())


__all__ = ["GaussianMixture", "ring_mixture", "signal_mixture"]
