"""PyTorch's default layer init and the Xavier/Glorot and Kaiming/He schemes, seeded by a
generator (``torch.nn.init`` conventions: weight is ``(out, in, *kernel)``)."""

from __future__ import annotations

import math

import torch
from torch import nn

from trainlab.errors import check_choice
from trainlab.init._apply import INITS, InitReport, LayerInit, fan_in_out, selected, tensor_scheme


def torch_default(model: nn.Module, *, generator=None, select=None, batch=None, scheme="", **_):
    """The init ``nn.Linear``/``nn.Conv*`` give themselves (``reset_parameters``):
    weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), but drawn from ``generator``."""
    del batch
    layers = []
    with torch.no_grad():
        for name, module in selected(model, select):
            fan_in, _ = fan_in_out(module.weight)
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            module.weight.uniform_(-bound, bound, generator=generator)
            b = getattr(module, "bias", None)
            if isinstance(b, torch.Tensor):
                b.uniform_(-bound, bound, generator=generator)
            layers.append(LayerInit(name))
    return InitReport(scheme, tuple(layers))


def _kaiming_std(tensor, a: float, mode: str, nonlinearity: str) -> float:
    modes = ("fan_in", "fan_out")
    check_choice("mode", mode.lower(), modes, owner="kaiming init")
    fan = fan_in_out(tensor)[modes.index(mode.lower())]
    gain = nn.init.calculate_gain(nonlinearity, a)
    return gain / math.sqrt(fan) if fan else 0.0  # fan 0: an empty tensor, nothing drawn


def _xavier_std(tensor, gain: float) -> float:
    fan_in, fan_out = fan_in_out(tensor)
    return gain * math.sqrt(2.0 / float(fan_in + fan_out))


# The four schemes draw with Tensor.uniform_/normal_ and their ``generator`` (torch >= 2.0)
# rather than through torch.nn.init, whose ``generator`` argument needs torch >= 2.2: the same
# formulas and draws as torch.nn.init's (tests/init/test_standard_schemes.py compares them
# where torch has the argument).


def xavier_uniform_(tensor, gain: float = 1.0, *, generator=None):
    """Glorot & Bengio (2010): U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))."""
    bound = math.sqrt(3.0) * _xavier_std(tensor, gain)
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def xavier_normal_(tensor, gain: float = 1.0, *, generator=None):
    """Glorot & Bengio (2010): N(0, gain^2 * 2 / (fan_in + fan_out))."""
    with torch.no_grad():
        return tensor.normal_(0.0, _xavier_std(tensor, gain), generator=generator)


def kaiming_uniform_(tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "relu",
                     *, generator=None):
    """He et al. (2015): U(-b, b), b = gain * sqrt(3 / fan_mode), gain = sqrt(2) for ReLU."""
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def kaiming_normal_(tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "relu",
                    *, generator=None):
    """He et al. (2015): N(0, gain^2 / fan_mode), gain = sqrt(2) for ReLU."""
    with torch.no_grad():
        return tensor.normal_(0.0, _kaiming_std(tensor, a, mode, nonlinearity),
                              generator=generator)


INITS.register("torch-default", torch_default,
               summary="PyTorch's own Linear/Conv init, U(+-1/sqrt(fan_in)), seeded")
INITS.register("xavier-uniform", tensor_scheme(xavier_uniform_),
               summary="Glorot/Xavier uniform, variance 2/(fan_in+fan_out)")
INITS.register("xavier-normal", tensor_scheme(xavier_normal_),
               summary="Glorot/Xavier normal, variance 2/(fan_in+fan_out)")
INITS.register("kaiming-uniform", tensor_scheme(kaiming_uniform_),
               summary="He/Kaiming uniform, variance 2/fan_in for ReLU")
INITS.register("kaiming-normal", tensor_scheme(kaiming_normal_),
               summary="He/Kaiming normal, variance 2/fan_in for ReLU")
