r"""The empirical neural tangent kernel of a model on a set of points.

For a model :math:`f_\theta : R^d \to R^k` and points :math:`x_1, \dots, x_n`, the empirical
NTK is the :math:`nk \times nk` Gram matrix of the parameter Jacobian,

.. math:: K_{(i,a),(j,b)} = \nabla_\theta f_a(x_i) \cdot \nabla_\theta f_b(x_j) = (J J^T),

with rows ordered example-major (index :math:`i k + a`). How much :math:`K` moves during
training separates the lazy regime (kernel nearly fixed) from the rich one: "How connectivity
structure shapes rich and lazy learning in neural circuits" (Liu et al., ICLR 2024; papers.md
row 68) compares :math:`\|K_T - K_0\|_F / \|K_0\|_F` across initial connectivities.

:func:`empirical_ntk` works for any model (exact Jacobian by ``torch.func.jacrev``: memory
:math:`nk \times P`, so for small models and point sets); :func:`linear_ntk` is the closed
form for a two-layer linear network, with no Jacobian at all.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, jacrev

from trainlab.errors import ConfigError
from trainlab.restore import preserved


def empirical_ntk(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The ``(n k, n k)`` empirical NTK of ``model`` over its trainable parameters on
    ``inputs`` (n examples; outputs flattened to k per example), example-major. The model is
    evaluated in its current mode and left unchanged.

    Deviations from the paper: the kernel is exact (full Jacobian), so it is for small models and
    point sets; the kernel-change summary :math:`\\|K_T - K_0\\|_F / \\|K_0\\|_F` that row 68
    compares is left to the caller, and the paper's own networks and kernel normalization were not
    re-read for this paragraph.
    """
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    if not params:
        raise ConfigError("empirical_ntk: the model has no trainable parameters.")
    buffers = {n: b.detach() for n, b in model.named_buffers()}

    def f(theta: dict[str, torch.Tensor]) -> torch.Tensor:
        return functional_call(model, (theta, buffers), (inputs,)).reshape(-1)

    with preserved(model):
        jac = jacrev(f)(params)
    j = torch.cat([v.reshape(v.shape[0], -1) for v in jac.values()], dim=1)
    return j @ j.T


def linear_ntk(w1: torch.Tensor, w2: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    r"""Empirical NTK of the two-layer linear network :math:`f(x) = W_2 W_1 x` on the points
    ``x`` ``(n, d)``, as an ``(n k, n k)`` matrix (example-major, like :func:`empirical_ntk`):

    .. math:: K = (H H^T) \otimes I_k + (X X^T) \otimes (W_2 W_2^T), \qquad H = X W_1^T,

    the first term from the gradients in :math:`W_2`, the second from those in :math:`W_1`
    (exact, papers.md row 68).

    Deviations from the paper: the closed form is for the two-layer linear network only (no biases);
    the paper's kernel comparisons and models were not re-read for this paragraph.

    Args:
        w1: first-layer weights ``(h, d)``.
        w2: second-layer weights ``(k, h)``.
        x: points ``(n, d)``.
    """
    if w1.dim() != 2 or w2.dim() != 2 or x.dim() != 2 or w2.shape[1] != w1.shape[0] \
            or x.shape[1] != w1.shape[1]:
        raise ConfigError("linear_ntk: needs w1 (h, d), w2 (k, h) and x (n, d). Got shapes "
                          f"{tuple(w1.shape)}, {tuple(w2.shape)} and {tuple(x.shape)}.")
    h = x @ w1.T
    out = w2.shape[0]
    eye = torch.eye(out, dtype=x.dtype, device=x.device)
    return torch.kron(h @ h.T, eye) + torch.kron(x @ x.T, w2 @ w2.T)
