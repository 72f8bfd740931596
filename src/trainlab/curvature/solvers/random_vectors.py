"""Random probe vectors for the stochastic estimators (drawn from an explicit generator)."""

from __future__ import annotations

import torch

from trainlab.errors import check_choice

DISTRIBUTIONS = ("rademacher", "gaussian")


def random_probes(dim: int, count: int, distribution: str, generator: torch.Generator | None,
                  dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``(dim, count)`` columns with :math:`E[vv^\\top] = I`: Rademacher (±1) or standard normal."""
    check_choice("distribution", distribution, DISTRIBUTIONS, owner="random_probes")
    if distribution == "rademacher":
        bits = torch.randint(0, 2, (dim, count), generator=generator, device=device)
        return (2 * bits - 1).to(dtype)
    return torch.randn(dim, count, generator=generator, dtype=dtype, device=device)
