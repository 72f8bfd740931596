r"""Spectral regularizer: keep each layer's largest singular value near 1 (Lewandowski et al.,
"Learning Continually by Spectral Regularization", ICLR 2025; papers.md row 47).

.. math::

    R(\theta) = \sum_l \big(\sigma_1(W_l)^k - 1\big)^2 + \sum_l \|b_l\|_2^{2k},

with :math:`W_l` a layer's weight reshaped to ``(out, rest)`` and :math:`b_l` its bias (a
vector's only singular value is its norm, pushed to 0, where biases start). The paper's
argument: the singular values at initialization make a network trainable, and losing
plasticity goes with the largest one growing, so the regularizer holds it near its init
value 1 while leaving the other singular values free (unlike L2, which shrinks them all).

:math:`\sigma_1` comes from power iteration whose vectors :math:`u, v` persist between calls
(one iteration per call, warm-started, as spectral normalization does); :math:`u, v` are
constants for autograd and :math:`\sigma_1 = u^\top W v` keeps its gradient
:math:`\partial \sigma_1 / \partial W = u v^\top`. (A public third-party version computes
:math:`\sigma_1` under ``no_grad``, which silently removes the weight term's gradient.)

:class:`StackedSpectralRegularizer` is the same regularizer for R runs stacked along a leading
axis (:mod:`trainlab.train.stacked`), one value per run, with batched power iteration.

Deviations / uncertain: the exponent's default (k = 2 here; a third-party implementation
uses 3) and the bias term were read from secondary sources, not the paper; both are
arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from trainlab.errors import ConfigError, check_range


class SpectralRegularizer:
    """``reg(model) -> R`` (a scalar tensor with gradient) for the layers chosen by
    ``select(name, module)`` (default: every module with a ``weight`` of >= 2 dimensions).

    Args:
        k: exponent on sigma_1 (>= 1).
        iterations: power iterations per call (>= 1); the vectors are warm-started.
        include_bias: add the ``||b||^(2k)`` term.
        generator: draws the initial power-iteration vectors.
    """

    def __init__(self, k: float = 2.0, iterations: int = 1, include_bias: bool = True,
                 select: Callable[[str, nn.Module], bool] | None = None,
                 generator: torch.Generator | None = None):
        check_range("k", k, low=1.0, owner="SpectralRegularizer")
        check_range("iterations", iterations, low=1, owner="SpectralRegularizer")
        self.k, self.iterations, self.include_bias = k, iterations, include_bias
        self.select, self.generator = select, generator
        self._vectors: dict[str, torch.Tensor] = {}

    def _layers(self, model: nn.Module) -> list[tuple[str, nn.Module]]:
        return [(n, m) for n, m in model.named_modules()
                if isinstance(getattr(m, "weight", None), torch.Tensor) and m.weight.dim() >= 2
                and (self.select is None or self.select(n, m))]

    def top_singular_value(self, name: str, weight: torch.Tensor) -> torch.Tensor:
        """sigma_1 of ``weight`` (as ``(out, rest)``) with gradient ``u v^T``; advances the
        stored power-iteration vector of layer ``name``."""
        w = weight.reshape(weight.shape[0], -1)
        v = self._vectors.get(name)
        if v is None or v.shape[0] != w.shape[1]:
            v = torch.randn(w.shape[1], generator=self.generator, dtype=w.dtype)
            v = v.to(w.device) / v.norm()
        with torch.no_grad():
            for _ in range(self.iterations):
                u = w @ v
                u = u / u.norm().clamp_min(1e-30)
                v = w.T @ u
                v = v / v.norm().clamp_min(1e-30)
            u = w @ v
            u = u / u.norm().clamp_min(1e-30)
        self._vectors[name] = v
        return u @ w @ v

    def __call__(self, model: nn.Module) -> torch.Tensor:
        terms = []
        for name, module in self._layers(model):
            sigma = self.top_singular_value(name, module.weight)
            terms.append((sigma ** self.k - 1.0) ** 2)
            bias = getattr(module, "bias", None)
            if self.include_bias and isinstance(bias, torch.Tensor):
                terms.append(bias.pow(2).sum() ** self.k)
        if not terms:
            return torch.zeros(())
        return torch.stack(terms).sum()


def stacked_top_singular_values(weight: torch.Tensor, v: torch.Tensor, iterations: int = 1
                                ) -> tuple[torch.Tensor, torch.Tensor]:
    """sigma_1 of each of R stacked matrices by warm-started power iteration, the batched form
    of :meth:`SpectralRegularizer.top_singular_value` (the same steps, one batched product per
    step for all R matrices).

    Args:
        weight: ``(R, out, *rest)``, read as ``(R, out, prod(rest))``.
        v: ``(R, prod(rest))``, each row a unit vector: the start of the iteration.
        iterations: power iterations (>= 1).

    Returns:
        ``(sigma, v)``: ``sigma`` of shape ``(R,)`` as ``u_r^T W_r v_r`` with the gradient
        ``u_r v_r^T`` (``u``, ``v`` constants for autograd), and the advanced vectors.
    """
    check_range("iterations", iterations, low=1, owner="stacked_top_singular_values")
    w = weight.reshape(weight.shape[0], weight.shape[1], -1)

    def unit(x: torch.Tensor) -> torch.Tensor:
        return x / x.norm(dim=1, keepdim=True).clamp_min(1e-30)

    with torch.no_grad():
        for _ in range(iterations):
            u = unit(torch.bmm(w, v.unsqueeze(2)).squeeze(2))
            v = unit(torch.bmm(u.unsqueeze(1), w).squeeze(1))
        u = unit(torch.bmm(w, v.unsqueeze(2)).squeeze(2))
    sigma = torch.bmm(torch.bmm(u.unsqueeze(1), w), v.unsqueeze(2)).reshape(-1)
    return sigma, v


class StackedSpectralRegularizer:
    """The spectral regularizer of R stacked runs (:mod:`trainlab.train.stacked`): called on
    the stacked layers ``[(name, weight (R, out, ...), bias (R, out) or None), ...]`` it
    returns the ``(R,)`` values of :class:`SpectralRegularizer` for each run, with gradients.
    Run ``r``'s power-iteration vectors are drawn from ``generators[r]`` (the first time a
    layer is seen, in layer order, as :class:`SpectralRegularizer` draws them from its
    generator), so a stacked run consumes its generator as the same run done alone would.

    Args:
        generators: one per run (``None``: torch's global generator for that run's draws).
        k, iterations, include_bias: as in :class:`SpectralRegularizer`.
    """

    def __init__(self, generators: Sequence[torch.Generator | None], k: float = 2.0,
                 iterations: int = 1, include_bias: bool = True):
        check_range("k", k, low=1.0, owner="StackedSpectralRegularizer")
        check_range("iterations", iterations, low=1, owner="StackedSpectralRegularizer")
        check_range("len(generators)", len(generators), low=1, owner="StackedSpectralRegularizer")
        self.generators = list(generators)
        self.k, self.iterations, self.include_bias = k, iterations, include_bias
        self._vectors: dict[str, torch.Tensor] = {}

    def _start(self, name: str, weight: torch.Tensor) -> torch.Tensor:
        v = self._vectors.get(name)
        rest = weight[0].numel() // weight.shape[1]
        if v is None or v.shape[1] != rest:
            rows = [torch.randn(rest, generator=g, dtype=weight.dtype) for g in self.generators]
            v = torch.stack([r / r.norm() for r in rows]).to(weight.device)
        return v

    def __call__(self, layers: Sequence[tuple[str, torch.Tensor, torch.Tensor | None]]
                 ) -> torch.Tensor:
        terms = []
        for name, weight, bias in layers:
            if weight.shape[0] != len(self.generators):
                raise ConfigError(f"StackedSpectralRegularizer: layer {name!r} stacks "
                                  f"{weight.shape[0]} runs, the regularizer has "
                                  f"{len(self.generators)} generators")
            sigma, self._vectors[name] = stacked_top_singular_values(
                weight, self._start(name, weight), self.iterations)
            terms.append((sigma ** self.k - 1.0) ** 2)
            if self.include_bias and bias is not None:
                terms.append(bias.pow(2).sum(1) ** self.k)
        if not terms:
            return torch.zeros(len(self.generators))
        return torch.stack(terms).sum(0)
