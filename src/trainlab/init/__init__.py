"""Initialization schemes: tensor-level ``scheme_(tensor, ..., generator=)`` functions in the
style of ``torch.nn.init``, and model-level application by name with :func:`apply`.

Example:
    >>> import torch, trainlab.init as tinit
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    >>> report = tinit.apply(model, "orthogonal", generator=torch.Generator().manual_seed(0))
    >>> [layer.name for layer in report.layers]
    ['0', '2']
"""

from trainlab.init import mean_field
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
from trainlab.init.conv_aware import conv_aware_
from trainlab.init.fixup import fixup, small
from trainlab.init.idinit import idinit_, idinit_zero_
from trainlab.init.inr import siren_, vi3nr_, vi3nr_gain, vi3nr_sigma_p
from trainlab.init.kumar import kumar_normal_, kumar_variance
from trainlab.init.lora import lora_init
from trainlab.init.lsuv import lsuv
from trainlab.init.maxout import maxout_constant, maxout_normal_, maxout_second_moment
from trainlab.init.orthogonal import decoupled_, orthogonal_
from trainlab.init.pseudo_iid import pseudo_iid_
from trainlab.init.standard import (
    kaiming_normal_,
    kaiming_uniform_,
    torch_default,
    xavier_normal_,
    xavier_uniform_,
)
from trainlab.init.virgo import VirgoVariances, virgo_variances

__all__ = [
    "INITS",
    "InitReport",
    "LayerInit",
    "VirgoVariances",
    "apply",
    "conv_aware_",
    "decoupled_",
    "fan_in_out",
    "fixup",
    "idinit_",
    "idinit_zero_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "kumar_normal_",
    "kumar_variance",
    "lora_init",
    "lsuv",
    "maxout_constant",
    "maxout_normal_",
    "maxout_second_moment",
    "mean_field",
    "orthogonal_",
    "pseudo_iid_",
    "siren_",
    "small",
    "virgo_variances",
    "vi3nr_",
    "vi3nr_gain",
    "vi3nr_sigma_p",
    "selected",
    "tensor_scheme",
    "torch_default",
    "weight_layers",
    "xavier_normal_",
    "xavier_uniform_",
]
