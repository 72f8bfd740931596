r"""A diagonal Gaussian over the initial noise of a sampler, :math:`N(\mu, \mathrm{diag}\,
\sigma^2)`, shared by the initial-noise methods: InitNO optimises a reparameterised noise
:math:`z' = \mu + \sigma\odot z` (row 107), FIND optimises the distribution as a policy
(row 61). Both start at the sampler's own :math:`N(0, I)` (:math:`\mu = 0`,
:math:`\log\sigma^2 = 0`)."""

from __future__ import annotations

import math

import torch
from torch import nn


class NoiseDistribution(nn.Module):
    r"""Parameters ``mu`` and ``log_var`` of shape ``shape`` (float64), initialised to the
    standard normal."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.mu = nn.Parameter(torch.zeros(shape, dtype=torch.float64))
        self.log_var = nn.Parameter(torch.zeros(shape, dtype=torch.float64))

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.log_var)

    def reparameterize(self, z: torch.Tensor) -> torch.Tensor:
        r""":math:`\mu + \sigma\odot z` (differentiable in the parameters)."""
        return self.mu + self.std * z

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws, without gradient."""
        z = torch.randn((n, *self.mu.shape), generator=generator, dtype=torch.float64)
        with torch.no_grad():
            return self.reparameterize(z)

    def log_prob(self, x: torch.Tensor, *, reduce: str = "sum") -> torch.Tensor:
        """Log density of each row of ``x`` (summed, or averaged with ``reduce="mean"`` as
        in the FIND code, over the elements)."""
        elem = -0.5 * ((x - self.mu) ** 2 / self.log_var.exp() + self.log_var
                       + math.log(2 * math.pi))
        elem = elem.flatten(1)
        return elem.mean(1) if reduce == "mean" else elem.sum(1)

    def kl_to_standard(self, *, per_row: bool = False) -> torch.Tensor:
        r"""Element-averaged :math:`KL(N(\mu,\sigma^2)\,\|\,N(0,1))
        = \tfrac12\,\mathrm{mean}(\sigma^2 + \mu^2 - 1 - \log\sigma^2)`: over all
        elements, or (``per_row``) over each row's elements when the first dimension indexes
        independent noises."""
        elem = 0.5 * (self.log_var.exp() + self.mu ** 2 - 1 - self.log_var)
        return elem.flatten(1).mean(1) if per_row else elem.mean()


__all__ = ["NoiseDistribution"]
