r"""Initialization of maxout networks from their expected gradients ("Expected Gradients of
Maxout Networks and Consequences to Parameter Initialization", Tseran & Montufar, ICML 2023,
papers.md row 17)."""

from __future__ import annotations

import math

import torch
from torch import nn

from trainlab.errors import check_range
from trainlab.init._apply import INITS, InitReport, LayerInit, Selector, fan_in_out, selected
from trainlab.init.mean_field import gaussian_expectation


def maxout_second_moment(rank: int) -> float:
    r""":math:`M_K = E[(\max_{k \le K} z_k)^2]` for :math:`K` iid standard normals:
    :math:`\int t^2 K \varphi(t) \Phi(t)^{K-1} dt` (``M_2 = 1``, ``M_3 = 1.27566``,
    ``M_4 = 1.55133``, ``M_5 = 1.80002``)."""
    check_range("rank", rank, low=1, owner="maxout_second_moment")
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0)
    return gaussian_expectation(lambda t: t * t * rank * normal.cdf(t) ** (rank - 1))


def maxout_constant(rank: int) -> float:
    """The paper's weight-variance constant ``c = 1 / M_K`` (weights ``N(0, c / fan_in)``)."""
    return 1.0 / maxout_second_moment(rank)


def maxout_chi2_order_moments(rank: int) -> tuple[float, float]:
    r"""``(E[min_k z_k^2], E[max_k z_k^2])`` for :math:`K` iid standard normals: the smallest
    and largest order statistics of :math:`K` :math:`\chi^2_1` variables that bound the
    per-layer factor of the squared input-output Jacobian in the paper (its reciprocals at
    ``K = 2..5`` are the authors' table: ``2.7519, 5.18678, 8.28487, 12.03698`` and
    ``0.61102, 0.47559, 0.40482, 0.36052``)."""
    check_range("rank", rank, low=1, owner="maxout_chi2_order_moments")
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0)

    def below(t: torch.Tensor) -> torch.Tensor:  # P(z^2 <= t^2)
        return 2.0 * normal.cdf(t.abs()) - 1.0

    smallest = gaussian_expectation(lambda t: t * t * rank * (1.0 - below(t)) ** (rank - 1))
    largest = gaussian_expectation(lambda t: t * t * rank * below(t) ** (rank - 1))
    return smallest, largest


def maxout_normal_(tensor: torch.Tensor, rank: int = 5, *,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Fill the weight of a rank-``rank`` maxout layer with :math:`N(0, c/\text{fan\_in})`,
    :math:`c = 1/M_K`, in place. ``fan_in`` is the number of inputs of one affine piece (the
    previous layer's width in maxout *units*), i.e. ``tensor.shape[1] * prod(kernel)`` (the
    authors' conv code uses ``c / (k^2 C_in)``, the same thing).

    Constants (authors' code ``maxout_expected_gradients``, ``m_dict``): ``c = 1, 0.78391,
    0.64461, 0.55555`` for ``K = 2..5``; the last linear layer uses ``c = 1``; biases 0.

    What this constant stabilises (tested in ``tests/init/test_maxout.py``): the activation
    length :math:`E\|h^l\|^2` and the input-output Jacobian moment along the input,
    :math:`E\|J_{\mathcal N}(x)\,x/\|x\|\|^2 = (n_L/n_0)(cM_K)^L` (exact: zero-bias maxout
    nets are positively homogeneous, so :math:`J(x)x = \mathcal N(x)`), which is 1 at every
    depth only for :math:`c = 1/M_K`; for any direction :math:`u` the per-layer factor lies
    between :math:`c\,E[\min_k \chi^2_{1,k}]` and :math:`c\,E[\max_k \chi^2_{1,k}]` (the
    paper's order-statistic bounds, :func:`maxout_chi2_order_moments`). The component of a
    direction orthogonal to the input shrinks by :math:`c` per layer, so the full gradient norm
    of a shallow net is larger than in the deep limit (the paper's input dependence)."""
    fan_in, _ = fan_in_out(tensor)
    std = math.sqrt(maxout_constant(rank) / fan_in)
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


def maxout_init(model: nn.Module, *, generator: torch.Generator | None = None,
                select: Selector | None = None, batch=None, scheme: str = "maxout",
                **_: object) -> InitReport:
    """Model-level maxout init: the linear map inside each ``Maxout`` module gets
    :func:`maxout_normal_` with its rank; any other selected layer (e.g. the linear readout)
    gets ``N(0, 1 / fan_in)`` (``c = 1``, the paper's last layer); biases are zero.

    Deviations from the paper: the constants are those of the authors' code (see
    :func:`maxout_normal_`); the paper's text was not read for this paragraph. Every
    selected layer that is not inside a ``Maxout`` module (not only the readout) gets
    ``c = 1``; biases are set to zero.
    """
    del batch
    from trainlab.models.maxout import Maxout

    ranks = {id(m.linear): m.rank for m in model.modules() if isinstance(m, Maxout)}
    layers = []
    with torch.no_grad():
        for name, module in selected(model, select):
            rank = ranks.get(id(module))
            if rank is None:
                fan_in, _ = fan_in_out(module.weight)
                module.weight.normal_(0.0, fan_in ** -0.5, generator=generator)
            else:
                maxout_normal_(module.weight, rank, generator=generator)
            if isinstance(getattr(module, "bias", None), torch.Tensor):
                module.bias.zero_()
            layers.append(LayerInit(name, extra={"rank": float(rank or 1)}))
    return InitReport(scheme, tuple(layers))


INITS.register("maxout", maxout_init, papers=(17,),
               summary="maxout pieces N(0, c/fan_in) with c = 1/E[max of K normals^2]")
