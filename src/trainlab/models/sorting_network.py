r"""Differentiable sorting networks with monotonic sigmoid relaxations.

A sorting network is a fixed sequence of layers of conditional swaps of index pairs
:math:`(i, j)`, :math:`i < j`. Relaxing each swap of :math:`(a, b) = (x_i, x_j)` with a
sigmoid :math:`f`,

.. math::
    \alpha = f(\beta (b - a)), \quad x_i' = \alpha a + (1 - \alpha) b, \quad
    x_j' = (1 - \alpha) a + \alpha b,

makes the network a differentiable map :math:`x \mapsto \mathrm{sort}(x)`, with a relaxed
(doubly stochastic) permutation matrix :math:`P` updated by the same convex combinations of
its columns, so that ``sorted = x @ P``. With the sigmoids whose derivative decays like
:math:`1/v^2` (``"cauchy"`` :math:`\tfrac{1}{\pi}\arctan v + \tfrac12`, ``"reciprocal"``
:math:`\tfrac12(\tfrac{v}{2 + |v|} + 1)`, ``"optimal"``) the network is monotonic: every
entry of :math:`\partial\,\mathrm{sort}(x) / \partial x` is non-negative, so gradients of a
loss on the sorted values never have the wrong sign. The earlier ``"logistic"``,
``"logistic_phi"`` (ART: :math:`\beta(b-a)/|a-b|^\lambda`) and ``"gaussian"`` relaxations
are not monotonic (negative Jacobian entries).

Networks: ``"odd_even"`` (odd-even transposition, ``n`` layers, any ``n``) and ``"bitonic"``
(:math:`\log_2 n (\log_2 n + 1)/2` layers, ``n`` a power of two).

References:
    Petersen, Borgelt, Kuehne, Deussen. "Monotonic Differentiable Sorting Networks",
    ICLR 2022 (papers.md row 113): the relaxed swap, the monotonicity condition and the
    Cauchy, reciprocal and optimal sigmoids; defaults ``steepness = 10``,
    ``art_lambda = 0.25``, ``sigmoid = "cauchy"`` as in the authors' ``diffsort`` package
    (whose convention ``sorted = x @ P`` this follows).

Deviations from the paper:
    Bitonic networks need ``n`` to be a power of two here (``diffsort`` pads); written in
    PyTorch from the equations rather than depending on ``diffsort`` (not installed in
    trainlab's environment), and checked against a scalar reference in the tests. The
    ranking comparison with ``torchsort`` that would make a second reference is not made:
    torchsort 0.1.10 ships only a source distribution whose build requires ``CUDA_HOME``
    even for a CPU install, so it cannot be installed beside the pinned CPU torch here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from trainlab.errors import ConfigError, check_choice, check_range
from trainlab.models._registry import MODELS

Layer = tuple[torch.Tensor, torch.Tensor]


def _optimal(v: torch.Tensor) -> torch.Tensor:
    safe = torch.where(v.abs() > 0.25, v, torch.ones_like(v))
    return torch.where(v > 0.25, 1 - 1 / (16 * safe),
                       torch.where(v < -0.25, -1 / (16 * safe), v + 0.5))


def _sigmoids(steepness: float, art_lambda: float
              ) -> dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    s = steepness
    return {
        "cauchy": lambda a, b: torch.atan(s * (b - a)) / math.pi + 0.5,
        "reciprocal": lambda a, b: 0.5 * (s * (b - a) / (2 + (s * (b - a)).abs()) + 1),
        "optimal": lambda a, b: _optimal(s * (b - a)),
        "logistic": lambda a, b: torch.sigmoid(s * (b - a)),
        "logistic_phi": lambda a, b: torch.sigmoid(
            s * (b - a) / ((a - b).abs() + 1e-10) ** art_lambda),
        "gaussian": lambda a, b: 0.5 * (1 + torch.erf(s * (b - a) / math.sqrt(2))),
    }


SIGMOIDS = tuple(_sigmoids(1.0, 0.25))
MONOTONIC = ("cauchy", "reciprocal", "optimal")


def odd_even_network(n: int) -> list[Layer]:
    """``n`` layers of odd-even transposition: layer ``k`` compares ``(i, i+1)`` for
    ``i = k mod 2, k mod 2 + 2, ...``."""
    check_range("n", n, low=1, owner="odd_even_network")
    layers = []
    for k in range(n):
        first = torch.arange(k % 2, n - 1, 2)
        if first.numel():
            layers.append((first, first + 1))
    return layers


def bitonic_network(n: int) -> list[Layer]:
    """Batcher's bitonic sorting network (ascending) for ``n`` a power of two."""
    if n < 1 or n & (n - 1):
        raise ConfigError(f"The 'n' parameter of bitonic_network must be a power of two. "
                          f"Got {n} instead.")
    layers = []
    k = 2
    while k <= n:
        j = k // 2
        while j >= 1:
            lo, hi = [], []
            for i in range(n):
                partner = i ^ j
                if partner > i:
                    up = (i & k) == 0
                    lo.append(i if up else partner)
                    hi.append(partner if up else i)
            layers.append((torch.tensor(lo), torch.tensor(hi)))
            j //= 2
        k *= 2
    return layers


def relaxed_sort(x: torch.Tensor, network: list[Layer], *, steepness: float = 10.0,
                 sigmoid: str = "cauchy", art_lambda: float = 0.25
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sorted, P)`` for ``x`` of shape ``(batch, n)``: relaxed ascending sort and the
    relaxed permutation matrices ``(batch, n, n)`` with ``sorted = x @ P``."""
    check_choice("sigmoid", sigmoid, SIGMOIDS, owner="relaxed_sort")
    check_range("steepness", steepness, low=0.0, low_open=True, owner="relaxed_sort")
    if x.ndim != 2:
        raise ConfigError(f"relaxed_sort sorts the rows of a 2-D tensor. Got shape "
                          f"{tuple(x.shape)} instead.")
    f = _sigmoids(steepness, art_lambda)[sigmoid]
    n = x.shape[1]
    perm = torch.eye(n, dtype=x.dtype).expand(x.shape[0], n, n)
    for lo, hi in network:
        a, b = x[:, lo], x[:, hi]
        alpha = f(a, b)
        x = x.index_copy(1, lo, alpha * a + (1 - alpha) * b)
        x = x.index_copy(1, hi, (1 - alpha) * a + alpha * b)
        pa, pb, al = perm[:, :, lo], perm[:, :, hi], alpha.unsqueeze(1)
        perm = perm.index_copy(2, lo, al * pa + (1 - al) * pb)
        perm = perm.index_copy(2, hi, (1 - al) * pa + al * pb)
    return x, perm


class DiffSortNet(nn.Module):
    """A differentiable sorting network for vectors of size ``n`` (no parameters).

    Args:
        n: vector size. network: ``"odd_even"`` or ``"bitonic"``. steepness: ``beta``.
        sigmoid: one of :data:`SIGMOIDS` (monotonic: :data:`MONOTONIC`).
        art_lambda: the exponent of ``"logistic_phi"``.
    """

    def __init__(self, n: int, *, network: str = "odd_even", steepness: float = 10.0,
                 sigmoid: str = "cauchy", art_lambda: float = 0.25):
        super().__init__()
        check_choice("network", network, ("odd_even", "bitonic"), owner="DiffSortNet")
        check_choice("sigmoid", sigmoid, SIGMOIDS, owner="DiffSortNet")
        self.layers = odd_even_network(n) if network == "odd_even" else bitonic_network(n)
        self.steepness, self.sigmoid, self.art_lambda = steepness, sigmoid, art_lambda

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return relaxed_sort(x, self.layers, steepness=self.steepness, sigmoid=self.sigmoid,
                            art_lambda=self.art_lambda)


class _SortedValues(nn.Module):
    def __init__(self, net: DiffSortNet):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))[0]


def diffsort(input_shape: tuple[int, ...], num_outputs: int, *, network: str = "odd_even",
             steepness: float = 10.0, sigmoid: str = "cauchy") -> nn.Module:
    """Registry builder: the relaxed sorted values of a flat input of size ``num_outputs``."""
    if math.prod(input_shape) != num_outputs:
        raise ConfigError(f"The 'num_outputs' parameter of diffsort must equal the input size "
                          f"{math.prod(input_shape)}. Got {num_outputs} instead.")
    return _SortedValues(DiffSortNet(num_outputs, network=network, steepness=steepness,
                                     sigmoid=sigmoid))


MODELS.register("diffsort", diffsort, papers=(113,),
                summary="differentiable sorting network with monotonic (Cauchy) relaxation")
