"""Initialization schemes: tensor-level ``scheme_(tensor, ..., generator=)`` functions in the
style of ``torch.nn.init``, and model-level application by name with :func:`apply`.

Example:
    >>> import torch, trainlab.init as tinit
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    >>> report = tinit.apply(model, "orthogonal", generator=torch.Generator().manual_seed(0))
    >>> [layer.name for layer in report.layers]
    ['0', '2']
"""

from trainlab.init._apply import (
    INITS,
    InitReport,
    LayerInit,
    apply,
    fan_in_out,
    selected,
    tensor_scheme,
    weight_layers,
)
from trainlab.init.lsuv import lsuv
from trainlab.init.orthogonal import orthogonal_
from trainlab.init.standard import (
    kaiming_normal_,
    kaiming_uniform_,
    torch_default,
    xavier_normal_,
    xavier_uniform_,
)

__all__ = [
    "INITS",
    "InitReport",
    "LayerInit",
    "apply",
    "fan_in_out",
    "kaiming_normal_",
    "kaiming_uniform_",
    "lsuv",
    "orthogonal_",
    "selected",
    "tensor_scheme",
    "torch_default",
    "weight_layers",
    "xavier_normal_",
    "xavier_uniform_",
]
