"""Initialization schemes: tensor-level ``scheme_(tensor, ..., generator=)`` functions in the
style of ``torch.nn.init``, and model-level application by name with :func:`apply`.

Registered schemes (``trainlab list inits``; papers.md rows in brackets; each module's
docstring gives the paper's defaults and its deviations):

- ``orthogonal`` [1], ``decoupled`` [1, needs ``(inputs, targets)``]: Saxe et al.
- ``kumar`` [3]: ``1 / (N g'(0)^2 (1 + g(0)^2))``, ReLU ``2/N``.
- ``lsuv`` [42]: orthonormal pre-init, per-layer output variance 1 on a batch.
- ``idinit`` [19]: padded identity (Eq. 3: repeated when widening, ``[I 0]`` when narrowing),
  patch-maintain convs, epsilon on residual branch ends.
- ``conv-aware`` [24]: conv kernels with orthogonal Fourier spectra.
- ``maxout`` [17]: ``c = 1 / E[max of K normals^2]`` for maxout layers.
- ``virgo`` [77]: GCN weight variances through aggregation (needs node features).
- ``siren``, ``vi3nr`` [58]: INR inits; VI3NR's gain for any activation.
- ``lora-a``, ``lora-b`` [32]: LoRA Init[A] / Init[B] (adapters from ``models.lora``).
- ``edge-of-chaos`` [111]: iid / orthogonal / low-rank / sparse weights at the critical
  ``(sigma_w^2, sigma_b^2)`` from :mod:`trainlab.init.mean_field`.
- ``fixup``; ``small`` [20, 27, 68]: Fixup for residual nets; any scheme times a small scale.
- ``balanced`` [27]: two-layer nets with ``||a_j|| = ||w_j||`` per neuron.

Examples:
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
from trainlab.init.balanced import balanced_
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
    "balanced_",
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
