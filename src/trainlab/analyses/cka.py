r"""Linear centered kernel alignment between two representations of the same inputs
(Kornblith, Norouzi, Lee, Hinton, "Similarity of Neural Network Representations Revisited",
ICML 2019): with column-centred features :math:`X \in R^{n\times p}`, :math:`Y \in
R^{n\times q}`,

.. math:: \mathrm{CKA}(X, Y) = \frac{\|Y^T X\|_F^2}{\|X^T X\|_F\,\|Y^T Y\|_F},

which equals the normalized HSIC of the linear kernels :math:`XX^T` and :math:`YY^T`. It is
invariant to orthogonal transforms and isotropic scaling of either representation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from trainlab.restore import preserved


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Linear CKA of two feature matrices with the same number of rows (extra dimensions are
    flattened); 0 when either representation is constant."""
    x = x.reshape(x.shape[0], -1)
    y = y.reshape(y.shape[0], -1).to(x.dtype)
    x = x - x.mean(0)
    y = y - y.mean(0)
    den = (x.T @ x).norm() * (y.T @ y).norm()
    return (y.T @ x).norm().pow(2) / den if den > 0 else torch.zeros((), dtype=x.dtype)


def layer_outputs(model: nn.Module, inputs: torch.Tensor, names: Sequence[str]
                  ) -> dict[str, torch.Tensor]:
    """Outputs of the named submodules on ``inputs`` (eval mode, no grad; hooks removed and
    the model's mode restored afterwards)."""
    modules = dict(model.named_modules())
    acts: dict[str, torch.Tensor] = {}
    handles = []
    for n in names:
        handles.append(modules[n].register_forward_hook(
            lambda _m, _a, out, n=n: acts.__setitem__(n, out.detach())))
    try:
        with preserved(model), torch.no_grad():
            model.eval()
            model(inputs)
    finally:
        for h in handles:
            h.remove()
    return acts


def layer_cka(model_a: nn.Module, model_b: nn.Module, inputs: torch.Tensor,
              names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """Linear CKA between the outputs of same-named submodules of two models (default: every
    leaf module with parameters, e.g. each Linear layer's pre-activation).

    Deviations from the paper: linear CKA only (the kernel variants of Kornblith et al. are not
    implemented); row 8 uses representational similarity as one of its measures, and the layers
    compared here are the same-named leaf modules' outputs by default, which was not checked against
    row 8's choice of layers.
    """
    if names is None:
        names = [n for n, m in model_a.named_modules()
                 if n and not list(m.children()) and list(m.parameters(recurse=False))]
    a, b = layer_outputs(model_a, inputs, names), layer_outputs(model_b, inputs, names)
    return {n: linear_cka(a[n], b[n]) for n in names}
