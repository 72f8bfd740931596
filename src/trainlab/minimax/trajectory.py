"""The record of one min-max run: iterates, operator norms and the cost in operator calls."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Trajectory:
    """Iterates of a min-max method.

    Attributes:
        iterates: ``(steps + 1, d)``: ``z_0, ..., z_N``.
        residuals: ``(steps + 1,)``: ``||F(z_k)||`` at every iterate.
        extrapolated: ``(steps,)``: ``||F(z~_k)||`` at the extrapolation points of
            extragradient methods (empty for single-call methods).
        evaluations: how many times ``F`` was called (inner solves included).
    """

    iterates: torch.Tensor
    residuals: torch.Tensor
    extrapolated: torch.Tensor
    evaluations: int

    @property
    def last(self) -> torch.Tensor:
        return self.iterates[-1]

    def contraction(self, start: int = 0) -> float:
        """The mean per-step factor of ``||z_k - z*||`` with ``z* = 0`` from ``start`` on
        (the spectral radius of the iteration matrix on a linear game)."""
        norms = self.iterates.norm(dim=1)
        n = norms.numel() - 1 - start
        return float((norms[-1] / norms[start]) ** (1.0 / n))
