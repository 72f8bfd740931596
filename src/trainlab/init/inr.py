r"""Initializations for implicit neural representations: SIREN's, and VI3NR's variance-informed
init for any activation ("VI3NR: Variance Informed Initialization for Implicit Neural
Representations", CVPR 2025, papers.md row 58)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from trainlab.errors import ConfigError, check_range
from trainlab.init._apply import INITS, InitReport, LayerInit, Selector, fan_in_out, selected
from trainlab.init.mean_field import derivative, gaussian_expectation

Activation = Callable[[torch.Tensor], torch.Tensor]


def _resolve(activation: str | Activation) -> Activation:
    if callable(activation):
        return activation
    from trainlab.models.inr import inr_activation

    module = inr_activation(activation)
    return lambda x: module(x)


def siren_(tensor: torch.Tensor, w0: float = 30.0, is_first: bool = False, *,
           generator: torch.Generator | None = None) -> torch.Tensor:
    r"""SIREN's init for a layer followed by :math:`\sin(w_0 \cdot)` (Sitzmann et al. 2020):
    first layer :math:`U(\pm 1/n)`, hidden layers :math:`U(\pm\sqrt{6/n}/w_0)`, :math:`n` =
    fan-in, :math:`w_0 = 30`. Pre-activations :math:`w_0 z` are then arcsine-distributed
    inputs mapped to standard-normal-like sums at every layer."""
    check_range("w0", w0, low=0.0, low_open=True, owner="siren_")
    fan_in, _ = fan_in_out(tensor)
    bound = 1.0 / fan_in if is_first else math.sqrt(6.0 / fan_in) / w0
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def vi3nr_gain(activation: str | Activation, sigma_p: float = 1.0) -> float:
    r"""VI3NR's forward gain: :math:`g^2 = \sigma_p^2 / (E[f(z)]^2 + \mathrm{Var} f(z))`,
    :math:`z \sim N(0, \sigma_p^2)`, so that weights of variance :math:`g^2/\text{fan\_in}` keep
    pre-activations at variance :math:`\sigma_p^2` through depth (bias-free, wide layers).
    Computed by quadrature instead of the paper's 10^6-sample Monte Carlo (same quantity,
    no sampling error). ReLU gives 2; tanh at :math:`\sigma_p = 1` gives 2.54."""
    check_range("sigma_p", sigma_p, low=0.0, low_open=True, owner="vi3nr_gain")
    f = _resolve(activation)
    second = gaussian_expectation(lambda x: f(x) ** 2, sigma_p ** 2)
    if second <= 0:
        raise ConfigError("vi3nr_gain: the activation is zero almost everywhere")
    return math.sqrt(sigma_p ** 2 / second)


def vi3nr_backward_ratio(activation: str | Activation, sigma_p: float) -> float:
    r""":math:`\sigma_p^2 E[f'(z)^2] / E[f(z)^2]`: the per-layer gradient-variance factor under
    the forward gain (VI3NR's backward condition asks for 1)."""
    f = _resolve(activation)
    df = derivative(f)
    q = sigma_p ** 2
    return q * gaussian_expectation(lambda x: df(x) ** 2, q) / gaussian_expectation(
        lambda x: f(x) ** 2, q)


def vi3nr_sigma_p(activation: str | Activation, bracket: tuple[float, float] = (1e-2, 10.0)
                  ) -> float:
    """The pre-activation std ``sigma_p`` that meets both the forward and the backward
    condition (:func:`vi3nr_backward_ratio` = 1), by root search on ``log sigma_p``; the paper
    grid-searches it. Raises :class:`ConfigError` when no root lies in ``bracket``."""
    from scipy.optimize import brentq

    def g(log_s: float) -> float:
        return math.log(vi3nr_backward_ratio(activation, math.exp(log_s)))

    lo, hi = math.log(bracket[0]), math.log(bracket[1])
    if g(lo) * g(hi) > 0:
        raise ConfigError(f"vi3nr_sigma_p: no sigma_p in {bracket} meets the backward condition")
    return math.exp(brentq(g, lo, hi, xtol=1e-10))


def vi3nr_(tensor: torch.Tensor, activation: str | Activation = "tanh", sigma_p: float = 1.0,
           distribution: str = "uniform", *, input_second_moment: float | None = None,
           generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Fill ``tensor`` with VI3NR's init: variance :math:`g^2/\text{fan\_in}`,
    :math:`U(\pm g\sqrt{3/\text{fan\_in}})` (default) or :math:`N(0, g^2/\text{fan\_in})`.

    ``g`` is :func:`vi3nr_gain` for a hidden layer; for the first layer pass
    ``input_second_moment`` = :math:`E[x]^2 + \mathrm{Var}\,x` of the data, giving the paper's
    :math:`g = \sigma_p/\sqrt{\text{mean}^2 + \text{std}^2}`."""
    if distribution not in ("uniform", "normal"):
        raise ConfigError(f"vi3nr_: distribution must be uniform or normal, got {distribution!r}")
    fan_in, _ = fan_in_out(tensor)
    if input_second_moment is None:
        gain = vi3nr_gain(activation, sigma_p)
    else:
        check_range("input_second_moment", input_second_moment, low=0.0, low_open=True,
                    owner="vi3nr_")
        gain = sigma_p / math.sqrt(input_second_moment)
    std = gain / math.sqrt(fan_in)
    with torch.no_grad():
        if distribution == "uniform":
            return tensor.uniform_(-std * math.sqrt(3.0), std * math.sqrt(3.0),
                                   generator=generator)
        return tensor.normal_(0.0, std, generator=generator)


def _apply_layers(model: nn.Module, select: Selector | None, scheme: str,
                  fill: Callable[[int, torch.Tensor], None]) -> InitReport:
    layers = []
    with torch.no_grad():
        for i, (name, module) in enumerate(selected(model, select)):
            fill(i, module.weight)
            if isinstance(getattr(module, "bias", None), torch.Tensor):
                module.bias.zero_()
            layers.append(LayerInit(name))
    return InitReport(scheme, tuple(layers))


def siren(model: nn.Module, *, generator: torch.Generator | None = None,
          select: Selector | None = None, batch=None, scheme: str = "siren", w0: float = 30.0
          ) -> InitReport:
    """Model-level SIREN init: the first selected layer as a first layer, the rest as hidden
    layers (the output layer too, as in the reference); biases zero. Deviation: the
    reference leaves biases at PyTorch's default; we zero them for a seeded, data-free init."""
    del batch
    return _apply_layers(model, select, scheme, lambda i, w: siren_(w, w0, i == 0,
                                                                    generator=generator))


def vi3nr(model: nn.Module, *, generator: torch.Generator | None = None,
          select: Selector | None = None, batch=None, scheme: str = "vi3nr",
          activation: str = "tanh", sigma_p: float = 1.0, distribution: str = "uniform"
          ) -> InitReport:
    """Model-level VI3NR: hidden layers get the activation's forward gain at ``sigma_p``; the
    first layer uses the batch's input statistics when ``batch`` is given (else it is treated
    as a hidden layer); biases zero.

    Deviations from the paper: gains come from quadrature instead of Monte Carlo (see
    :func:`vi3nr_gain`); ``sigma_p`` is an argument (default 1, as in the authors' usage
    example) instead of the paper's grid search (:func:`vi3nr_sigma_p` solves the backward
    condition instead); the first layer uses the batch's pooled mean and variance, and
    without a batch it is treated as a hidden layer; biases are set to zero. Checked: the
    authors' usage example (forward gain, input gain from data mean and std, uniform draw)
    as found with the search tool; the paper body was not read for this paragraph.
    """
    moment = None
    if batch is not None:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        x = x.double()
        moment = float(x.mean() ** 2 + x.var())

    def fill(i: int, w: torch.Tensor) -> None:
        vi3nr_(w, activation, sigma_p, distribution,
               input_second_moment=moment if i == 0 else None, generator=generator)

    return _apply_layers(model, select, scheme, fill)


INITS.register("siren", siren, papers=(58,),
               summary="SIREN: U(+-1/n) first layer, U(+-sqrt(6/n)/30) hidden layers")
INITS.register("vi3nr", vi3nr, papers=(58,),
               summary="variance-informed INR init: gain^2 = sigma_p^2 / E[f(z)^2] per activation")
